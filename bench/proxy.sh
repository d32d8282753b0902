#!/usr/bin/env bash
# Proxy benchmark (issue 4, DESIGN.md §6): sandbox-proxyd side by side with haproxy (TCP mode, the
# relay ceiling), squid and tinyproxy, all in one run, against one nginx origin, reported as ratios.
#
# Everything runs in a private mount + network namespace (tests/lib/world.sh): the origin lives in
# an "upstream" namespace at 203.0.113.10 behind a veth pair, the proxies listen on the world's
# loopback, and the load generator (bench/lib/tunload.c) runs as a throw-away account of the world
# so that proxyd's sock_diag identity finds a sandboxed UID.  Every peer gets a config written from
# bench/*.conf into the world's tmpfs; none reads the host's /etc/<peer>.  Peers are stopped by
# the PID we started.
#
# Output: progress on stderr, a markdown table on stdout.  Targets are reported, never asserted.
# Environment: PS_BUILD (tree build dir), TUNLOAD (load generator), BENCH_SECS (default 3),
# ROUNDS (default 5), BENCH_PEERS (default "direct haproxy squid tinyproxy proxyd"), BENCH_METRICS
# (default "idle ka new bulk10 bulk1g": a subset runs only those, for profiling one of them).
# A/B of a change: BENCH_PEERS="... proxyd proxyd_b" PS_BUILD_B=<another build dir> runs that
# build's proxyd as one more peer in the same interleaved rounds and prints it against proxyd;
# PROXYD_OPTS and PROXYD_B_OPTS add command-line options to either (PS_BUILD_B may be PS_BUILD).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../tests/lib/world.sh" || exit 1
world_enter "$@"
. "$here/lib/peers.sh"

: "${TUNLOAD:=$PS_BUILD/bench/tunload}"
: "${BENCH_SECS:=3}"
: "${BENCH_PEERS:=direct haproxy squid tinyproxy proxyd}"
: "${BENCH_METRICS:=idle ka new bulk10 bulk1g}"
wanted() { case " $BENCH_METRICS " in *" $1 "*) return 0;; esac; return 1; }
[ -x "$TUNLOAD" ] || skip "load generator $TUNLOAD not built (make bench-tools)"
for b in nginx haproxy squid tinyproxy wrk curl; do
    command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || skip "$b missing: bash scripts/deps --bench"
done

ORIGIN=203.0.113.10
UPNS=psb-up
# UIDs 59980-59989 are the bench's (tests own other blocks).  A world's cleanup kills its UIDs by
# number and the PID space is shared, so two bench runs at once (an engineer measuring while
# `make bench` runs) must not share a pair: take the first pair that nothing runs as.
BENCH_UID=
for u in 59980 59982 59984 59986 59988; do
    if ! pgrep -U "$u" >/dev/null && ! pgrep -U "$((u + 1))" >/dev/null; then BENCH_UID=$u; break; fi
done
[ -n "$BENCH_UID" ] || skip "UIDs 59980-59989 all in use: five bench runs at once already"
BENCH_USER=psbench PROXY_UID=$((BENCH_UID + 1))
PROXY_USER=psb-proxyd
KA_CONNS=32 NEW_CONNS=${NEW_CONNS:-32} IDLE_TUNNELS=1000 BULK10_RUNS=20
: "${ROUNDS:=5}"
declare -A RND   # RND[peer.metric] = each round's figure, for the details line
log() { echo "[bench] $*" >&2; }
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# Namespace-local knobs only (these sysctls are per network namespace): enough ephemeral ports and
# TIME_WAIT reuse for the new-connection test, and listen backlogs for 1,000 tunnels.
tune_netns() {
    "$@" sysctl -q -w net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1 \
        net.core.somaxconn=8192 net.ipv4.tcp_max_syn_backlog=8192 >/dev/null
}
tune_netns
world_upstream "$UPNS"
tune_netns ip netns exec "$UPNS"
ulimit -n "$(ulimit -Hn)"   # the container caps the hard limit (20000 here); 1,000 tunnels need ~2,100
world_add_user "$BENCH_USER" "$BENCH_UID"
useradd -r -u "$PROXY_UID" -M -d / -s /usr/sbin/nologin "$PROXY_USER"; WORLD_UIDS+=("$PROXY_UID")
export PROXY_USER

