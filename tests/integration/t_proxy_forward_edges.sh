#!/usr/bin/env bash
# Absolute-form forwarding against clients and origins that bend HTTP (DESIGN.md §5.3): proxyd
# writes the framing fields itself, so Content-Length named in Connection can neither smuggle a
# second request to the origin nor leave a client without a length; a trailer line that is a
# request line is refused, and so are request chunk sizes over 0x7fffffff or 8 digits and
# chunk extensions; a 20 KiB response head goes through; an HTTP/1.0 client gets a chunked
# answer decoded and no 1xx; an origin that never answers gets the client a 504; connections over the
# per-account cap are answered 429 at once, even before they send a request; a response body the
# origin cuts short (a reset, a close before the framing's end, 60 s of silence) ends the client
# connection with a reset, never a FIN that would pass for the body's end.  UIDs 59560-59569.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/proxy_world.sh"

world_add_user fwuser 59561
proxy_world
RAW_LOG="$WORLD/raw-origin.log"; : > "$RAW_LOG"
ip netns exec dnsup python3 "$PS_SRC/tests/lib/proxy_raw_origin.py" --listen 203.0.113.10:8090 \
    --log "$RAW_LOG" > "$WORLD/raw-origin.out" 2>&1 &
WORLD_PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$WORLD/raw-origin.out" 2>/dev/null && break; sleep 0.05; done
grep -q ready "$WORLD/raw-origin.out" || fail "raw origin did not start: $(cat "$WORLD/raw-origin.out")"
proxy_profile 10-fw.conf "[Match]
User=fwuser
[Network]
Allow=203.0.113.10:8090"
proxy_start -m 4
O=http://203.0.113.10:8090

