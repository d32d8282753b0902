# Helpers for the proxy integration tests (tests/integration/t_proxy_*.sh).  Source after world.sh
# and world_enter; builds on tests/lib/dns_world.sh (upstream namespace "dnsup" with the test
# resolver on 203.0.113.10:53).
#
#   proxy_world [RECORD...]   upstream + resolver (RECORDs as dns_world_upstream), a test CA and an
#                             origin certificate, origin servers (tests/lib/proxy_origin.py) on
#                             203.0.113.10:80 and :443 (TLS), 8080, an "attacker" TLS origin on
#                             203.0.113.66:443, proxy account, sandbox.conf ($CONF)
#   proxy_echo_origin OUT PORT:MODE...  raw TCP origins on 203.0.113.10 for tunnel tests
#                             (tests/lib/proxy_echo_origin.py), its output in OUT; waits for them
#   proxy_profile FILE CONTENT  a profile, mode 644
#   proxy_start [ARGS...]     the real sandbox-proxyd in the foreground; $PROXYD_PID
#                             ($PROXYD_WRAP: a command that execs it, e.g. prlimit; $PS_PROXYD:
#                             another build of it, e.g. make check-tsan's)
#   proxy_done                stop it; fail on a sanitizer report or a bad exit status
#   proxy_nft UID...          nftables steering for those UIDs (sandboxctl apply when it exists,
#                             else the equivalent rules of DESIGN.md §5.1 loaded with nft)
#   as USER CMD...            run CMD as USER (setpriv; no PAM)
#   pcurl USER ARGS...        curl as USER through the explicit proxy, CA trusted
#   tcurl USER ARGS...        curl as USER without proxy variables (transparent path)
#   proxy_log_last FILTER...  the last decision-log line matching every FILTER (fixed strings)
. "$PS_SRC/tests/lib/dns_world.sh"

: "${PROXY_EXPLICIT:=127.0.0.1:3128}"
ORIGIN_LOG=
PROXYD_PID=