start_origin "$WORLD/origin" "$UPNS" "$ORIGIN" || fail "origin: $PEER_WHY"
ORIGIN_PID=$PEER_PID; WORLD_PIDS+=("$ORIGIN_PID"); PEER_PID=
log "origin nginx at $ORIGIN:80 (pid $ORIGIN_PID), files small=128 B, 10M, 1G on tmpfs"

as_bench() { setpriv --reuid="$BENCH_UID" --regid="$BENCH_UID" --clear-groups -- "$@"; }
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }

# A process and all its descendants (squid or proxyd may fork workers).
tree_pids() {
    local want=" $1 " changed=1 p pp
    while [ $changed = 1 ]; do
        changed=0
        while read -r p pp; do
            case "$want" in *" $pp "*) case "$want" in *" $p "*) ;; *) want+="$p "; changed=1;; esac;; esac
        done < <(ps -e -o pid=,ppid=)
    done
    echo $want
}
# Resident memory (KiB) of a process and its descendants (threads share the process's VmRSS).
rss_kib() {
    local p total=0
    for p in $(tree_pids "$1"); do
        total=$(( total + $(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0) ))
    done
    echo "$total"
}

declare -A R     # R[peer.metric] = figure, or "error (...)"
declare -A NOTE  # NOTE[peer] = why a peer has no figures
declare -A PID ARGS
declare -A SYSLOG_SEEN  # per proxyd build: decision records that reached syslog, of those in its file

# load PEER ARGS...: run tunload as the bench account with this peer's server/CONNECT arguments.
load() { local peer=$1; shift; # shellcheck disable=SC2086
         as_bench "$TUNLOAD" ${ARGS[$peer]} "$@"; }

# CPU time (ticks) of a process and all its threads and descendants, from /proc/PID/stat.
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {
    [ -n "$1" ] || { echo 0; return; }
    local p total=0
    for p in $(tree_pids "$1"); do
        total=$(( total + $(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0) ))
    done
    echo "$total"
}

declare -A VALS CPUS   # every sample of a metric, and the proxy's CPU per unit of work for it
FAILED=()             # stray failed exchanges in runs that still count
declare -A TICKS UNITS # the proxy's CPU ticks and the units of work, summed over a metric's samples
declare -A SETUPS      # per 10 MiB sample: µs from connect() to the GET (CONNECT + 200 included)
# sample PEER METRIC VALUE_KEY UNIT_KEY ARGS...: one tunload run.  Appends its figure (or an
# error: any failed exchange, so a broken proxy cannot look fast) to VALS, and the proxy's CPU time
# per unit of work (µs per request or tunnel, ms per GiB) to CPUS.
sample() {
    local peer=$1 metric=$2 vkey=$3 ukey=$4 out errs val units t0 t1
    shift 4
    t0=$(cpu_ticks "${PID[$peer]:-}")
    out=$(load "$peer" "$@" 2>&1; echo "exit=$?")
    t1=$(cpu_ticks "${PID[$peer]:-}")
    log "  $peer $metric: $(printf '%s' "$out" | sed 's/ all[a-z_]*=[^ ]*//g') cpu_ticks=$(( t1 - t0 ))"
    errs=$(kv errors "$out"); val=$(kv "$vkey" "$out"); units=$(kv "$ukey" "$out")
    if [ -z "$val" ]; then
        VALS[$peer.$metric]+=" error(load_generator_$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-60 | tr ' ' _))"; return
    fi
    # A stray failure (at most 1 in 1,000 exchanges) is listed under the table; more voids the figure.
    if [ "${errs:-0}" != 0 ]; then
        if [ -n "$units" ] && [ "$ukey" = total ] && [ $(( errs * 1000 )) -le "$units" ]; then
            FAILED+=("$peer $metric: $errs of $units exchanges failed ($(kv first_error "$out"))")
        else
            VALS[$peer.$metric]+=" error(${errs}_failed:_$(kv first_error "$out" | tr " " _))"; return
        fi
    fi
    VALS[$peer.$metric]+=" ${val//,/ }"
    if [ "$metric" = bulk10 ]; then
        val=$(kv all_setup_us "$out"); SETUPS[$peer]+=" ${val//,/ }"
        val=$(kv all_conn "$out"); VALS[$peer.bulk10_conn]+=" ${val//,/ }"
    fi
    TICKS[$peer.$metric]=$(( ${TICKS[$peer.$metric]:-0} + t1 - t0 ))
    UNITS[$peer.$metric]=$(( ${UNITS[$peer.$metric]:-0} + ${units:-0} ))
    [ -n "${PID[$peer]:-}" ] && [ "${units:-0}" != 0 ] &&
        CPUS[$peer.$metric]+=" $(awk -v t=$(( t1 - t0 )) -v hz="$CLK_TCK" -v u="$units" -v k="$ukey" \
            'BEGIN{ if (k == "bytes") printf "%.1f", t / hz * 1000 / (u / 1073741824); else printf "%.2f", t / hz * 1e6 / u }')"
}

