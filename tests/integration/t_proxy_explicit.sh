#!/usr/bin/env bash
# The explicit listener of the real sandbox-proxyd with real curl and git (DESIGN.md §5.3, §5.5):
# allowed names and addresses are reached over HTTP (absolute-form, keep-alive, chunked, POST) and
# HTTPS (CONNECT); denials answer 403 with a JSON body and X-Sandbox-Deny; allowed names that
# resolve inside (loopback, RFC 1918, metadata, IPv4-mapped metadata) are refused; an attacker's
# IP never becomes reachable through an allowed name; inference.local on ports other than 443
# follows normal policy; accounts that are not sandboxed are refused; Mode=report lets a denial
# through as would_deny but never an address-class one; a malformed request gets
# 400 and the next client is served.  UIDs 59500-59509.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/proxy_world.sh"

world_add_user pxuser 59501
world_add_user pxdeny 59502
world_add_user pxfree 59503
world_add_user pxreport 59504
proxy_world allowed.test=A:203.0.113.10 www.allowed.test=A:203.0.113.10 git.test=A:203.0.113.10 \
    denied.test=A:203.0.113.10 loop.test=A:127.0.0.1 ten.test=A:10.1.2.3 \
    meta.test=A:169.254.169.254 mapped.test=AAAA:::ffff:169.254.169.254 \
    v6only.test=AAAA:2001:db8::10 self.test=A:203.0.113.1
proxy_profile 10-box.conf "[Match]
User=pxuser
[Network]
Allow=allowed.test:80,443
Allow=*.allowed.test:80,443
Allow=git.test:443
Allow=loop.test:80
Allow=ten.test:80
Allow=meta.test:80
Allow=mapped.test:80
Allow=v6only.test:80
Allow=203.0.113.10:8080
Allow=203.0.113.10:81
Allow=203.0.113.10:82
Allow=inference.local:8443
Allow=self.test:8899
Allow=203.0.113.0/24:8899"
proxy_profile 20-denyall.conf "[Match]
User=pxdeny"
proxy_profile 30-report.conf "[Match]
User=pxreport
[Network]
Mode=report
Allow=loop.test:80"
proxy_start

# --- allowed: HTTP absolute-form and HTTPS CONNECT, by name and by an IP rule ---
assert_eq "http via explicit" "hello from origin" "$(pcurl pxuser http://allowed.test/hello)"
l=$(proxy_log_last '"host":"allowed.test"' '"decision":"allow"')
assert_match "allow logged with account, mode, rule" \
    '"account":"pxuser","uid":59501,"profile":"10-box","mode":"explicit".*"port":80,"address":"203.0.113.10".*"reason":"allow_rule","rule":"[^"]*10-box.conf:4"' "$l"
sleep 0.2
l=$(proxy_log_last '"host":"allowed.test"' '"decision":"close"')
assert_match "close record with bytes and duration" '"bytes_up":[0-9]+,"bytes_down":[1-9][0-9]*,"duration_ms":[0-9]+' "$l"
assert_eq "https via CONNECT" "hello from origin" "$(pcurl pxuser https://allowed.test/hello)"
assert_eq "https to a wildcard-allowed name" "hello from origin" "$(pcurl pxuser https://www.allowed.test/hello)"
assert_eq "IP rule" "hello from origin" "$(pcurl pxuser http://203.0.113.10:8080/hello)"
assert_eq "AAAA-only name over IPv6" "hello from origin" "$(pcurl pxuser http://v6only.test/hello)"
h=$(tail -n 1 "$ORIGIN_LOG")
assert_match "origin got origin-form with the checked Host" '"method": "GET", "path": "/hello", "host": "v6only.test"' "$h"

