#!/usr/bin/env bash
# The transparent path with real nftables steering (DESIGN.md §5.1-5.3): a sandboxed account's
# curl with no proxy variables resolves through policy DNS (synthetic addresses), its TCP is
# redirected to proxyd, which takes the destination from SO_ORIGINAL_DST, the account from
# sock_diag, and connects itself.  Denials are a TCP reset with a log line; a real address is
# judged by IP rules only (an allowed SNI/Host on an attacker's IP reaches nothing); allowed names
# resolving inside are refused; the explicit proxy takes a synthetic address for its name, Host
# included; with proxyd killed nothing gets out.  UIDs 59510-59519.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/proxy_world.sh"

world_add_user tpuser 59511
world_add_user tpdeny 59512
proxy_world allowed.test=A:203.0.113.10 denied.test=A:203.0.113.10 loop.test=A:127.0.0.1 \
    meta.test=A:169.254.169.254
proxy_profile 10-box.conf "[Match]
User=tpuser
[Network]
Allow=allowed.test:80,443
Allow=loop.test:80
Allow=meta.test:80
Allow=203.0.113.10:8080
Allow=[2001:db8::10]:80"
proxy_profile 20-denyall.conf "[Match]
User=tpdeny"
# The accounts' stub resolver asks "the network"; nftables sends it to policy DNS.
echo "nameserver 203.0.113.10" > /etc/resolv.conf
proxy_start
proxy_nft 59511 59512

# --- allowed, by name (synthetic address -> name) and by IP rule ---
assert_eq "https by name, no proxy variables" "hello from origin" "$(tcurl tpuser https://allowed.test/hello)"
l=$(proxy_log_last '"mode":"transparent"' '"host":"allowed.test"' '"decision":"allow"')
assert_match "transparent allow logged with the name and real address" \
    '"account":"tpuser","uid":59511,"profile":"10-box","mode":"transparent","host":"allowed.test","port":443,"address":"203.0.113.10"' "$l"
assert_eq "http by name" "hello from origin" "$(tcurl tpuser http://allowed.test/hello)"
assert_eq "IP rule" "hello from origin" "$(tcurl tpuser http://203.0.113.10:8080/hello)"
assert_eq "IPv6 (IP6T_SO_ORIGINAL_DST)" "hello from origin" "$(tcurl tpuser 'http://[2001:db8::10]/hello')"
l=$(proxy_log_last '"mode":"transparent"' '"host":"2001:db8::10"' '"decision":"allow"')
assert_match "IPv6 transparent logged" '"port":80,"address":"2001:db8::10"' "$l"
out=$(tcurl tpuser 'http://[2001:db8::10]:8080/hello' 2>&1); rc=$?
[ $rc -ne 0 ] || fail "IPv6 without a rule answered"
l=$(proxy_log_last '"mode":"transparent"' '"host":"2001:db8::10"' '"port":8080')
assert_match "IPv6 denial logged" '"decision":"deny","reason":"no_matching_rule"' "$l"
# bulk: the tunnel switches to splice(2) through a pipe; every byte arrives, in order, unchanged
tcurl tpuser https://allowed.test/bytes/4000000 > "$WORLD/bulk.out"
assert_eq "4 MB through a transparent tunnel" 4000000 "$(wc -c < "$WORLD/bulk.out")"
assert_eq "  ... and nothing but the origin's bytes" 0 "$(tr -d x < "$WORLD/bulk.out" | wc -c)"
# and upwards: 3 MB posted through the tunnel come back whole (both directions spliced)
head -c 3000000 /dev/urandom > "$WORLD/up.bin"; chmod 644 "$WORLD/up.bin"
tcurl tpuser --data-binary @"$WORLD/up.bin" -H 'Content-Type: application/octet-stream' \
    https://allowed.test/echo > "$WORLD/up.back"