# Median of numbers; any non-number (an error) wins, so errors are never averaged away.
median() {
    local v
    [ $# -gt 0 ] || return 0
    for v in "$@"; do [[ $v =~ ^[0-9.]+$ ]] || { v=${v#error(}; echo "error (${v%)})" | tr _ ' '; return; }; done
    printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'
}

measure_idle() {   # PEER
    local peer=$1 pid=${PID[$1]} out="$WORLD/idle.$1" before after last lp
    before=$(rss_kib "$pid")
    load "$peer" -m idle -p /small -c "$IDLE_TUNNELS" -d 4 > "$out" 2>&1 &
    lp=$!
    for _ in $(seq 600); do grep -q '^ready' "$out" && break; kill -0 $lp 2>/dev/null || break; sleep 0.1; done
    sleep 1   # let the proxy settle (lazy frees, timers) before reading its memory
    after=$(rss_kib "$pid")
    local p np=0 nt=0
    for p in $(tree_pids "$pid"); do
        np=$((np + 1)); nt=$(( nt + $(awk '/^Threads:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0) ))
    done
    R[$peer.shape]="$np/$nt"
    wait $lp
    last=$(tail -n 1 "$out")
    log "  $peer idle: $(tr '\n' ' ' < "$out") rss ${before} -> ${after} KiB"
    R[$peer.rss0]=$before
    if [ "$(kv still_open "$last")" != "$IDLE_TUNNELS" ]; then
        R[$peer.idle]="error ($(kv still_open "$last") of $IDLE_TUNNELS held: $(kv first_error "$last"))"
        return
    fi
    R[$peer.idle]=$(awk -v a="$after" -v b="$before" -v n="$IDLE_TUNNELS" 'BEGIN{printf "%.1f", (a-b)/n}')
}

# The path is checked with curl first: a row is measured only if a real client gets the file.
smoke() {   # PEER CURL_ARGS...
    local peer=$1 got
    shift
    got=$(as_bench env -u http_proxy -u HTTP_PROXY -u all_proxy curl -sS --max-time 10 -o /dev/null \
          -w '%{http_code} %{size_download}' "$@" 2>&1)
    if [ "$got" != "200 128" ]; then NOTE[$peer]="curl through it failed: $(printf '%s' "$got" | tr '\n' ' ')"; return 1; fi
}

# wrk cannot CONNECT; on the rows it can reach it cross-checks tunload's keep-alive figure.
wrk_check() {   # PEER URL
    local out
    out=$(as_bench wrk -t1 -c"$KA_CONNS" -d"${BENCH_SECS}s" "$2" 2>&1)
    R[$1.wrk]=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/{printf "%.0f", $2}')
    log "  $1 wrk: ${R[$1.wrk]:-failed: $(printf '%s' "$out" | tr '\n' ' ')} req/s"
}

# ---- start every peer once; all stay up for the whole run so that rounds can interleave ----
active=()
for peer in $BENCH_PEERS; do
    PEER_PID=; PEER_WHY=
    case $peer in
      direct)    ARGS[$peer]="-s $ORIGIN:80";;
      haproxy)   start_haproxy "$WORLD/haproxy" 127.0.0.1:8001 "$ORIGIN"; ARGS[$peer]="-s 127.0.0.1:8001";;
      squid)     start_squid "$WORLD/squid" 127.0.0.1:8002; ARGS[$peer]="-s 127.0.0.1:8002 -x $ORIGIN:80";;
      tinyproxy) start_tinyproxy "$WORLD/tinyproxy" 127.0.0.1:8003; ARGS[$peer]="-s 127.0.0.1:8003 -x $ORIGIN:80";;
      proxyd)    start_proxyd "$WORLD/proxyd" 127.0.0.1:3128 "$ORIGIN" "$BENCH_USER" "$PS_BUILD" 3128 "${PROXYD_OPTS:-}"; ARGS[$peer]="-s 127.0.0.1:3128 -x $ORIGIN:80";;
      proxyd_b)  [ -n "${PS_BUILD_B:-}" ] || fail "peer proxyd_b needs PS_BUILD_B (the other build to compare)"
                 start_proxyd "$WORLD/proxyd_b" 127.0.0.1:3328 "$ORIGIN" "$BENCH_USER" "$PS_BUILD_B" 3328 "${PROXYD_B_OPTS:-}"
                 ARGS[$peer]="-s 127.0.0.1:3328 -x $ORIGIN:80";;
      *) fail "unknown peer $peer";;
    esac
    if [ "$peer" != direct ]; then
        if [ -z "$PEER_PID" ]; then NOTE[$peer]=$PEER_WHY; log "$peer: $PEER_WHY"; continue; fi
        PID[$peer]=$PEER_PID; WORLD_PIDS+=("$PEER_PID")
    fi
    case $peer in
      direct)  smoke "$peer" "http://$ORIGIN/small";;
      haproxy) smoke "$peer" "http://127.0.0.1:8001/small";;
      *)       smoke "$peer" --proxytunnel -x "http://$(set -- ${ARGS[$peer]}; echo "$2")" "http://$ORIGIN/small";;
    esac
    if [ -n "${NOTE[$peer]:-}" ]; then log "$peer: ${NOTE[$peer]}"; continue; fi
    log "$peer: up${PID[$peer]:+ (pid ${PID[$peer]})}, curl through it gets the file"
    active+=("$peer")
