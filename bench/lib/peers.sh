# shellcheck shell=bash
# Peers of bench/proxy.sh: write each one's configuration from its template (bench/*.conf) into a
# directory of its own under the world's tmpfs and start the binary directly with it, so nothing of
# the host's /etc/nginx, /etc/squid, /etc/haproxy or /etc/tinyproxy is read or written.  Every start
# function sets PEER_PID (the process to measure and, later, to kill by that PID) or returns 1 with
# PEER_WHY set.  Sourced after tests/lib/world.sh inside world_enter.

BENCH_SRC=${BENCH_SRC:-$PS_SRC/bench}
PEER_PID=
PEER_WHY=   # why the last start failed, for the caller
export PEER_WHY

# fill TEMPLATE OUT VAR=VALUE...: replace @VAR@ in a template.
fill() {
    local tpl=$1 out=$2 kv expr=()
    shift 2
    for kv in "$@"; do expr+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    sed "${expr[@]}" "$BENCH_SRC/$tpl" > "$out"
    if grep -q '@[A-Z_]*@' "$out"; then echo "unfilled placeholder in $out" >&2; return 1; fi
}

# wait_listen ADDR:PORT [NETNS]: until something listens there (5 s).
wait_listen() {
    local pre=()
    [ -n "${2:-}" ] && pre=(ip netns exec "$2")
    for _ in $(seq 100); do
        "${pre[@]}" ss -Hltn "src ${1%:*} and sport = :${1##*:}" 2>/dev/null | grep -q . && return 0
        sleep 0.05
    done
    return 1
}

# A started peer that dies before it listens leaves its reason in its log.
_peer_started() {   # NAME LISTEN LOG [NETNS]
    if wait_listen "$2" "${4:-}" && kill -0 "$PEER_PID" 2>/dev/null; then return 0; fi
    PEER_WHY="$1 did not start: $(tail -n 3 "$3" 2>/dev/null | tr '\n' ' ')"
    stop_peer
    return 1
}

stop_peer() {
    [ -n "$PEER_PID" ] || return 0
    kill "$PEER_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$PEER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PEER_PID" 2>/dev/null
    wait "$PEER_PID" 2>/dev/null
    PEER_PID=
}

# The origin: nginx in the upstream namespace, serving files from the world's tmpfs.
start_origin() {   # DIR NETNS ORIGIN_IP
    local d=$1
    mkdir -p "$d/tmp" "$d/www"
    fill nginx.conf "$d/nginx.conf" DIR="$d" ORIGIN="$3" || return 1
    head -c 128 /dev/urandom | base64 -w0 | head -c 128 > "$d/www/small"
    fallocate -l 10M "$d/www/10M"
    fallocate -l 1G "$d/www/1G"
    chmod -R a+rX "$d/www"
    ip netns exec "$2" /usr/sbin/nginx -p "$d" -c "$d/nginx.conf" -e "$d/nginx.err" &
    PEER_PID=$!
    _peer_started nginx "$3:80" "$d/nginx.err" "$2"
}

start_haproxy() {  # DIR LISTEN ORIGIN_IP
    mkdir -p "$1"
    fill haproxy.conf "$1/haproxy.conf" DIR="$1" LISTEN="$2" ORIGIN="$3" || return 1
    /usr/sbin/haproxy -db -f "$1/haproxy.conf" > "$1/haproxy.log" 2>&1 &
    PEER_PID=$!
    _peer_started haproxy "$2" "$1/haproxy.log"
}

start_squid() {    # DIR LISTEN
    mkdir -p "$1"
    chown proxy: "$1"
    fill squid.conf "$1/squid.conf" DIR="$1" LISTEN="$2" || return 1
    # -N: one foreground process (no SMP kids, no daemon), so its PID is all there is to measure.
    /usr/sbin/squid -N -f "$1/squid.conf" > "$1/squid.out" 2>&1 &
    PEER_PID=$!
    _peer_started squid "$2" "$1/cache.log"
}

start_tinyproxy() { # DIR LISTEN
    mkdir -p "$1"
    chown nobody: "$1"
    fill tinyproxy.conf "$1/tinyproxy.conf" DIR="$1" HOST="${2%:*}" PORT="${2##*:}" || return 1
    /usr/bin/tinyproxy -d -c "$1/tinyproxy.conf" > "$1/tinyproxy.out" 2>&1 &
    PEER_PID=$!
    _peer_started tinyproxy "$2" "$1/tinyproxy.out"
}

# sandbox-proxyd from this tree, with a config dir of its own: sandbox.conf plus one profile that
# matches the load generator's account and allows the origin by IP.
# start_proxyd DIR LISTEN ORIGIN_IP BENCH_USER [BUILD_DIR [PORT_BASE [OPTIONS]]]: the transparent
# and DNS listeners (unused here) go to PORT_BASE+1 and PORT_BASE+25, so that two builds can run
# side by side; OPTIONS are more command-line options (an A/B of -j, say).
start_proxyd() {
    local d=$1 bin=${5:-$PS_BUILD}/sandbox-proxyd base=${6:-3128} opts=${7:-}
    if [ ! -x "$bin" ]; then PEER_WHY="not built ($bin missing)"; return 1; fi
    mkdir -p "$d/conf/profiles" "$d/conf/inference.d"
    chmod 755 "$d" "$d/conf" "$d/conf/profiles" "$d/conf/inference.d"
    fill proxyd-sandbox.conf "$d/conf/sandbox.conf" DIR="$d" LISTEN="$2" PROXY_USER="$PROXY_USER" \
        TPORT=$((base + 1)) DNSPORT=$((base + 25)) || return 1
    fill proxyd-profile.conf "$d/conf/profiles/bench.conf" BENCH_USER="$4" ORIGIN="$3" || return 1
    chmod 644 "$d/conf/sandbox.conf" "$d/conf/profiles/bench.conf"
    : > "$d/decisions.jsonl"; chown "$PROXY_USER:" "$d/decisions.jsonl"
    if ! "$bin" -c "$d/conf" -t > "$d/check.log" 2>&1; then
        PEER_WHY="config check failed: $(tail -n 3 "$d/check.log" | tr '\n' ' ')"
        return 1
    fi
    # shellcheck disable=SC2086
    "$bin" -c "$d/conf" -f $opts > "$d/proxyd.log" 2>&1 &
    PEER_PID=$!
    _peer_started sandbox-proxyd "$2" "$d/proxyd.log"
}
