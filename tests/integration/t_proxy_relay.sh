#!/usr/bin/env bash
# Relay loops (proxyd/relay.c, sandbox-proxyd -j): one per CPU by default; a tunnel that stays busy
# moves off the decision loop to a relay loop, a short one stays; a moved tunnel relays bytes both
# ways intact, keeps its upkeep (HalfClosedTimeout=), survives a reload, and when it ends its close
# record is written with its bytes and its slot of the per-account cap (-m) comes back; SIGTERM
# with tunnels on relay loops exits cleanly.  Where a connection is relayed is read from /proc:
# the epoll instance that has proxyd's socket registered (tests/lib/proxy_epoll_of.py).
# UIDs 59590-59599.
. "$(dirname "$0")/../lib/world.sh"; world_enter "$@"
. "$PS_SRC/tests/lib/proxy_world.sh"

world_add_user ruser 59591
proxy_world
echo "HalfClosedTimeout=1s" >> "$CONF/sandbox.conf"     # checked every 250 ms
proxy_profile 10-r.conf "[Match]
User=ruser
[Network]
Allow=203.0.113.10:8095-8096"

# The origin echoes what it reads until the client's EOF; then
#   8095  says nothing more and keeps the connection open (the tunnel ends by HalfClosedTimeout=)
#   8096  closes
ip netns exec dnsup python3 -c '
import socket, threading, time
def serve(port, c):
    while True:
        b = c.recv(1 << 16)
        if not b: break
        c.sendall(b)
    if port == 8095:
        time.sleep(30)
    c.close()
def listen(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("203.0.113.10", port)); s.listen(16)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(port, c), daemon=True).start()
for p in (8095, 8096):
    threading.Thread(target=listen, args=(p,), daemon=True).start()
print("ready", flush=True)
time.sleep(600)' > "$WORLD/echo-origin.out" 2>&1 &
WORLD_PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$WORLD/echo-origin.out" 2>/dev/null && break; sleep 0.05; done
grep -q ready "$WORLD/echo-origin.out" || fail "origin did not start: $(cat "$WORLD/echo-origin.out")"