done
sleep 1

# Memory first, on fresh processes (before any load has grown their heaps).
wanted idle && for peer in "${active[@]}"; do [ "$peer" = direct ] || measure_idle "$peer"; done
# Rate tests in interleaved rounds, so that a noisy second hits every peer alike; medians kept.
# The 10 MiB runs are spread over the rounds the same way.  Every other round runs the peers in
# reverse order, so that no peer is always the one measured right after another (a fixed order is
# a bias nobody measured away).
per_round=$(( (BULK10_RUNS + ROUNDS - 1) / ROUNDS ))
for metric in ka new bulk10; do
    wanted "$metric" || continue
    for r in $(seq "$ROUNDS"); do
        order=("${active[@]}")
        if (( r % 2 == 0 )); then
            order=(); for (( i = ${#active[@]} - 1; i >= 0; i-- )); do order+=("${active[i]}"); done
        fi
        for peer in "${order[@]}"; do
            case $metric in
              ka)     sample "$peer" ka rate total -m ka -p /small -c "$KA_CONNS" -d "$BENCH_SECS" -w 1;;
              new)    sample "$peer" new rate total -m new -p /small -c "$NEW_CONNS" -d "$BENCH_SECS" -w 1;;
              bulk10) sample "$peer" bulk10 all bytes -m bulk -p /10M -n "$per_round";;
            esac
        done
    done
done
wanted bulk1g && for peer in "${active[@]}"; do sample "$peer" bulk1g mib_s bytes -m bulk -p /1G -n 1; done
for peer in "${active[@]}"; do
    for metric in ka new bulk10 bulk1g; do
        # shellcheck disable=SC2086
        R[$peer.$metric]=$(median ${VALS[$peer.$metric]:-})
        # shellcheck disable=SC2086
        R[$peer.cpu_$metric]=$(median ${CPUS[$peer.$metric]:-})
    done
    # A 10 MiB sample costs a few clock ticks of proxy CPU, too coarse for a per-sample figure:
    # use all of them together (ticks summed over bytes summed).
    if [ -n "${PID[$peer]:-}" ] && [ "${UNITS[$peer.bulk10]:-0}" != 0 ] && [[ ${R[$peer.bulk10]} =~ ^[0-9.]+$ ]]; then
        R[$peer.cpu_bulk10]=$(awk -v t="${TICKS[$peer.bulk10]}" -v hz="$CLK_TCK" -v u="${UNITS[$peer.bulk10]}" \
            'BEGIN{ printf "%.1f", t / hz * 1000 / (u / 1073741824) }')
    fi
    for metric in ka new; do
        RND[$peer.$metric]=$(for v in ${VALS[$peer.$metric]:-}; do [[ $v =~ ^[0-9.]+$ ]] && printf '%.0f\n' "$v" || echo err; done | paste -sd/ | sed 's|/| / |g')
    done