# The silent origin and the client that stops mid-body take the whole forwarding timeout (60 s):
# started first, checked last.
pcurl fwuser --max-time 90 -D - -o /dev/null "$O/silent" > "$WORLD/silent.out" 2>&1 &
SILENT=$!
as fwuser timeout 90 python3 -c '
import socket
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(b"POST '"$O"'/stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
print(s.recv(4096).decode("latin-1").split("\r\n")[0])' > "$WORLD/stalled.out" 2>&1 &
STALLED=$!
# the answer's head and "part" of a body ended by close, then silence: a reset after 60 s
as fwuser PYTHONPATH="$PS_SRC/tests/lib" timeout 90 python3 -c '
import socket
from proxy_connect import read_to_end
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(b"GET '"$O"'/body-stall HTTP/1.0\r\n\r\n")
d, how = read_to_end(s)
print(d.split(b"\r\n\r\n")[-1].decode(), how)' > "$WORLD/bodystall.out" 2>&1 &
BODYSTALL=$!

# raw CLIENT: send stdin as it is, print everything until the connection closes (or 5 s)
raw() { as fwuser timeout 8 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", 3128)); s.settimeout(5)
s.sendall(sys.stdin.buffer.read())
d = b""
try:
    while True:
        b = s.recv(65536)
        if not b: break
        d += b
except socket.timeout:
    d += b"<timeout>"
sys.stdout.write(d.decode("latin-1"))'; }

# raw_end REQUEST: send it, print the body that arrived and how the connection ended: <fin>,
# <reset> or <timeout>
raw_end() { printf "$1" | as fwuser PYTHONPATH="$PS_SRC/tests/lib" timeout 8 python3 -c '
import socket, sys
from proxy_connect import read_to_end
s = socket.create_connection(("127.0.0.1", 3128)); s.settimeout(5)
s.sendall(sys.stdin.buffer.read())
d, how = read_to_end(s)
print(d.partition(b"\r\n\r\n")[2].decode("latin-1"), how)'; }

# close records of forwarded answers cut short, waited for up to 2 s to reach N
cut_records() {
    for _ in $(seq 20); do
        [ "$(grep -c '"decision":"close","reason":"response_cut_short"' "$WORLD/decisions.jsonl")" -ge "$1" ] && break
        sleep 0.1
    done
    grep -c '"decision":"close","reason":"response_cut_short"' "$WORLD/decisions.jsonl"
}

# --- Content-Length named in Connection: the request keeps its length, nothing is smuggled ---
body='GET /admin HTTP/1.1\r\nHost: internal.example\r\n\r\n'
n=$(printf "$body" | wc -c)
out=$(printf "POST $O/smuggle HTTP/1.1\r\nHost: x\r\nConnection: close, Content-Length\r\nContent-Length: $n\r\n\r\n$body" | raw)
assert_match "smuggle attempt: answered once" '^HTTP/1.1 200 OK' "$out"
for _ in $(seq 40); do grep -q "/smuggle" "$RAW_LOG" && break; sleep 0.1; done
got=$(grep "/smuggle" "$RAW_LOG")
assert_match "origin got the body with its length" "Content-Length: $n\\\\r\\\\n" "$got"
assert_no_match "Connection: Content-Length not passed on" 'Connection: Content-Length' "$got"
assert_match "origin got Connection: close from proxyd" 'Connection: close' "$got"

# --- a trailer line that is a request line: 400, not forwarded ---
out=$(printf "POST $O/trailer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nGET /admin HTTP/1.1\r\n\r\n" | raw)
assert_match "request line as a trailer: 400 Bad Request" '^HTTP/1.1 400 Bad Request' "$out"
assert_match "  ... says why" '"detail":"bad_chunked_request_body"' "$out"
assert_eq "  ... logged" 1 "$(grep -c '"reason":"bad_chunked_request_body"' "$WORLD/decisions.jsonl")"

# --- request chunk sizes an origin could read differently: 400 (the body is passed on as written) ---
# 100000000 is 0 in 32 bits: such an origin would take the next bytes for a request of their own
sleep 2; seen=$(wc -l < "$RAW_LOG")   # (the origin logs a connection after 1.5 s of quiet)
out=$(printf "POST $O/chunk32 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100000000\r\nGET /admin HTTP/1.1\r\n\r\n" | raw)
assert_match "request chunk size of 2^32: 400" '^HTTP/1.1 400 Bad Request' "$out"
out=$(printf "POST $O/chunkext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;a=b\r\nx\r\n0\r\n\r\n" | raw)
assert_match "request chunk extension: 400" '^HTTP/1.1 400 Bad Request' "$out"
# proxyd refuses before it sends the origin the request head: the origin may see a connection and
# nothing on it, and logs each connection once it has been quiet 1.5 s
sleep 2
assert_no_match "  ... neither chunk line (nor what follows) reached the origin" '100000000|1;a=b|/admin|chunk' \
    "$(tail -n +$((seen + 1)) "$RAW_LOG")"

# --- the origin names Content-Length in Connection: the client still gets a length ---
out=$(pcurl fwuser --max-time 5 -D - "$O/cl-hop" 2>&1)
assert_match "response keeps its length" 'Content-Length: 2' "$out"
assert_match "  ... and the client is done at once" 'ok$' "$out"

# --- a 20 KiB response head (more than the 16 KiB body buffer) ---
assert_eq "20 KiB response head" "big" "$(pcurl fwuser --max-time 5 "$O/bighead" 2>&1)"

# --- HTTP/1.0 client, chunked origin: decoded, ended by close ---
out=$(printf "GET $O/chunked HTTP/1.0\r\n\r\n" | raw)
assert_no_match "HTTP/1.0 client gets no chunked coding" 'Transfer-Encoding' "$out"
assert_match "  ... the decoded body, then close" 'Connection: close'$'\r\n\r\n''hello world$' "$out"
out=$(printf "GET $O/chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" | raw)
assert_match "HTTP/1.1 client gets it chunked" 'Transfer-Encoding: chunked' "$out"

# --- a body cut short reaches the client as a reset, so it cannot pass for a whole one ---
assert_eq "body ended by close, origin's FIN: a FIN" "whole <fin>" "$(raw_end "GET $O/close-whole HTTP/1.1\r\nHost: x\r\n\r\n")"
assert_eq "body ended by close, origin's reset: a reset" "partial <reset>" \
    "$(raw_end "GET $O/close-reset HTTP/1.1\r\nHost: x\r\n\r\n")"
assert_eq "  ... with its close record" 1 "$(cut_records 1)"
assert_eq "chunked decoded for HTTP/1.0, last chunk missing: a reset" "hello <reset>" \
    "$(raw_end "GET $O/chunked-cut HTTP/1.0\r\n\r\n")"
assert_eq "  ... with its close record" 2 "$(cut_records 2)"
assert_eq "Content-Length not reached: a reset too" "hello <reset>" \
    "$(raw_end "GET $O/length-cut HTTP/1.1\r\nHost: x\r\n\r\n")"
assert_eq "  ... with its close record" 3 "$(cut_records 3)"

# --- no 1xx to an HTTP/1.0 client (RFC 9110 §15.2), and its Expect is not passed on ---
out=$(printf "POST $O/continue HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi" | raw)
assert_eq "HTTP/1.0 client, origin sends 100: only the 200" "HTTP/1.1 200 OK" "$(head -n 1 <<<"$out" | tr -d '\r')"
assert_no_match "  ... no 100 at all" '100 Continue' "$out"
for _ in $(seq 40); do grep -q "/continue" "$RAW_LOG" && break; sleep 0.1; done
assert_no_match "  ... and the origin got no Expect" '[Ee]xpect' "$(grep "/continue" "$RAW_LOG")"
out=$(printf "GET $O/early-hints HTTP/1.0\r\n\r\n" | raw)
assert_eq "HTTP/1.0 client, origin sends 103 first: only the 200" "HTTP/1.1 200 OK" "$(head -n 1 <<<"$out" | tr -d '\r')"
assert_no_match "  ... no 103 at all" '103|Link:' "$out"
out=$(printf "GET $O/early-hints HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" | raw)
assert_match "HTTP/1.1 client gets the 103, then the 200" \
    '^HTTP/1.1 103 Early Hints'$'\r''.*HTTP/1.1 200 OK'$'\r' "$(tr -d '\n' <<<"$out")"

# --- a bad host after a good request on the same connection: logged as asked, nothing left over ---
out=$(printf "GET $O/x HTTP/1.1\r\nHost: x\r\n\r\nGET http://a..b.example/ HTTP/1.1\r\nHost: x\r\n\r\n" | raw)
assert_match "bad host: 400 after the first answer" 'ok.*HTTP/1.1 400 Bad Request' "$(tr -d '\r\n' <<<"$out")"
assert_match "  ... logged with the host as asked" '"host":"a..b.example".*"reason":"bad_host"' \
    "$(proxy_log_last '"reason":"bad_host"')"

# --- a head trickled one byte at a time still completes (a head is parsed at each LF) ---
out=$(as fwuser timeout 10 python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", 3128))
for ch in b"GET '"$O"'/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n":
    s.send(bytes([ch])); time.sleep(0.002)
print(s.recv(4096).decode("latin-1").split("\r\n")[0])')
assert_eq "trickled head" "HTTP/1.1 200 OK" "$out"

# --- the per-account cap (-m 4) counts connections from accept ---
as fwuser python3 -c '
import socket, sys, time
idle = [socket.create_connection(("127.0.0.1", 3128))]   # + silent + stalled + body-stall = 4
time.sleep(0.3)
s = socket.create_connection(("127.0.0.1", 3128)); s.settimeout(3)
t = time.time()
d = s.recv(4096)
print(d.split(b"\r\n")[0].decode(), "after %.1f s" % (time.time() - t) if time.time() - t < 2 else "late")
# its request comes after the answer: proxyd drains it instead of answering it with a reset
s.sendall(b"GET '"$O"'/x HTTP/1.1\r\nHost: x\r\n\r\n")
try:
    while s.recv(4096): pass
    print("then a clean close")
except ConnectionResetError:
    print("then a reset")
' > "$WORLD/cap.out" 2>&1
assert_match "5th connection, no request sent: 429 at once" '^HTTP/1.1 429 Too Many Requests after' "$(cat "$WORLD/cap.out")"
assert_match "  ... its late request drained, no reset" 'then a clean close' "$(cat "$WORLD/cap.out")"
l=$(proxy_log_last '"reason":"too_many_connections"')
assert_match "429 logged" '"account":"fwuser".*"decision":"deny"' "$l"
sleep 0.3
assert_eq "slots freed when the idle ones close" "ok" "$(pcurl fwuser "$O/x")"

# --- an origin that never answers: 504 after the forwarding timeout ---
wait "$SILENT"
assert_match "silent origin: 504" '^HTTP/1.1 504' "$(cat "$WORLD/silent.out")"
wait "$STALLED"
assert_eq "client that stops mid-body: 408" "HTTP/1.1 408 Request Timeout" "$(cat "$WORLD/stalled.out")"
assert_match "  ... logged as the client's doing" '"reason":"request_body_timeout"' \
    "$(proxy_log_last '"reason":"request_body_timeout"')"
l=$(proxy_log_last '"reason":"upstream_timeout"')
assert_match "504 logged" '"port":8090.*"decision":"error","reason":"upstream_timeout"' "$l"
wait "$BODYSTALL"
assert_eq "origin silent in the middle of a body ended by close: a reset" "part <reset>" \
    "$(cat "$WORLD/bodystall.out")"
assert_match "  ... logged" '"port":8090.*"decision":"close","reason":"response_timeout"' \
    "$(proxy_log_last '"reason":"response_timeout"')"
kill -0 "$PROXYD_PID" || fail "proxyd died"
proxy_done