relays() { grep -l '^pd-relay' /proc/"$PROXYD_PID"/task/*/comm 2>/dev/null | wc -l; }
where() { python3 "$PS_SRC/tests/lib/proxy_epoll_of.py" "$PROXYD_PID" 3128 "$1"; }
client() { as ruser timeout 40 python3 "$PS_SRC/tests/lib/proxy_relay_client.py" "$@"; }
# wait_port FILE: the port a paused client printed
wait_port() {
    local p
    for _ in $(seq 200); do
        p=$(sed -n 's/^port //p' "$1" 2>/dev/null)
        [ -n "$p" ] && { echo "$p"; return 0; }
        sleep 0.05
    done
    fail "client did not get to its pause: $(cat "$1")"
}
# wait_log FILTER...: the close record (fixed strings), polled: a relay loop hands it back
wait_log() {
    local l
    for _ in $(seq 100); do
        l=$(proxy_log_last '"decision":"close"' "$@")
        [ -n "$l" ] && { echo "$l"; return 0; }
        sleep 0.05
    done
    fail "no close record with $*"
}

# --- the default: one relay loop per CPU (none on one CPU) ---
proxy_start
n=$(nproc)
want=$(( n < 2 ? 0 : (n > 16 ? 16 : n) ))
assert_eq "one relay loop per CPU by default ($n CPUs)" "$want" "$(relays)"
proxy_done

# --- -j 2, at most 3 connections per account ---
proxy_start -j 2 -m 3
assert_eq "-j 2: two relay loops" 2 "$(relays)"

client echo 8095 40 20 "$WORLD/go1" > "$WORLD/busy.out" 2>&1 &
BUSY=$!
client echo 8096 1 0 "$WORLD/go1" > "$WORLD/short.out" 2>&1 &
SHORT=$!
pb=$(wait_port "$WORLD/busy.out") || exit 1
ps_=$(wait_port "$WORLD/short.out") || exit 1
assert_eq "a busy tunnel (40 round trips) has moved to a relay loop" relay "$(where "$pb")"
assert_eq "a short tunnel (1 round trip) stays on the decision loop" decision "$(where "$ps_")"

# a reload while the tunnel is on a relay loop: it goes on under the configuration it began with
hups=$(grep -c "reloaded configuration" "$SYSLOG")
kill -HUP "$PROXYD_PID"
for _ in $(seq 100); do [ "$(grep -c "reloaded configuration" "$SYSLOG")" -gt "$hups" ] && break; sleep 0.05; done
[ "$(grep -c "reloaded configuration" "$SYSLOG")" -gt "$hups" ] || fail "proxyd did not reload"
touch "$WORLD/go1"
wait "$BUSY" "$SHORT"
out=$(cat "$WORLD/busy.out")
assert_match "the moved tunnel echoes 20 more round trips after the reload" 'rounds=60 ' "$out"
t=$(sed -n 's/.*eof_after=\([0-9.]*\) .*/\1/p' <<<"$out")
awk -v t="$t" 'BEGIN { exit !(t >= 0.9 && t < 4) }' ||
    fail "half-closed silent tunnel on a relay loop ended after ${t:-never}s, not HalfClosedTimeout=1s later"
ok "half-closed and silent on a relay loop: closed after ${t}s"
l=$(wait_log '"port":8095,') || exit 1
assert_match "  ... its close record says why" '"reason":"half_closed_idle"' "$l"
assert_match "  ... with every byte both ways (60 x 64)" '"bytes_up":3840,"bytes_down":3840' "$l"
assert_match "short tunnel echoed and closed" 'rounds=1 ' "$(cat "$WORLD/short.out")"

# --- bulk both ways on a relay loop (splice), checked end to end ---
client bulk 8096 32 "$WORLD/go2" > "$WORLD/bulk.out" 2>&1 &
BULK=$!
pb=$(wait_port "$WORLD/bulk.out") || exit 1
assert_eq "a bulk tunnel, half way, is on a relay loop" relay "$(where "$pb")"
touch "$WORLD/go2"
wait "$BULK"
assert_match "32 MiB up and the same 32 MiB echoed down, in order" '^bulk ok 33554432$' \
    "$(grep -v '^port' "$WORLD/bulk.out")"
l=$(wait_log '"port":8096,' '"bytes_up":33554432') || exit 1
assert_match "  ... logged with its bytes" '"bytes_up":33554432,"bytes_down":33554432' "$l"

# --- the per-account cap: slots held by moved tunnels come back when they end ---
for i in 1 2 3; do
    client echo 8096 40 0 "$WORLD/go3" > "$WORLD/cap$i.out" 2>&1 &
    CAP[i]=$!
done
for i in 1 2 3; do
    p=$(wait_port "$WORLD/cap$i.out") || exit 1
    assert_eq "capped tunnel $i moved" relay "$(where "$p")"
done
out=$(client echo 8096 1 0 "$WORLD/go3" 2>&1)
assert_match "a fourth connection of the account is refused (-m 3)" '^status HTTP/1.1 429' "$out"
touch "$WORLD/go3"
wait "${CAP[@]}"
for i in 1 2 3; do assert_match "capped tunnel $i done" 'rounds=40 ' "$(cat "$WORLD/cap$i.out")"; done
for _ in $(seq 100); do
    [ "$(grep -c '"port":8096,.*"decision":"close"' "$WORLD/decisions.jsonl")" -ge 5 ] && break
    sleep 0.05
done
rm -f "$WORLD/go3"
for i in 1 2 3; do
    client echo 8096 40 0 "$WORLD/go4" > "$WORLD/again$i.out" 2>&1 &
    CAP[i]=$!
done
for i in 1 2 3; do wait_port "$WORLD/again$i.out" >/dev/null; done
touch "$WORLD/go4"
wait "${CAP[@]}"
for i in 1 2 3; do
    assert_match "after three moved tunnels ended, connection $i of three is served again" 'rounds=40 ' \
        "$(cat "$WORLD/again$i.out")"
done

# --- SIGTERM while tunnels sit on relay loops: a clean exit ---
client echo 8095 40 0 "$WORLD/go5" > "$WORLD/term.out" 2>&1 &
TERM_CLIENT=$!
pb=$(wait_port "$WORLD/term.out") || exit 1
assert_eq "a tunnel is on a relay loop at SIGTERM" relay "$(where "$pb")"
proxy_done
touch "$WORLD/go5"
wait "$TERM_CLIENT"

# --- -j 0: no relay loops, the same busy tunnel stays where it was decided ---
proxy_start -j 0
assert_eq "-j 0: no relay loops" 0 "$(relays)"
client echo 8096 40 5 "$WORLD/go6" > "$WORLD/none.out" 2>&1 &
NONE=$!
pb=$(wait_port "$WORLD/none.out") || exit 1
assert_eq "without relay loops a busy tunnel stays on the decision loop" decision "$(where "$pb")"
touch "$WORLD/go6"
wait "$NONE"
assert_match "  ... and works as before" 'rounds=45 ' "$(cat "$WORLD/none.out")"
proxy_done
