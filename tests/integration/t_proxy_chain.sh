#!/usr/bin/env bash
# UpstreamProxy= chaining: proxyd still decides, resolves and classifies itself, then asks the
# corporate proxy (by name here) for exactly the address that passed, never the client's name;
# denials never reach it; an origin that speaks first, whose first bytes come in one segment with
# the upstream proxy's 200, is passed on whole.  Also: a client that sends its request head too slowly is answered 408
# and dropped while others are served.  UIDs 59550-59559.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/proxy_world.sh"

world_add_user chbox 59551
proxy_world allowed.test=A:203.0.113.10 corp-proxy.test=A:203.0.113.10 loop.test=A:127.0.0.1
UPLOG="$WORLD/upstream-proxy.log"; : > "$UPLOG"
ip netns exec dnsup python3 "$PS_SRC/tests/lib/proxy_upstream_proxy.py" --listen 203.0.113.10:3130 \
    --log "$UPLOG" --banner-ports 2222 > "$WORLD/upproxy.out" 2>&1 &
WORLD_PIDS+=($!)
# An origin that speaks first (as SSH and SMTP do): a banner, then an echo of what it is sent.
ip netns exec dnsup python3 -c '
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("203.0.113.10", 2222)); s.listen(16); print("ready", flush=True)
def serve(c):
    c.sendall(b"SSH-2.0-banner-first\r\n")
    while True:
        d = c.recv(4096)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()' > "$WORLD/banner.out" 2>&1 &
WORLD_PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$WORLD/banner.out" 2>/dev/null && break; sleep 0.05; done
for _ in $(seq 100); do grep -q ready "$WORLD/upproxy.out" 2>/dev/null && break; sleep 0.05; done
echo "UpstreamProxy=corp-proxy.test:3130" >> "$CONF/sandbox.conf"
proxy_profile 10-box.conf "[Match]
User=chbox
[Network]
Allow=allowed.test:80,443,2222
Allow=loop.test:80
Allow=127.0.0.1:8898"
proxy_start
proxy_nft 59551

assert_eq "CONNECT through the upstream proxy" "hello from origin" "$(pcurl chbox https://allowed.test/hello)"
assert_eq "upstream proxy was asked for the checked address" "CONNECT 203.0.113.10:443" "$(tail -n 1 "$UPLOG")"
assert_eq "absolute-form through the upstream proxy" "hello from origin" "$(pcurl chbox http://allowed.test/hello)"
assert_eq "  ... also by address" "CONNECT 203.0.113.10:80" "$(tail -n 1 "$UPLOG")"
assert_eq "transparent through the upstream proxy" "hello from origin" "$(tcurl chbox https://allowed.test/hello)"
assert_eq "  ... also by address" "CONNECT 203.0.113.10:443" "$(tail -n 1 "$UPLOG")"
# The origin's banner arrives with the upstream proxy's 200: proxyd passes it on after its own.
banner_client='
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
if sys.argv[3] == "connect":
    s.sendall(b"CONNECT allowed.test:2222 HTTP/1.1\r\nHost: allowed.test:2222\r\n\r\n")
got = b""
try:
    while b"banner-first\r\n" not in got:
        d = s.recv(4096)
        if not d: break
        got += d
    s.sendall(b"ping\n")
    while not got.endswith(b"ping\n"):
        d = s.recv(4096)
        if not d: break
        got += d
except OSError as e:
    got += b" <" + type(e).__name__.encode() + b">"
print(got.decode("latin-1").replace("\r\n", "|").replace("\n", "|"))'
assert_eq "an origin that speaks first, through the upstream proxy (explicit)" \
    "HTTP/1.1 200 Connection established||SSH-2.0-banner-first|ping|" \
    "$(as chbox python3 -c "$banner_client" 127.0.0.1 3128 connect)"
assert_eq "  ... and transparent" "SSH-2.0-banner-first|ping|" "$(as chbox python3 -c "$banner_client" allowed.test 2222 direct)"
n=$(wc -l < "$UPLOG")
code=$(pcurl chbox -o /dev/null -w '%{http_code}' http://denied.test/ 2>/dev/null)
assert_eq "denied locally" 403 "$code"
code=$(pcurl chbox -o /dev/null -w '%{http_code}' http://loop.test/ 2>/dev/null)
assert_eq "SSRF refused before the upstream proxy" 403 "$code"
assert_eq "upstream proxy never saw a denied request" "$n" "$(wc -l < "$UPLOG")"
assert_no_match "no name ever sent upstream" 'allowed.test|loop.test|denied.test' "$(cat "$UPLOG")"
# An internal address opened by an IP rule is this host's, reached directly, never asked of the
# corporate proxy (which would reach its own 127.0.0.1).
mkdir -p "$WORLD/www8898"; echo "local service" > "$WORLD/www8898/index.html"
world_bg python3 -m http.server -b 127.0.0.1 8898 -d "$WORLD/www8898" >/dev/null 2>&1
for _ in $(seq 50); do ss -tln | grep -q '127.0.0.1:8898 ' && break; sleep 0.1; done
assert_eq "internal address opened by an IP rule: reached directly" "local service" "$(pcurl chbox http://127.0.0.1:8898/)"
assert_no_match "  ... not through the upstream proxy" '127.0.0.1' "$(cat "$UPLOG")"

# --- slow client: an incomplete head for longer than the head timeout (10 s) ---
as chbox python3 -c '
import socket, time
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(b"GET http://allowed.test/hello HTTP/1.1\r\nHost: allo")
t = time.time()
d = s.recv(4096)
print(d.split(b"\r\n")[0].decode(), round(time.time() - t))
print("closed" if s.recv(4096) == b"" else "open")' > "$WORLD/slow.out" 2>&1 &
SLOW=$!
sleep 1
assert_eq "others served while a slow client waits" "hello from origin" "$(pcurl chbox https://allowed.test/hello)"
wait $SLOW
out=$(cat "$WORLD/slow.out")
assert_match "slow head answered 408 after ~10 s" '^HTTP/1.1 408 Request Timeout 1[01]$' "$(head -n 1 <<<"$out")"
assert_eq "then closed" closed "$(tail -n 1 <<<"$out")"
proxy_done
