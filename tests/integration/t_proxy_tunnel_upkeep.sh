#!/usr/bin/env bash
# Upkeep of long-lived tunnels (proxyd/tunnel.c, HalfClosedTimeout= in sandbox.conf(5)): a tunnel
# that one side has ended is closed once the other way stays silent for HalfClosedTimeout=, in
# either direction, and logged as such; one whose remaining way keeps moving bytes is not cut; a
# tunnel that has lived one check gets TCP keepalive on its upstream socket too, so an origin that
# vanishes is found; a reset from either side is passed on as a reset, not as a FIN.
# UIDs 59570-59579.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/proxy_world.sh"

world_add_user tuser 59571
proxy_world
echo "HalfClosedTimeout=1s" >> "$CONF/sandbox.conf"     # checked every 250 ms
proxy_profile 10-t.conf "[Match]
User=tuser
[Network]
Allow=203.0.113.10:8091-8098"

# The origin, one behaviour per port; what it saw goes to its output.
#   8091  reads to the client's EOF, then says nothing and keeps the connection open
#   8092  reads to the client's EOF, then sends one byte every 0.3 s, ten in all, and closes
#   8093  says "bye" and shuts its side down at once, then reads, printing when proxyd closes
#   8094  reads to the client's EOF, sends 1 MiB at once, then says nothing and keeps it open
#   8095  says "bye", then resets the connection
#   8096  reads until the client's end, printing "8096 fin" or "8096 reset"
#   8097  sends 64 KiB and its FIN, then closes: what the client sends next gets a reset
#   8098  echoes until the client's EOF, then keeps the connection open
proxy_echo_origin "$WORLD/upkeep-origin.out" 8091:sink-hold 8092:sink-trickle 8093:bye 8094:sink-mib-hold \
    8095:bye-reset 8096:sink-report 8097:all-then-close 8098:echo-hold
proxy_start

