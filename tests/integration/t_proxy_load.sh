#!/usr/bin/env bash
# 1,000 concurrent CONNECT tunnels through the real sandbox-proxyd, all held open at once and each
# carrying a request; then the per-account cap (-m) answers 429 beyond its limit and frees a slot
# when a tunnel closes.  Prints proxyd's RSS per idle tunnel (measured properly in bench/).
# UIDs 59520-59529.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/proxy_world.sh"

world_add_user ldbox 59521
proxy_world
proxy_profile 10-box.conf "[Match]
User=ldbox
[Network]
Allow=203.0.113.10:8080"
proxy_start

SCR=/tmp/ps-scratch/ld; mkdir -p $SCR; chmod 1777 $SCR
rss() { awk '/^VmRSS/ {print $2}' /proc/$PROXYD_PID/status; }
r0=$(rss)
mkfifo "$WORLD/hold"
as ldbox python3 "$PS_SRC/tests/lib/proxy_tunnels.py" --proxy 127.0.0.1:3128 --target 203.0.113.10:8080 \
    -n 1000 --hold $SCR/held < "$WORLD/hold" > "$WORLD/tunnels.out" 2>&1 &
TPID=$!
exec 9> "$WORLD/hold"
for _ in $(seq 600); do [ -s $SCR/held ] && break; kill -0 $TPID 2>/dev/null || break; sleep 0.1; done
out=$(cat "$WORLD/tunnels.out")
assert_eq "1000 concurrent tunnels, each carried a request" "opened=1000 ok=1000 failed=0 statuses=200:1000" "$(head -n 1 <<<"$out")"
r1=$(rss)
n=$(ss -tn state established '( sport = :3128 )' | tail -n +2 | wc -l)
[ "$n" -ge 1000 ] || fail "only $n client connections established at proxyd"
ok "$n client connections held at once"
echo "# proxyd RSS: ${r0} KiB idle, ${r1} KiB with 1000 tunnels: $(( (r1 - r0) * 1024 / 1000 )) bytes per tunnel"
exec 9>&-
wait $TPID
# every tunnel gets its close record once both sides have closed; the origin closes its 1,000
# connections at its own pace (a fixed 0.5 s wait was too short about one run in four)
for _ in $(seq 100); do
    c=$(grep -c '"decision":"close"' "$WORLD/decisions.jsonl")
    [ "$c" -ge 1000 ] && break
    sleep 0.1
done
[ "$c" -ge 1000 ] || fail "only $c close records after 10 s"
ok "$c close records"
kill -0 "$PROXYD_PID" || fail "proxyd died under load"

# --- per-account cap: 429 beyond -m ---
proxy_done
for _ in $(seq 50); do ss -tln | grep -q ':3128 ' || break; sleep 0.1; done
proxy_start -m 5
rm -f $SCR/held
mkfifo "$WORLD/hold3"
as ldbox python3 "$PS_SRC/tests/lib/proxy_tunnels.py" --proxy 127.0.0.1:3128 --target 203.0.113.10:8080 \
    -n 5 --hold $SCR/held < "$WORLD/hold3" > "$WORLD/tunnels2.out" 2>&1 &
TPID=$!
exec 9> "$WORLD/hold3"
for _ in $(seq 100); do [ -s $SCR/held ] && break; sleep 0.1; done
assert_eq "5 tunnels at the cap" "opened=5 ok=5 failed=0 statuses=200:5" "$(cat "$WORLD/tunnels2.out")"
# held tunnels have no idle limit; the kernel's keepalive (from the listener) finds vanished clients
k=$(ss -tno state established '( sport = :3128 )' | grep -c 'timer:(keepalive')
[ "$k" -ge 5 ] || fail "accepted sockets without TCP keepalive: $(ss -tno state established '( sport = :3128 )')"
ok "accepted sockets carry TCP keepalive ($k)"
hdr=$(pcurl ldbox -D - -o /dev/null http://203.0.113.10:8080/hello 2>&1)
assert_match "sixth connection: 429" '^HTTP/1.1 429' "$hdr"
l=$(proxy_log_last '"reason":"too_many_connections"')
assert_match "429 logged" '"account":"ldbox".*"decision":"deny"' "$l"
exec 9>&-
wait $TPID
sleep 0.3
assert_eq "slots freed when tunnels close" "hello from origin" "$(pcurl ldbox http://203.0.113.10:8080/hello)"
proxy_done
# --- out of file descriptors: no busy loop, served again once descriptors are free ---
proxy_done
for _ in $(seq 50); do ss -tln | grep -q ':3128 ' || break; sleep 0.1; done
# 160: its listeners alone take ~100 (16 transparent ports and 16 DNS ports, UDP and TCP, on each
# of two addresses), and the 150 connections below need more than what is left.
PROXYD_WRAP="prlimit --nofile=160:160 --" proxy_start
if [ "$(awk '/Max open files/ {print $4}' /proc/$PROXYD_PID/limits)" != 160 ]; then
    echo "# proxyd raised its descriptor limit (CAP_SYS_RESOURCE): EMFILE part not reachable here"
else
    mkfifo "$WORLD/holdfd"
    as ldbox python3 -c '
import socket, sys
socks = [socket.create_connection(("127.0.0.1", 3128)) for _ in range(150)]   # queued past EMFILE
open(sys.argv[1], "w").write("holding\n")
sys.stdin.read()' $SCR/heldfd < "$WORLD/holdfd" > "$WORLD/fd.out" 2>&1 &
    FPID=$!
    exec 8> "$WORLD/holdfd"
    for _ in $(seq 100); do [ -s $SCR/heldfd ] && break; sleep 0.1; done
    sleep 0.5
    t0=$(awk '{print $14 + $15}' /proc/$PROXYD_PID/stat)
    sleep 1
    t1=$(awk '{print $14 + $15}' /proc/$PROXYD_PID/stat)
    [ $((t1 - t0)) -lt 30 ] || fail "proxyd spins while out of descriptors ($((t1 - t0)) ticks in 1 s)"
    ok "no busy loop at the descriptor limit ($((t1 - t0)) ticks in 1 s)"
    # (glibc syslog may itself lack a descriptor then; -f also writes to stderr)
    assert_match "EMFILE logged" 'accept: .*pausing the listeners that hit it' "$(cat "$SYSLOG" "$WORLD/proxyd.stderr")"
    exec 8>&-
    wait $FPID
    sleep 11     # the queued connections time out (head timeout) and free their descriptors
    assert_eq "served again once descriptors are free" "hello from origin" "$(pcurl ldbox http://203.0.113.10:8080/hello)"
fi
proxy_done