# keep-alive: two requests, one client connection; chunked and close-delimited bodies; POST
out=$(pcurl pxuser -w '|%{num_connects}\n' http://allowed.test/hello http://allowed.test/chunked)
assert_eq "keep-alive: second request reuses the client connection" "hello from origin
|1
one two three
|0" "$out"
# a plain request, then a CONNECT on the same kept-alive connection
out=$(as pxuser python3 -c '
import socket
s = socket.create_connection(("127.0.0.1", 3128))
def head_and_body():
    d = b""
    while b"\r\n\r\n" not in d: d += s.recv(4096)
    h, _, b = d.partition(b"\r\n\r\n")
    n = int([l.split(b":")[1] for l in h.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(b) < n: b += s.recv(4096)
    return h.split(b"\r\n")[0].decode(), b.decode().strip()
s.sendall(b"GET http://allowed.test/hello HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
print(*head_and_body())
s.sendall(b"CONNECT 203.0.113.10:8080 HTTP/1.1\r\nHost: x\r\n\r\n")
d = b""
while b"\r\n\r\n" not in d: d += s.recv(4096)
print(d.split(b"\r\n")[0].decode())
s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
print(*head_and_body())')
assert_eq "GET then CONNECT on one connection" "HTTP/1.1 200 OK hello from origin
HTTP/1.1 200 Connection established
HTTP/1.1 200 OK hello from origin" "$out"
assert_eq "close-delimited body" "until close" "$(pcurl pxuser http://allowed.test/close)"
assert_eq "POST body" "payload-123" "$(pcurl pxuser --data-binary payload-123 http://allowed.test/echo)"
n=$(pcurl pxuser http://allowed.test/bytes/3000000 | wc -c)
assert_eq "3 MB body through the forwarder" 3000000 "$n"
n=$(pcurl pxuser https://allowed.test/bytes/5000000 | wc -c)
assert_eq "5 MB body through a CONNECT tunnel" 5000000 "$n"
# Content, not only length, through tunnels whose client reads slowly (partial sends while the
# direction switches from copying to splice): every byte in its place.
want=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import proxy_origin, hashlib
print(hashlib.sha256(proxy_origin.pattern_bytes(3000000)).hexdigest())' "$PS_SRC/tests/lib")
for rate in 4M 8M 16M; do
    got=$(pcurl pxuser --max-time 20 --limit-rate $rate http://203.0.113.10:8080/pattern/3000000 -p | sha256sum | cut -d' ' -f1)
    assert_eq "3 MB through a CONNECT tunnel read at $rate/s: same bytes, same order" "$want" "$got"
done
# credentials for the proxy never reach the origin
pcurl pxuser -H 'Proxy-Authorization: Basic c2VjcmV0' -H 'X-Keep: 1' http://allowed.test/hello >/dev/null
h=$(tail -n 1 "$ORIGIN_LOG")
assert_no_match "Proxy-Authorization stripped" 'proxy-authorization' "$h"
assert_match "end-to-end header kept" '"x-keep": "1"' "$h"

# --- upstream failures: refused -> 502, silent (SYN dropped) -> 504 after the connect timeout ---
ip netns exec dnsup nft add table inet blackhole
ip netns exec dnsup nft add chain inet blackhole in '{ type filter hook input priority 0; }'
ip netns exec dnsup nft add rule inet blackhole in tcp dport 81 drop
hdr=$(pcurl pxuser -D - -o /dev/null http://203.0.113.10:82/ 2>&1)
assert_match "refused upstream: 502" '^HTTP/1.1 502' "$hdr"
l=$(proxy_log_last '"port":82')
assert_match "502 logged" '"decision":"error","reason":"upstream_connect_failed"' "$l"
hdr=$(pcurl pxuser --max-time 20 -D - -o /dev/null http://203.0.113.10:81/ 2>&1)
assert_match "silent upstream: 504" '^HTTP/1.1 504' "$hdr"
l=$(proxy_log_last '"port":81')
assert_match "504 logged" '"decision":"error","reason":"upstream_timeout"' "$l"

# --- git clone over HTTPS through CONNECT ---
if command -v git >/dev/null; then
    mkdir -p "$WORLD/git" "$WORLD/src"
    git -C "$WORLD/src" init -q -b main && echo "proxied repo" > "$WORLD/src/README" &&
        git -C "$WORLD/src" add README && git -C "$WORLD/src" -c user.name=t -c user.email=t@t commit -qm init &&
        git clone -q --bare "$WORLD/src" "$WORLD/git/repo.git" || fail "making the test repo"
    chmod -R a+rX "$WORLD/git"
    mkdir -p /tmp/ps-scratch/clone && chown pxuser /tmp/ps-scratch/clone
    as pxuser env HOME=/tmp/ps-scratch/clone GIT_SSL_CAINFO="$PROXY_CA" https_proxy="http://$PROXY_EXPLICIT" \
        git clone -q https://git.test/git/repo.git /tmp/ps-scratch/clone/repo 2>&1 || fail "git clone through the proxy"
    assert_eq "git clone over HTTPS" "proxied repo" "$(cat /tmp/ps-scratch/clone/repo/README)"
else
    echo "# git missing: clone not tested"
fi

# --- denied: 403, JSON, X-Sandbox-Deny, log line; nothing reaches the origin ---
before=$(wc -l < "$ORIGIN_LOG")
SCR=/tmp/ps-scratch/px; mkdir -p $SCR; chmod 1777 $SCR
hdr=$(pcurl pxuser -D - -o "$SCR/body" http://denied.test/hello)
assert_match "denied: 403" '^HTTP/1.1 403' "$hdr"
assert_match "denied: X-Sandbox-Deny" 'X-Sandbox-Deny: no_matching_rule' "$hdr"
assert_match "denied: JSON body" '^\{"error":"policy_denied","reason":"no_matching_rule","host":"denied.test","port":80' "$(cat "$SCR/body")"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$SCR/body" || fail "403 body is not JSON"
out=$(pcurl pxuser -o /dev/null -w '%{http_code}' https://denied.test/hello 2>&1)
assert_match "denied CONNECT: 403" '403' "$out"
l=$(proxy_log_last '"host":"denied.test"' '"port":443')
assert_match "denied CONNECT logged" '"decision":"deny","reason":"no_matching_rule","rule":"default"' "$l"
assert_eq "origin saw nothing of denied.test" "$before" "$(wc -l < "$ORIGIN_LOG")"

# --- SSRF: allowed names that resolve inside are refused, whatever the rules say ---
for t in loop.test:loopback ten.test:private meta.test:metadata mapped.test:metadata; do
    name=${t%%:*} cls=${t#*:}
    hdr=$(pcurl pxuser -D - -o /dev/null "http://$name/hello" 2>&1)
    assert_match "SSRF $name: 403" '^HTTP/1.1 403' "$hdr"
    assert_match "SSRF $name: reason" "X-Sandbox-Deny: address_class_$cls" "$hdr"
    l=$(proxy_log_last "\"host\":\"$name\"" '"decision":"deny"')
    assert_match "SSRF $name logged" "\"reason\":\"address_class_$cls\"" "$l"
done
# An IP literal of the metadata service, and a private one, without any rule for them
for ip in 169.254.169.254 127.0.0.1 '[::ffff:169.254.169.254]'; do
    code=$(pcurl pxuser -o /dev/null -w '%{http_code}' "http://$ip/" 2>/dev/null)
    assert_eq "IP literal $ip refused" 403 "$code"
done

# --- this host's own address (the world's 203.0.113.1): a service bound to 0.0.0.0 here must not
# be reached through proxyd (its connections are not steered), by a name or by a blanket CIDR ---
world_bg python3 -m http.server -b 0.0.0.0 8899 -d "$WORLD" >/dev/null 2>&1
for _ in $(seq 50); do ss -tln | grep -q ':8899 ' && break; sleep 0.1; done
for u in http://self.test:8899/ http://203.0.113.1:8899/; do
    hdr=$(pcurl pxuser -D - -o /dev/null "$u" 2>&1)
    assert_match "own address via $u: 403" '^HTTP/1.1 403' "$hdr"
    assert_match "  ... as loopback" 'X-Sandbox-Deny: address_class_loopback' "$hdr"
done
if [ -x "$PS_BUILD/sandboxctl" ]; then
    assert_match "sandboxctl decide agrees" '^deny' "$("$PS_BUILD/sandboxctl" -c "$CONF" decide pxuser 203.0.113.1 8899 2>&1)"
fi

# --- attacker's IP with an allowed name (SNI/Host) reaches nothing ---
code=$(pcurl pxuser -o /dev/null -w '%{http_connect}' --connect-to allowed.test:443:203.0.113.66:443 https://allowed.test/hello 2>/dev/null)
assert_eq "CONNECT to attacker IP with allowed SNI" 403 "$code"
code=$(pcurl pxuser -o /dev/null -w '%{http_code}' -H 'Host: allowed.test' http://203.0.113.66/hello 2>/dev/null)
assert_eq "GET attacker IP with allowed Host" 403 "$code"
assert_eq "attacker origin got no request" 0 "$(wc -l < "$ATTACKER_LOG")"

# --- inference.local: 443 is interception (no models here: denied); other ports normal policy ---
for u in pxdeny pxuser; do
    for p in 80 8443; do
        [ "$u:$p" = pxuser:8443 ] && continue
        code=$(pcurl "$u" -o /dev/null -w '%{http_code}' "http://inference.local:$p/v1/models" 2>/dev/null)
        assert_eq "$u: inference.local:$p denied" 403 "$code"
        l=$(proxy_log_last '"host":"inference.local"' "\"port\":$p" "\"account\":\"$u\"")
        assert_match "$u: inference.local:$p by normal policy" '"reason":"no_matching_rule"' "$l"
    done
done
# Allowed by a rule on 8443: normal policy resolves the name itself (and it does not exist).
code=$(pcurl pxuser -o /dev/null -w '%{http_code}' http://inference.local:8443/ 2>/dev/null)
assert_eq "inference.local:8443 with an Allow= rule goes to the resolver, not interception" 502 "$code"
code=$(pcurl pxuser -o /dev/null -w '%{http_code}' https://inference.local/v1/models 2>&1)
assert_match "inference.local:443 without models: 403" '403' "$code"
l=$(proxy_log_last '"host":"inference.local"' '"port":443')
assert_match "inference.local:443 logged" '"decision":"deny","reason":"inference_not_permitted"' "$l"

# --- an account that is not sandboxed, and the deny-all profile ---
hdr=$(pcurl pxfree -D - -o /dev/null http://allowed.test/hello 2>&1)
assert_match "not sandboxed: 403" 'X-Sandbox-Deny: not_sandboxed' "$hdr"
l=$(proxy_log_last '"account":"pxfree"')
assert_match "not sandboxed logged" '"uid":59503,"profile":null.*"decision":"deny","reason":"not_sandboxed"' "$l"
# ... which no per-account cap counts: a connection of it that sends nothing is answered at once,
# not held until the head timeout (10 s).
r=$(as pxfree env PYTHONPATH="$PS_SRC/tests/lib" python3 -c '
import socket, time
from proxy_connect import read_to_end
s = socket.create_connection(("127.0.0.1", 3128)); t = time.time(); s.settimeout(8)
d, how = read_to_end(s)
print(d.split(b"\r\n")[0].decode(), how, "under 2 s" if time.time() - t < 2 else "after %.1f s" % (time.time() - t))')
assert_eq "not sandboxed, nothing sent: 403 at once, closed" "HTTP/1.1 403 Forbidden <fin> under 2 s" "$r"
code=$(pcurl pxdeny -o /dev/null -w '%{http_code}' http://allowed.test/hello 2>/dev/null)
assert_eq "deny-all profile" 403 "$code"
# root's own connection (proxyd's peers are identified, never trusted by address)
code=$(curl -sS -o /dev/null -w '%{http_code}' -x "http://$PROXY_EXPLICIT" http://allowed.test/hello 2>/dev/null)
assert_eq "root is not sandboxed either" 403 "$code"

# --- Mode=report: would-deny is logged and let through; address classes are never softened ---
assert_eq "report mode lets a denied name through" "hello from origin" "$(pcurl pxreport http://allowed.test/hello)"
l=$(proxy_log_last '"account":"pxreport"' '"host":"allowed.test"' '"decision":"would_deny"')
assert_match "report mode logs would_deny" '"reason":"no_matching_rule"' "$l"
code=$(pcurl pxreport -o /dev/null -w '%{http_code}' http://loop.test/ 2>/dev/null)
assert_eq "report mode still refuses a name resolving to loopback" 403 "$code"
# A would-deny that then fails upstream (the name does not exist) is still logged as would_deny
# (sandboxctl denials must see it during a roll-out), then as the error.
code=$(pcurl pxreport -o /dev/null -w '%{http_code}' http://no-such-name.test/ 2>/dev/null)
assert_eq "report mode: a name that does not exist" 502 "$code"
assert_match "  ... logged as would_deny first" '"reason":"no_matching_rule"' \
    "$(proxy_log_last '"account":"pxreport"' '"host":"no-such-name.test"' '"decision":"would_deny"')"
assert_match "  ... then as the error" '"reason":"name_not_found"' \
    "$(proxy_log_last '"account":"pxreport"' '"host":"no-such-name.test"' '"decision":"error"')"

# --- malformed requests: 400 and the next client is served ---
bad() { printf "$1" | as pxuser timeout 5 python3 -c '
import socket,sys
s=socket.create_connection(("127.0.0.1",3128)); s.sendall(sys.stdin.buffer.read())
print(s.recv(4096).decode("latin-1").split("\r\n")[0])'; }
assert_eq "bare LF" "HTTP/1.1 400 Bad Request" "$(bad 'GET http://allowed.test/ HTTP/1.1\r\nHost: a\nX: y\r\n\r\n')"
assert_eq "CL+TE" "HTTP/1.1 400 Bad Request" "$(bad 'POST http://allowed.test/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n')"
assert_eq "duplicate CL" "HTTP/1.1 400 Bad Request" "$(bad 'POST http://allowed.test/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc')"
assert_eq "obs-fold" "HTTP/1.1 400 Bad Request" "$(bad 'GET http://allowed.test/ HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n')"
assert_eq "TLS bytes on the plain port" "HTTP/1.1 400 Bad Request" "$(bad '\x16\x03\x01\x00\xa5\x01\x00')"
assert_eq "origin-form to a proxy" "HTTP/1.1 400 Bad Request" "$(bad 'GET /hello HTTP/1.1\r\nHost: allowed.test\r\n\r\n')"
assert_eq "next client served" "hello from origin" "$(pcurl pxuser http://allowed.test/hello)"
kill -0 "$PROXYD_PID" || fail "proxyd died"
ok "proxyd alive after malformed input"

# --- sandboxctl denials: what was denied, and the Allow= line that permits it ---
if [ -x "$PS_BUILD/sandboxctl" ]; then
    out=$("$PS_BUILD/sandboxctl" -c "$CONF" denials pxuser); rc=$?
    assert_eq "denials exit status" 0 "$rc"
    assert_match "denials lists denied.test:80" 'denied.test:80  no_matching_rule  \(explicit' "$out"
    assert_match "denials suggests the rule and where" 'Allow=denied.test:80    # \[Network\] of profiles/10-box.conf' "$out"
    assert_match "SSRF denial: no Allow= can help a name" 'loop.test:80  address_class_loopback.*
 *# the name resolves to an internal address' "$out"
    assert_match "metadata: never" 'address_class_metadata.*
 *# addresses of this class are never allowed' "$out"
    out_r=$("$PS_BUILD/sandboxctl" -c "$CONF" denials pxreport)
    assert_match "report mode marked as let through" 'no-such-name.test:80  no_matching_rule \[Mode=report: let through' "$out_r"
    assert_no_match "other accounts not shown" 'pxfree' "$out"
    out=$("$PS_BUILD/sandboxctl" -c "$CONF" denials)
    assert_match "all accounts: pxfree" 'pxfree \(profile none\)' "$out"
    # The suggested line, added to the profile and reloaded, permits exactly that.
    line=$("$PS_BUILD/sandboxctl" -c "$CONF" denials pxuser | grep -o 'Allow=denied.test:80' | head -n 1)
    echo "$line" >> "$CONF/profiles/10-box.conf"
    kill -HUP "$PROXYD_PID"
    for _ in $(seq 50); do grep -q 'reloaded configuration' "$SYSLOG" && break; sleep 0.1; done
    assert_eq "suggested rule works after reload" "hello from origin" "$(pcurl pxuser http://denied.test/hello)"
    out=$("$PS_BUILD/sandboxctl" -c "$CONF" denials --since x 2>&1); rc=$?
    assert_eq "denials usage error" 2 "$rc"
fi
proxy_done