done
for peer in "${active[@]}"; do
    case $peer in
      direct)  wrk_check direct "http://$ORIGIN/small";;
      haproxy) wrk_check haproxy "http://127.0.0.1:8001/small";;
    esac
done
# Proof that proxyd judged every tunnel rather than waving traffic through: its decision log.
if [ -n "${PID[proxyd]:-}" ] && [ -f "$WORLD/proxyd/decisions.jsonl" ]; then
    PROXYD_DECISIONS="$(grep -c '"decision":"allow"' "$WORLD/proxyd/decisions.jsonl") allow, $(grep -c '"decision":"deny"' "$WORLD/proxyd/decisions.jsonl") deny, $(grep -c '"decision":"close"' "$WORLD/proxyd/decisions.jsonl") close records"
    log "proxyd decision log: $PROXYD_DECISIONS; first: $(head -n 1 "$WORLD/proxyd/decisions.jsonl")"
fi
# ...and that it paid for sending each of them to syslog (DESIGN §5.5) rather than dropping some:
# a logger that sheds records when the syslog daemon lags would look faster than one that keeps up.
for peer in proxyd proxyd_b; do
    [ -n "${PID[$peer]:-}" ] && [ -f "$WORLD/$peer/decisions.jsonl" ] || continue
    in_file=$(grep -c '"decision":' "$WORLD/$peer/decisions.jsonl")
    in_syslog=$(grep -c "sandbox-proxyd\[${PID[$peer]}\]: {.*\"decision\":" "$SYSLOG")
    SYSLOG_SEEN[$peer]="$in_syslog of $in_file decision records reached syslog"
    log "$peer: ${SYSLOG_SEEN[$peer]}"
done
declare -A PLOG=([haproxy]=haproxy/haproxy.log [squid]=squid/cache.log [tinyproxy]=tinyproxy/tinyproxy.out [proxyd]=proxyd/proxyd.log [proxyd_b]=proxyd_b/proxyd.log)
for peer in "${!PID[@]}"; do
    if ! kill -0 "${PID[$peer]}" 2>/dev/null; then
        wait "${PID[$peer]}"; st=$?
        why="exit status $st"; [ $st -gt 128 ] && why="killed by signal $((st - 128))"
        NOTE[$peer]="${NOTE[$peer]:-}${NOTE[$peer]:+; }died during the run ($why); last log lines: $(tail -n 3 "$WORLD/${PLOG[$peer]}" 2>/dev/null | tr '\n' ' ')"
    fi
    PEER_PID=${PID[$peer]}; stop_peer
done

# ---- the table ----
num() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
cell() {   # PEER METRIC
    local v=${R[$1.$2]:-}
    if [ -n "${NOTE[$1]:-}" ] && [ -z "$v" ]; then echo "n/a"; return; fi
    [ -z "$v" ] && { echo "—"; return; }
    if num "$v"; then
        case $2 in idle) echo "$v";; cpu_ka|cpu_new) printf '%.1f' "$v";; *) printf '%.0f' "$v";; esac
    else echo "$v"; fi
}
ratio() {  # METRIC PEER  -> proxyd / peer
    local a=${R[proxyd.$1]:-} b=${R[$2.$1]:-}
    num "$a" && num "$b" && awk -v a="$a" -v b="$b" 'BEGIN{ if (b > 0) printf "%.2f×", a/b; else print "—" }' || echo "—"
}
verdict() {  # METRIC KIND(ge_ratio PEER FACTOR | lt VALUE)
    local v=${R[proxyd.$1]:-}
    if ! num "$v"; then echo "not measured"; return; fi
    case $2 in
      ge) local b=${R[$3.$1]:-}
          num "$b" || { echo "peer not measured"; return; }
          awk -v a="$v" -v b="$b" -v f="$4" 'BEGIN{ print (a >= f*b) ? "**met**" : "**not met**" }';;
      lt) awk -v a="$v" -v t="$3" 'BEGIN{ print (a < t) ? "**met**" : "**not met**" }';;
    esac
}

