# Helpers shared by the policy DNS integration tests (tests/integration/t_dns_*.sh).  Source after
# world.sh and world_enter.
#
#   dns_world_upstream [RECORD...]  upstream netns "dnsup" with tests/lib/dns_fake_resolver.py on
#                                   203.0.113.10:53 (UDP+TCP); every query it gets is a line in
#                                   $DNS_UPLOG ("udp github.com A").  RECORD: name=A:addr[:ttl]
#   dns_world_conf [EXTRA-LINE...]  world_conf + Resolver=203.0.113.10 (+ extra [Proxy] lines)
#   dns_profile FILE CONTENT        a profile, mode 644
#   dns_start_proxyd                the real sandbox-proxyd in the foreground (killed at exit)
#   dns_done                        stop it; fail on a bad exit status or a sanitizer report
#   dns_q USER ARGS...              dig as USER against the DNS listen port; prints dig's output
#   dns_status / dns_answers OUTPUT the status word / the A-record addresses of a dig output
#   dns_upstream_count NAME [TYPE]  how many queries for NAME the upstream resolver received
: "${DNS_PORT:=3153}"

dns_world_upstream() {
    command -v dig >/dev/null || skip "dig (dnsutils) missing"
    world_upstream dnsup
    DNS_UPLOG="$WORLD/upstream-queries.log"
    : > "$DNS_UPLOG"
    local args=() r
    for r in "$@"; do args+=(--record "$r"); done
    ip netns exec dnsup python3 "$PS_SRC/tests/lib/dns_fake_resolver.py" --listen 203.0.113.10 \
        --log "$DNS_UPLOG" "${args[@]}" > "$WORLD/fake-resolver.out" 2>&1 &
    WORLD_PIDS+=($!)
    for _ in $(seq 100); do grep -q ready "$WORLD/fake-resolver.out" 2>/dev/null && break; sleep 0.05; done
    grep -q ready "$WORLD/fake-resolver.out" || fail "fake resolver did not start: $(cat "$WORLD/fake-resolver.out")"
    export DNS_UPLOG
}

dns_world_conf() {
    getent passwd "${PS_PROXY_USER:-pam-sandbox}" >/dev/null ||
        useradd -r -M -d /nonexistent -s /usr/sbin/nologin "${PS_PROXY_USER:-pam-sandbox}"
    world_conf
    echo "Resolver=203.0.113.10" >> "$CONF/sandbox.conf"
    local l
    for l in "$@"; do echo "$l" >> "$CONF/sandbox.conf"; done
}

dns_profile() {
    printf '%s\n' "$2" > "$CONF/profiles/$1"
    chmod 644 "$CONF/profiles/$1"
}

dns_start_proxyd() {
    [ -x "$PS_BUILD/sandbox-proxyd" ] || skip "sandbox-proxyd not built in $PS_BUILD"
    # stderr kept apart: dns_done checks it for sanitizer reports (syslog has the rest)
    world_bg "$PS_BUILD/sandbox-proxyd" -c "$CONF" -f 2>>"$WORLD/proxyd.stderr"
    DNS_PROXYD_PID=${WORLD_PIDS[-1]}
    for _ in $(seq 100); do
        ss -uln 2>/dev/null | grep -q "127.0.0.1:$DNS_PORT " && ss -tln | grep -q "127.0.0.1:$DNS_PORT " && return 0
        kill -0 "$DNS_PROXYD_PID" 2>/dev/null || fail "sandbox-proxyd exited: $(tail -n 20 "$SYSLOG")"
        sleep 0.05
    done
    fail "sandbox-proxyd does not listen on 127.0.0.1:$DNS_PORT"
}

# dns_done: stop proxyd with SIGTERM; fail on a non-zero exit status or any sanitizer report.
dns_done() {
    if [ -n "${DNS_PROXYD_PID:-}" ] && kill -0 "$DNS_PROXYD_PID" 2>/dev/null; then
        kill -TERM "$DNS_PROXYD_PID"; wait "$DNS_PROXYD_PID"; local rc=$?
        [ $rc = 0 ] || fail "sandbox-proxyd exited with $rc: $(grep -v '^sandbox-proxyd' "$WORLD/proxyd.stderr" | head -n 30)"
    fi
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$WORLD/proxyd.stderr" 2>/dev/null; then
        grep -v '^sandbox-proxyd' "$WORLD/proxyd.stderr" | head -n 60
        fail "sanitizer report from sandbox-proxyd"
    fi
    ok "sandbox-proxyd stopped cleanly"
}

dns_q() {
    local u=$1; shift
    runuser -u "$u" -- dig +time=2 +tries=1 -p "$DNS_PORT" @127.0.0.1 "$@" 2>&1
}
dns_status() { printf '%s\n' "$1" | sed -n 's/.*status: \([A-Z]*\).*/\1/p' | head -n 1; }
dns_answers() { printf '%s\n' "$1" | awk '$4 == "A" && $1 !~ /^;/ {print $5}' | sort | tr '\n' ' ' | sed 's/ $//'; }
dns_ancount() { printf '%s\n' "$1" | sed -n 's/.*ANSWER: \([0-9]*\).*/\1/p' | head -n 1; }
dns_upstream_count() {
    local n
    n=$(awk -v n="$1" -v t="${2:-}" '$2 == n && (t == "" || $3 == t)' "$DNS_UPLOG" | wc -l)
    echo "$n"
}
# An address inside the default SyntheticRange 198.18.0.0/15?
dns_is_synthetic() { [[ $1 =~ ^198\.1[89]\.[0-9]+\.[0-9]+$ ]]; }
# The decision log lines of mode dns for a host.
dns_decisions() { grep '"mode":"dns"' "$WORLD/decisions.jsonl" 2>/dev/null | grep "\"host\":\"$1\"" ; }