# tunnel PORT HALFCLOSE: CONNECT to the origin's PORT, send "hello" (then half-close when HALFCLOSE
# is 1), read until EOF; prints what arrived and how long after the CONNECT the EOF came.
# PYTHONPATH: for tests/lib/proxy_connect.py, the CONNECT handshake the proxy tests' clients share.
tunnel() { as tuser PYTHONPATH="$PS_SRC/tests/lib" timeout 20 python3 -c '
import socket, sys, time
from proxy_connect import open_tunnel
port, half = int(sys.argv[1]), sys.argv[2] == "1"
t0 = time.monotonic()
s, status, line = open_tunnel("203.0.113.10:%d" % port, timeout=15)
assert status == "200", line
s.sendall(b"hello")
if half:
    s.shutdown(socket.SHUT_WR)
got = b""
while True:
    b = s.recv(4096)
    if not b: break
    got += b
print("%s eof after %.2f" % (got.decode(), time.monotonic() - t0))
if not half:
    time.sleep(8)          # the origin ended its way; this client keeps its own open, silent
' "$@"; }

# --- client half-closed, origin silent: cut after HalfClosedTimeout= ---
out=$(tunnel 8091 1)
t=$(sed -n 's/.*eof after \([0-9.]*\)$/\1/p' <<<"$out")
[ -n "$t" ] || fail "no EOF through the silent half-closed tunnel: $out"
awk -v t="$t" 'BEGIN { exit !(t >= 0.9 && t < 4) }' ||
    fail "half-closed silent tunnel ended after ${t}s, not between HalfClosedTimeout=1s and 4s"
ok "client half-closed, origin silent: tunnel closed after ${t}s"
l=$(proxy_log_last '"port":8091,' '"decision":"close"')
assert_match "  ... close record says why" '"reason":"half_closed_idle"' "$l"
assert_match "  ... with its bytes" '"bytes_up":5,"bytes_down":0' "$l"

# --- client half-closed, origin trickling for 3 s: not cut; upstream keepalive on meanwhile ---
tunnel 8092 1 > "$WORLD/trickle.out" &
TRICKLE=$!
for _ in $(seq 50); do                      # the tunnel lives 3 s; its first check is at 250 ms
    ka=$(ss -tnoH '( dport = :8092 )')
    [[ $ka =~ timer:\(keepalive ]] && break
    sleep 0.05
done
assert_match "a tunnel a check old has TCP keepalive upstream" 'timer:\(keepalive' "$ka"
wait "$TRICKLE"
out=$(cat "$WORLD/trickle.out")
assert_match "half-closed tunnel with data moving is not cut" '^xxxxxxxxxx eof after ' "$out"
t=$(sed -n 's/.*eof after \([0-9.]*\)$/\1/p' <<<"$out")
awk -v t="$t" 'BEGIN { exit !(t >= 2.8) }' || fail "trickling tunnel ended after ${t}s"
l=$(proxy_log_last '"port":8092,' '"decision":"close"')
assert_match "  ... and closes as usual" '"reason":"closed"' "$l"

# --- origin half-closed, client silent and open: cut too, and the origin sees it go ---
out=$(tunnel 8093 0)
assert_match "origin's bytes and FIN reached the client" '^bye eof after ' "$out"
for _ in $(seq 60); do grep -q "8093 eof" "$WORLD/upkeep-origin.out" && break; sleep 0.1; done
t=$(sed -n 's/^8093 eof after \([0-9.]*\)$/\1/p' "$WORLD/upkeep-origin.out")
[ -n "$t" ] || fail "the origin never saw the tunnel close: $(cat "$WORLD/upkeep-origin.out")"
awk -v t="$t" 'BEGIN { exit !(t >= 0.9 && t < 4) }' ||
    fail "origin half-closed, client silent: tunnel ended after ${t}s (the client stays 8 s)"
ok "origin half-closed, client silent: tunnel closed after ${t}s"
l=$(proxy_log_last '"port":8093,' '"decision":"close"')
assert_match "  ... logged" '"reason":"half_closed_idle"' "$l"

# --- a tunnel that moved bulk and then went quiet gives its splice pipes back ---
# 256 KiB each way (reads that fill the copy buffer: both directions splice, through a pipe each),
# then a byte every 0.1 s for 1.5 s (data moving: the pipes stay), then 2 s of silence.
pipes() { find "/proc/$PROXYD_PID/fd" -lname 'pipe:*' 2>/dev/null | wc -l; }
before=$(pipes)
as tuser PYTHONPATH="$PS_SRC/tests/lib" timeout 20 python3 -c '
import sys, time
from proxy_connect import open_tunnel
s, status, line = open_tunnel("203.0.113.10:8098", timeout=15)
assert status == "200", line
s.sendall(b"x" * 262144)
got = 0
while got < 262144:
    got += len(s.recv(65536))
print("bulk done", flush=True)
for _ in range(15):
    s.sendall(b"y"); s.recv(16); time.sleep(0.1)
print("quiet", flush=True)
time.sleep(2.5)
print("end", flush=True)' > "$WORLD/pipes.out" 2>&1 &
PIPES_CLIENT=$!
for _ in $(seq 100); do grep -q "bulk done" "$WORLD/pipes.out" && break; sleep 0.05; done
sleep 0.5
moving=$(pipes)
for _ in $(seq 100); do grep -q quiet "$WORLD/pipes.out" && break; sleep 0.05; done
sleep 1.5
quiet=$(pipes)
wait "$PIPES_CLIENT"
assert_eq "a tunnel moving data after bulk holds two pipes (four descriptors)" 4 "$((moving - before))"
assert_eq "  ... given back once it has been quiet for a check" 0 "$((quiet - before))"

# --- a reset is passed on as one, both ways (a FIN would say that the stream ended whole) ---
out=$(as tuser PYTHONPATH="$PS_SRC/tests/lib" timeout 20 python3 -c '
from proxy_connect import open_tunnel, read_to_end
s, status, line = open_tunnel("203.0.113.10:8095", timeout=15)
assert status == "200", line
got, how = read_to_end(s)
print(got.decode(), how)')
assert_eq "origin resets: the client gets its bytes, then a reset" "bye <reset>" "$out"
for _ in $(seq 20); do l=$(proxy_log_last '"port":8095,' '"decision":"close"'); [ -n "$l" ] && break; sleep 0.1; done
assert_match "  ... close record says who" '"reason":"upstream_reset"' "$l"
as tuser PYTHONPATH="$PS_SRC/tests/lib" timeout 20 python3 -c '
import socket, struct, time
from proxy_connect import open_tunnel
s, status, line = open_tunnel("203.0.113.10:8096", timeout=15)
assert status == "200", line
s.sendall(b"hello"); time.sleep(0.2)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()'
for _ in $(seq 50); do grep -q "^8096 " "$WORLD/upkeep-origin.out" && break; sleep 0.1; done
assert_eq "client resets: the origin gets a reset" "8096 reset" "$(grep "^8096 " "$WORLD/upkeep-origin.out")"
for _ in $(seq 20); do l=$(proxy_log_last '"port":8096,' '"decision":"close"'); [ -n "$l" ] && break; sleep 0.1; done
assert_match "  ... close record says who" '"reason":"client_reset"' "$l"

# A reset that comes after a stream ended whole (the origin sent all and its FIN, then closed, and
# the client's later bytes drew a reset) is not passed on to that stream: the client, reading
# late, still gets all 64 KiB and the FIN, not a reset that would drop what was still queued.
out=$(as tuser PYTHONPATH="$PS_SRC/tests/lib" timeout 20 python3 -c '
import time
from proxy_connect import open_tunnel, read_to_end
s, status, line = open_tunnel("203.0.113.10:8097", timeout=15, rcvbuf=4096)
assert status == "200", line
time.sleep(1)                                # all 64 KiB and the FIN have reached proxyd
for b in (b"x", b"y"):
    s.sendall(b); time.sleep(0.5)            # the origin answers with a reset
got, how = read_to_end(s)
print(len(got), how)')
assert_eq "origin resets after its whole stream: the client gets all of it and the FIN" "65536 <fin>" "$out"
for _ in $(seq 20); do l=$(proxy_log_last '"port":8097,' '"decision":"close"'); [ -n "$l" ] && break; sleep 0.1; done
assert_match "  ... close record says the origin reset" '"reason":"upstream_reset"' "$l"

# --- client half-closed and reading slowly what proxyd still holds: nothing is cut off ---
# The origin's 1 MiB is all read by proxyd long before this client (32 KiB receive buffer,
# ~160 KiB/s) has it: what drains from proxyd's pipe is progress, so the tunnel ends only once
# everything is out and the way has then been silent for HalfClosedTimeout=.  Send buffers are
# capped at 64 KiB in this world (its own namespace) so that the bytes wait in proxyd, not in the
# kernel, which would deliver them after close() anyway.
sysctl -q -w net.ipv4.tcp_wmem="4096 16384 65536"
out=$(as tuser PYTHONPATH="$PS_SRC/tests/lib" timeout 30 python3 -c '
import socket, time
from proxy_connect import open_tunnel
s, _, _ = open_tunnel("203.0.113.10:8094", timeout=15, rcvbuf=32768)
s.sendall(b"hello"); s.shutdown(socket.SHUT_WR)
n = 0
while True:
    b = s.recv(16384)
    if not b: break
    n += len(b); time.sleep(0.1)
print(n)')
assert_eq "slow reader of a half-closed tunnel gets every byte" "$((1 << 20))" "$out"
l=$(proxy_log_last '"port":8094,' '"decision":"close"')
assert_match "  ... then the silent tunnel is closed" '"reason":"half_closed_idle"' "$l"

kill -0 "$PROXYD_PID" || fail "proxyd died"
proxy_done