metrics=(ka new bulk10 bulk1g idle)
declare -A LABEL=(
  [ka]="keep-alive req/s, one tunnel per connection ($KA_CONNS conns, 128 B body; median of $ROUNDS × ${BENCH_SECS} s)"
  [new]="new CONNECT+GET+close per s ($NEW_CONNS concurrent; median of $ROUNDS × ${BENCH_SECS} s)"
  [bulk10]="10 MiB through a tunnel, MiB/s (median of $(( per_round * ROUNDS )) over $ROUNDS rounds)"
  [bulk1g]="1 GiB through a tunnel, MiB/s (one run)"
  [idle]="RSS per idle tunnel, KiB ($IDLE_TUNNELS tunnels)"
)
declare -A TARGET=([ka]="≥ 1× haproxy" [new]="≥ 2× squid" [bulk10]="≥ 1× haproxy" [bulk1g]="≥ 1× haproxy" [idle]="< 8 KiB")
declare -A RULE=([ka]="ge haproxy 1" [new]="ge squid 2" [bulk10]="ge haproxy 1" [bulk1g]="ge haproxy 1" [idle]="lt 8")

echo "| metric | direct | haproxy (TCP) | squid | tinyproxy | sandbox-proxyd | proxyd ÷ haproxy | proxyd ÷ squid | proxyd ÷ tinyproxy | target | |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
for m in "${metrics[@]}"; do
    # shellcheck disable=SC2086
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${LABEL[$m]}" \
        "$(cell direct $m)" "$(cell haproxy $m)" "$(cell squid $m)" "$(cell tinyproxy $m)" "$(cell proxyd $m)" \
        "$(ratio $m haproxy)" "$(ratio $m squid)" "$(ratio $m tinyproxy)" "${TARGET[$m]}" "$(verdict $m ${RULE[$m]})"
done
echo
echo "The proxy's own CPU time per unit of work (utime+stime of its processes and threads from /proc," \
     "median over the same runs; lower is better, and far less sensitive to other load on the machine than rates):"
echo
echo "| CPU per | haproxy (TCP) | squid | tinyproxy | sandbox-proxyd | proxyd ÷ haproxy | proxyd ÷ squid | proxyd ÷ tinyproxy | the target read as CPU cost | |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"
declare -A CLABEL=([cpu_ka]="keep-alive request, µs" [cpu_new]="new tunnel (CONNECT+GET+close), µs"
                   [cpu_bulk10]="GiB in 10 MiB transfers, ms (all runs together)" [cpu_bulk1g]="GiB in a 1 GiB transfer, ms")
# The same targets as costs: at least haproxy's rate <=> at most haproxy's CPU per unit, 2x squid's
# rate <=> at most half squid's CPU per tunnel.  Shown beside, never instead of, the rate verdicts.
declare -A CTARGET=([cpu_ka]="≤ 1× haproxy" [cpu_new]="≤ 0.5× squid" [cpu_bulk10]="≤ 1× haproxy" [cpu_bulk1g]="≤ 1× haproxy")
declare -A CRULE=([cpu_ka]="haproxy 1" [cpu_new]="squid 0.5" [cpu_bulk10]="haproxy 1" [cpu_bulk1g]="haproxy 1")
cverdict() {  # METRIC PEER FACTOR
    local a=${R[proxyd.$1]:-} b=${R[$2.$1]:-}
    num "$a" || { echo "not measured"; return; }
    num "$b" || { echo "peer not measured"; return; }
    awk -v a="$a" -v b="$b" -v f="$3" 'BEGIN{ print (a <= f*b) ? "**met**" : "**not met**" }'
}
for m in cpu_ka cpu_new cpu_bulk10 cpu_bulk1g; do
    # shellcheck disable=SC2086
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${CLABEL[$m]}" \
        "$(cell haproxy $m)" "$(cell squid $m)" "$(cell tinyproxy $m)" "$(cell proxyd $m)" \
        "$(ratio $m haproxy)" "$(ratio $m squid)" "$(ratio $m tinyproxy)" "${CTARGET[$m]}" "$(cverdict $m ${CRULE[$m]})"
done
echo
echo "Cross-check of the load generator with wrk (keep-alive req/s, same $KA_CONNS connections, no tunnel):" \
     "direct $(cell direct wrk), haproxy $(cell haproxy wrk); tunload: direct $(cell direct ka), haproxy $(cell haproxy ka)."