proxy_world() {
    command -v curl >/dev/null || skip "curl missing"
    command -v openssl >/dev/null || skip "openssl missing"
    command -v nft >/dev/null || skip "nft missing"
    dns_world_upstream "$@"
    ip netns exec dnsup ip addr add 203.0.113.66/24 dev ps-veth1
    # A host has a default route; without one, connecting to a synthetic address fails with
    # ENETUNREACH before nftables could redirect it.
    ip route add default via 203.0.113.10 2>/dev/null
    ip -6 route add default via 2001:db8::10 2>/dev/null
    # Test CA and an origin certificate for the names the tests use.
    local d="$WORLD/pki"
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=proxy test CA" \
        -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null || fail "openssl CA"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=origin" \
        -keyout "$d/origin.key" -out "$d/origin.csr" 2>/dev/null
    printf 'subjectAltName=DNS:allowed.test,DNS:*.allowed.test,DNS:git.test,DNS:denied.test,IP:203.0.113.10,IP:203.0.113.66\n' > "$d/ext"
    openssl x509 -req -in "$d/origin.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
        -extfile "$d/ext" -out "$d/origin.pem" 2>/dev/null || fail "openssl origin cert"
    chmod 644 "$d"/*.pem; chmod 755 "$d"
    PROXY_CA="$d/ca.pem"
    ORIGIN_LOG="$WORLD/origin.log"; : > "$ORIGIN_LOG"; chmod 666 "$ORIGIN_LOG"
    ATTACKER_LOG="$WORLD/attacker.log"; : > "$ATTACKER_LOG"
    ip netns exec dnsup python3 "$PS_SRC/tests/lib/proxy_origin.py" --cert "$d/origin.pem" --key "$d/origin.key" \
        --log "$ORIGIN_LOG" --git-root "$WORLD/git" \
        --listen 203.0.113.10:80 --listen 203.0.113.10:443:tls --listen 203.0.113.10:8080 \
        --listen '[2001:db8::10]:80' > "$WORLD/origin.out" 2>&1 &
    WORLD_PIDS+=($!)
    ip netns exec dnsup python3 "$PS_SRC/tests/lib/proxy_origin.py" --cert "$d/origin.pem" --key "$d/origin.key" \
        --log "$ATTACKER_LOG" --listen 203.0.113.66:443:tls --listen 203.0.113.66:80 > "$WORLD/attacker.out" 2>&1 &
    WORLD_PIDS+=($!)
    for _ in $(seq 100); do
        grep -q ready "$WORLD/origin.out" 2>/dev/null && grep -q ready "$WORLD/attacker.out" 2>/dev/null && break
        sleep 0.05
    done
    grep -q ready "$WORLD/origin.out" || fail "origin did not start: $(cat "$WORLD/origin.out" "$WORLD/attacker.out")"
    dns_world_conf
    export PROXY_CA ORIGIN_LOG ATTACKER_LOG
}

proxy_echo_origin() {
    local out=$1; shift
    ip netns exec dnsup python3 "$PS_SRC/tests/lib/proxy_echo_origin.py" "$@" > "$out" 2>&1 &
    WORLD_PIDS+=($!)
    for _ in $(seq 100); do grep -q ready "$out" 2>/dev/null && break; sleep 0.05; done
    grep -q ready "$out" || fail "origin did not start: $(cat "$out")"
}

proxy_profile() { dns_profile "$@"; }

proxy_start() {
    local bin=${PS_PROXYD:-$PS_BUILD/sandbox-proxyd}
    [ -x "$bin" ] || skip "sandbox-proxyd not built: $bin"
    # stderr kept apart: sanitizer reports are checked by proxy_done (syslog has the rest)
    world_bg ${PROXYD_WRAP:-} "$bin" -c "$CONF" -f "$@" 2>>"$WORLD/proxyd.stderr"
    PROXYD_PID=${WORLD_PIDS[-1]}
    # Ready is "started": logged after the listeners, the pid file (which sandboxctl apply signals)
    # and the privilege drop.  Listening alone is too early: a SIGHUP would find no pid file.
    for _ in $(seq 400); do
        grep -q "sandbox-proxyd\[$PROXYD_PID\]: started" "$SYSLOG" &&
            ss -tln 2>/dev/null | grep -q "$PROXY_EXPLICIT " && return 0
        kill -0 "$PROXYD_PID" 2>/dev/null || fail "sandbox-proxyd exited: $(tail -n 20 "$SYSLOG")"
        sleep 0.05
    done
    fail "sandbox-proxyd did not start listening on $PROXY_EXPLICIT"
}

# proxy_done: stop proxyd (if running) with SIGTERM and fail on any sanitizer report (ASan,
# UBSan, LeakSanitizer print at exit) or a non-zero exit status.
proxy_done() {
    if [ -n "$PROXYD_PID" ] && kill -0 "$PROXYD_PID" 2>/dev/null; then
        # Bounded: a proxy that hangs at exit (a relay loop never joined) fails here, by name.
        # (Polled: a subshell watchdog would run the world's EXIT trap when it ends.)
        kill -TERM "$PROXYD_PID"
        local st=
        for _ in $(seq 600); do
            st=$(sed 's/^.*) //' "/proc/$PROXYD_PID/stat" 2>/dev/null | cut -d' ' -f1)
            [ -z "$st" ] || [ "$st" = Z ] && break
            sleep 0.05
        done
        if [ -n "$st" ] && [ "$st" != Z ]; then
            kill -KILL "$PROXYD_PID"; wait "$PROXYD_PID"
            fail "sandbox-proxyd did not exit within 30 s of SIGTERM (state $st; killed)"
        fi
        wait "$PROXYD_PID"; local rc=$?
        [ $rc = 0 ] || fail "sandbox-proxyd exited with $rc: $(grep -v '^sandbox-proxyd' "$WORLD/proxyd.stderr" | head -n 30)"
    fi
    if grep -qE 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:' "$WORLD/proxyd.stderr" 2>/dev/null; then
        grep -v '^sandbox-proxyd' "$WORLD/proxyd.stderr" | head -n 60
        fail "sanitizer report from sandbox-proxyd"
    fi
    ok "sandbox-proxyd stopped cleanly${PS_SAN:+ (sanitizers: no report)}"
}

# The steering of DESIGN.md §5.1 for the given UIDs.
proxy_nft() {
    local uids u applied=0
    uids=$(IFS=,; echo "$*")
    if [ -x "$PS_BUILD/sandboxctl" ] && "$PS_BUILD/sandboxctl" -c "$CONF" apply >"$WORLD/apply.out" 2>&1; then
        applied=1
        for u in "$@"; do
            nft list set inet pam_sandbox users 2>/dev/null | grep -qw "$u" || applied=0
        done
    fi
    if [ $applied = 1 ]; then
        echo "# steering: sandboxctl apply"
        return 0
    fi
    echo "# steering: equivalent rules loaded with nft (sandboxctl apply: $(tail -n 1 "$WORLD/apply.out" 2>/dev/null))"
    nft delete table inet pam_sandbox 2>/dev/null
    nft -f - <<EON || fail "loading the steering rules"
table inet pam_sandbox {
    set users { type uid; elements = { $uids } }
    chain nat_out {
        type nat hook output priority -100; policy accept;
        meta skuid @users udp dport 53 redirect to :3153
        meta skuid @users tcp dport 53 redirect to :3153
        meta skuid @users meta nfproto ipv4 ip daddr 127.0.0.1 tcp dport { 3128, 3129, 3153 } return
        meta skuid @users meta nfproto ipv6 ip6 daddr ::1 tcp dport { 3128, 3129, 3153 } return
        meta skuid @users meta l4proto tcp redirect to :3129
    }
    chain filter_out {
        type filter hook output priority 0; policy accept;
        meta skuid @users meta nfproto ipv4 ip daddr 127.0.0.1 tcp dport { 3128, 3129, 3153 } accept
        meta skuid @users meta nfproto ipv6 ip6 daddr ::1 tcp dport { 3128, 3129, 3153 } accept
        meta skuid @users meta nfproto ipv4 ip daddr 127.0.0.1 udp dport 3153 accept
        meta skuid @users log prefix "pam_sandbox: " level info limit rate 10/second
        meta skuid @users meta l4proto tcp reject with tcp reset
        meta skuid @users meta l4proto udp reject
        meta skuid @users drop
    }
}
EON
}

as() { local u=$1; shift; runuser -u "$u" -- env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY "$@"; }
pcurl() { local u=$1; shift; as "$u" curl -sS --max-time 10 --cacert "$PROXY_CA" -x "http://$PROXY_EXPLICIT" "$@"; }
tcurl() { local u=$1; shift; as "$u" curl -sS --max-time 10 --cacert "$PROXY_CA" --noproxy '*' "$@"; }

# Last decision-log line containing every given fixed string.
proxy_log_last() {
    local l
    l=$(cat "$WORLD/decisions.jsonl" 2>/dev/null)
    for f in "$@"; do l=$(printf '%s\n' "$l" | grep -F -- "$f"); done
    printf '%s\n' "$l" | tail -n 1
}