assert_eq "3 MB up and back through the tunnel" "$(sha256sum < "$WORLD/up.bin")" "$(sha256sum < "$WORLD/up.back")"
sleep 0.2
l=$(proxy_log_last '"mode":"transparent"' '"decision":"close"' '"port":443')
assert_match "close record" '"bytes_down":[0-9]{7},"duration_ms":[0-9]+' "$l"

# --- the explicit proxy asked for a synthetic address: decided, connected and sent as the name ---
a=$(as tpuser getent ahostsv4 allowed.test | awk '{print $1; exit}')
dns_is_synthetic "$a" || fail "allowed.test did not resolve to a synthetic address for tpuser: [$a]"
assert_eq "explicit GET http://<synthetic address>/" "hello from origin" "$(pcurl tpuser "http://$a/hello")"
l=$(proxy_log_last '"mode":"explicit"' '"decision":"allow"' '"port":80,')
assert_match "  ... decided as the name" '"host":"allowed.test","port":80,"address":"203.0.113.10"' "$l"
assert_match "  ... and the origin got Host: the name, not the address" '"host": "allowed.test"' \
    "$(tail -n 1 "$ORIGIN_LOG")"

# --- one source port, two destinations, one after the other ---
# nftables redirects both to proxyd.  Had both gone to one port, their reply tuples would be equal
# while conntrack still remembers the first flow, and the kernel would rewrite the second one's
# source port: proxyd's sock_diag lookup then finds nobody and resets it (client_not_found).  With
# the transparent port range (PS_TRANSPARENT_PORTS) the second lands on the next port, untouched.
sport=$((40000 + RANDOM % 20000))
out=$(as tpuser python3 - "$sport" <<'PY' 2>&1
import socket, struct, sys
sport = int(sys.argv[1])
synth = socket.getaddrinfo("allowed.test", 80, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
for host, ip, port in (("203.0.113.10", "203.0.113.10", 8080), ("allowed.test", synth, 80),
                       ("allowed.test", synth, 80)):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", sport))
    s.settimeout(5)
    try:
        s.connect((ip, port))
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d: break
            data += d
        print("%s:%d %s" % (ip, port, "ok" if b"hello from origin" in data else "no body"))
    except OSError as e:
        print("%s:%d %s" % (ip, port, e.strerror))
    # a reset leaves no TIME_WAIT on this side, so the same port can connect again at once
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
PY
)
assert_eq "same source port, 3 connections to 2 destinations: all served" 3 "$(grep -c ' ok$' <<<"$out")"
assert_eq "  ... none reset for want of an identity" 0 "$(grep -c '"reason":"client_not_found"' "$WORLD/decisions.jsonl")"

# --- denied: the name is REFUSED by DNS; the real address by IP rules: reset ---
out=$(tcurl tpuser https://denied.test/hello 2>&1); rc=$?
assert_eq "denied name does not resolve (curl exit 6)" 6 "$rc"
out=$(tcurl tpuser --resolve denied.test:443:203.0.113.10 https://denied.test/hello 2>&1); rc=$?
# proxyd accepts, then resets: curl sees the reset on connect or on its first read (a race)
assert_match "real address without an IP rule: reset" 'reset by peer|Couldn.t connect' "$out"
l=$(proxy_log_last '"mode":"transparent"' '"host":"203.0.113.10"' '"port":443')
assert_match "denial logged with the real address" '"decision":"deny","reason":"no_matching_rule"' "$l"

# --- an attacker's IP with an allowed name in SNI and Host reaches nothing ---
before=$(wc -l < "$ORIGIN_LOG")
out=$(tcurl tpuser --resolve allowed.test:443:203.0.113.66 https://allowed.test/hello 2>&1); rc=$?
[ $rc -ne 0 ] || fail "attacker IP with allowed SNI answered: $out"
out=$(tcurl tpuser -H 'Host: allowed.test' http://203.0.113.66/hello 2>&1); rc=$?
[ $rc -ne 0 ] || fail "attacker IP with allowed Host answered: $out"
assert_eq "attacker got nothing" 0 "$(wc -l < "$ATTACKER_LOG")"
l=$(proxy_log_last '"mode":"transparent"' '"host":"203.0.113.66"')
assert_match "judged by its address only" '"decision":"deny","reason":"no_matching_rule"' "$l"

# --- SSRF through a synthetic address: the name is allowed, its address is not ---
for t in loop.test:loopback meta.test:metadata; do
    name=${t%%:*} cls=${t#*:}
    out=$(tcurl tpuser "http://$name/" 2>&1); rc=$?
    [ $rc -ne 0 ] || fail "$name answered: $out"
    l=$(proxy_log_last '"mode":"transparent"' "\"host\":\"$name\"")
    assert_match "$name refused after resolution" "\"decision\":\"deny\",\"reason\":\"address_class_$cls\"" "$l"
done
# straight to the metadata address and to the host's loopback: reset by policy
out=$(tcurl tpuser http://169.254.169.254/ 2>&1); rc=$?
[ $rc -ne 0 ] || fail "metadata address answered"
ok "metadata address refused"

# --- a deny-all account: every TCP connection reset ---
out=$(tcurl tpdeny --resolve allowed.test:443:203.0.113.10 https://allowed.test/hello 2>&1); rc=$?
[ $rc -ne 0 ] || fail "deny-all account got through"
l=$(proxy_log_last '"account":"tpdeny"')
assert_match "deny-all logged" '"decision":"deny","reason":"no_matching_rule"' "$l"

# --- a direct connection to the transparent port (no NAT record) is refused ---
out=$(as tpuser curl -sS --max-time 5 http://127.0.0.1:3129/ 2>&1); rc=$?
[ $rc -ne 0 ] || fail "direct connection to the transparent port was served"
l=$(proxy_log_last '"reason":"no_original_destination"')
assert_match "no original destination logged" '"decision":"deny"' "$l"

# --- the proxy process has no privileges ---
st=$(cat /proc/$PROXYD_PID/status)
pu=$(id -u pam-sandbox)
assert_match "runs as User=" "Uid:[[:space:]]+$pu[[:space:]]+$pu[[:space:]]+$pu[[:space:]]+$pu" "$st"
assert_match "no effective capabilities" 'CapEff:[[:space:]]+0000000000000000' "$st"
assert_match "no permitted capabilities" 'CapPrm:[[:space:]]+0000000000000000' "$st"

# --- proxyd killed: sandboxed connections fail, none bypass ---
proxy_done
for _ in $(seq 50); do ss -tln | grep -q ':3129 ' || break; sleep 0.1; done
before=$(wc -l < "$ORIGIN_LOG")
out=$(tcurl tpuser --resolve allowed.test:443:203.0.113.10 https://allowed.test/hello 2>&1); rc=$?
assert_eq "transparent with proxyd down: connection refused (curl exit 7)" 7 "$rc"
out=$(tcurl tpuser http://203.0.113.10:8080/hello 2>&1); rc=$?
assert_eq "IP-allowed destination with proxyd down: refused" 7 "$rc"
out=$(pcurl tpuser http://allowed.test/hello 2>&1); rc=$?
assert_eq "explicit with proxyd down: refused" 7 "$rc"
out=$(as tpuser python3 -c '
import socket
s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(b"x", ("203.0.113.10", 9999)); print("sent")
except OSError as e: print(e.errno)' 2>&1)
assert_eq "UDP out is rejected at send (EPERM)" 1 "$out"
assert_eq "origin saw nothing while proxyd was down" "$before" "$(wc -l < "$ORIGIN_LOG")"
# root (not steered) still reaches the origin directly: the network itself works
assert_eq "unsandboxed root direct" "hello from origin" "$(curl -sS --max-time 5 http://203.0.113.10/hello)"