if [ -n "${SETUPS[*]:-}" ]; then
    setup= conn=
    for peer in "${active[@]}"; do
        [ -n "${SETUPS[$peer]:-}" ] || continue
        # shellcheck disable=SC2086
        setup+="${setup:+, }$peer $(median ${SETUPS[$peer]})"
        # shellcheck disable=SC2086
        R[$peer.bulk10_conn]=$(median ${VALS[$peer.bulk10_conn]:-})
        conn+="${conn:+, }$peer $(cell "$peer" bulk10_conn)"
    done
    echo "The 10 MiB row times each transfer from the GET to its last body byte: the tunnel's data phase." \
         "Setup before the GET (median µs; TCP connect, plus CONNECT and its 200 for the tunnelling peers —" \
         "haproxy forwards TCP and has no such round trip): $setup." \
         "Timed from connect() instead, setup included: $conn MiB/s (proxyd ÷ haproxy $(ratio bulk10_conn haproxy))."
fi
echo "Load average (1/5/15 min) at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg)" \
     "(other work on the machine shows here and makes every row noisier)."
echo "Baseline RSS before the idle test (KiB): haproxy $(cell haproxy rss0), squid $(cell squid rss0)," \
     "tinyproxy $(cell tinyproxy rss0), sandbox-proxyd $(cell proxyd rss0)."
echo "Processes/threads of each proxy while the $IDLE_TUNNELS idle tunnels were open: haproxy $(cell haproxy shape)," \
     "squid $(cell squid shape), tinyproxy $(cell tinyproxy shape), sandbox-proxyd $(cell proxyd shape)."
[ -n "${PROXYD_DECISIONS:-}" ] && echo "sandbox-proxyd's decision log for the run: $PROXYD_DECISIONS; ${SYSLOG_SEEN[proxyd]:-syslog not checked}."
[ -n "${SYSLOG_SEEN[proxyd_b]:-}" ] && echo "proxyd_b: ${SYSLOG_SEEN[proxyd_b]}."
if [ -n "${PID[proxyd_b]:-}${R[proxyd_b.ka]:-}${R[proxyd_b.new]:-}" ]; then
    echo "A/B: proxyd_b is $PS_BUILD_B, proxyd is $PS_BUILD (proxyd ÷ proxyd_b):"
    for m in ka new bulk10 bulk1g idle cpu_ka cpu_new cpu_bulk10 cpu_bulk1g; do
        [ -n "${R[proxyd.$m]:-}${R[proxyd_b.$m]:-}" ] || continue
        echo "- $m: $(cell proxyd $m) vs $(cell proxyd_b $m) ($(ratio $m proxyd_b))"
    done
fi
for f in "${FAILED[@]}"; do echo "- stray failure: $f"; done
echo "Each round (keep-alive | new):"
for peer in "${active[@]}"; do echo "- $peer: ${RND[$peer.ka]:-—} | ${RND[$peer.new]:-—}"; done
# The targets' ratios round by round: each round measures the two peers seconds apart, so a slow
# stretch of the machine hits both; the spread shows how far one run's median can be trusted.
paired() {   # METRIC PEER: proxyd ÷ PEER per round, and their median
    local a b
    read -ra a <<<"${VALS[proxyd.$1]:-}"; read -ra b <<<"${VALS[$2.$1]:-}"
    [ ${#a[@]} -gt 0 ] && [ ${#a[@]} = ${#b[@]} ] || return 0
    local r=() i
    for i in "${!a[@]}"; do
        [[ ${a[$i]} =~ ^[0-9.]+$ && ${b[$i]} =~ ^[0-9.]+$ ]] || return 0
        r+=("$(awk -v x="${a[$i]}" -v y="${b[$i]}" 'BEGIN{ printf "%.2f", (y > 0 ? x / y : 0) }')")
    done
    echo "- $1, proxyd ÷ $2: ${r[*]} (median $(median "${r[@]}")×)"
}
pr=$(paired new squid; paired ka haproxy; paired bulk10 haproxy)
[ -n "$pr" ] && { echo "The targets' ratios in each round (two peers measured seconds apart):"; echo "$pr"; }
for peer in $BENCH_PEERS; do
    [ -n "${NOTE[$peer]:-}" ] && echo "- **$peer**: ${NOTE[$peer]}"
done
exit 0
