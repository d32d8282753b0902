#!/usr/bin/env bash
# Who asked: policy DNS identifies the account behind each query from the kernel's socket table
# (proxyd/dns_ident.h).  Connected and unconnected UDP sockets, TCP, IPv4 and IPv6 listeners; and
# the attacks:
# - a deny-all account binds the same UDP port as an allowed account (SO_REUSEADDR sharing) to
#   borrow its identity - the query must be refused as ambiguous, never answered;
# - an account connects to the synthetic address another account was handed, to learn the name
#   behind it (the 403 would name it) or to reach it - to it that address was never handed out;
# - an account asks for name after name to take the synthetic range from everyone else - it is
#   held to its share (a quarter), and the others still get addresses.
# UIDs 59740-59749.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/dns_world.sh"

world_add_user dnsida 59741 dnsbox
world_add_user dnsidx 59742 dnsdeny
world_add_user dnsidfree 59743
world_add_user dnsidb 59744 dnsbox
# 64 names under flood.test, one more than an account's share of a /24 (254 / 4 = 63)
flood=(); for i in $(seq 0 63); do flood+=("h$i.flood.test=A:203.0.113.10"); done
dns_world_upstream github.com=A:203.0.113.10 "${flood[@]}"
dns_world_conf "DNSListen=[::1]:$DNS_PORT" "SyntheticRange=198.18.0.0/24"
dns_profile 10-box.conf "[Match]
Group=dnsbox
[Network]
Allow=github.com:443
Allow=*.flood.test:443"
dns_profile 20-deny.conf "[Match]
Group=dnsdeny"
dns_start_proxyd
for _ in $(seq 50); do ss -uln | grep -q "\[::1\]:$DNS_PORT " && break; sleep 0.05; done

probe() { local u=$1; shift; runuser -u "$u" -- python3 "$PS_SRC/tests/lib/dns_probe.py" --timeout 1.5 "$@"; }
OK_ANSWER="RCODE=NOERROR AN=1 ID=ok"

# Connected and unconnected UDP, TCP, over IPv4 and IPv6.
for srv in 127.0.0.1 ::1; do
    assert_eq "$srv connected UDP, allowed account" "$OK_ANSWER" "$(probe dnsida --server $srv query github.com)"
    assert_eq "$srv unconnected UDP, allowed account" "$OK_ANSWER" "$(probe dnsida --server $srv --unconnected query github.com)"
    assert_eq "$srv TCP, allowed account" "$OK_ANSWER" "$(probe dnsida --server $srv --tcp query github.com)"
    assert_eq "$srv deny-all account" "RCODE=REFUSED AN=0 ID=ok" "$(probe dnsidx --server $srv query github.com)"
    assert_eq "$srv not sandboxed" "RCODE=REFUSED AN=0 ID=ok" "$(probe dnsidfree --server $srv --unconnected query github.com)"
    out=$(runuser -u dnsida -- dig +time=2 +tries=1 -p "$DNS_PORT" @"$srv" github.com A)
    dns_is_synthetic "$(dns_answers "$out")" || fail "dig @$srv as the allowed account: $out"
    ok "dig @$srv -> $(dns_answers "$out")"
done
# root is never sandboxed (UID 0 matches no Group=): refused, not answered.
assert_eq "root" "RCODE=REFUSED AN=0 ID=ok" "$(python3 "$PS_SRC/tests/lib/dns_probe.py" query github.com)"

# The attack.  The allowed account holds UDP port 40053 with SO_REUSEADDR (its query is answered
# while it is alone), then the deny-all account binds the same port and asks.
PORT=40053
runuser -u dnsida -- python3 "$PS_SRC/tests/lib/dns_probe.py" --bind-port $PORT --reuseaddr \
    --hold 4 query github.com > "$WORLD/holder.out" &
holder=$!
for _ in $(seq 40); do [ -s "$WORLD/holder.out" ] && break; sleep 0.05; done
assert_eq "allowed account alone on its port" "$OK_ANSWER" "$(head -n 1 "$WORLD/holder.out")"
got=$(probe dnsidx --bind-port $PORT --reuseaddr query github.com)
[ "$got" != "$OK_ANSWER" ] || fail "deny-all account borrowed the allowed account's identity"
ok "deny-all account sharing the port got no answer [$got]"
sleep 0.3
d=$(grep '"mode":"dns"' "$WORLD/decisions.jsonl" "$SYSLOG" 2>/dev/null | grep '"reason":"ambiguous_client"' | head -n 1)
assert_match "refused as ambiguous, logged" '"decision":"deny"' "$d"
wait "$holder"

# The attack: another account's synthetic address.  dnsida's address for github.com, CONNECTed to
# by the deny-all account through the explicit proxy, must be an address never handed out (the
# 403 names the address, not github.com); by dnsida it is github.com.
syn=$(dns_answers "$(dns_q dnsida github.com A)")
dns_is_synthetic "$syn" || fail "dnsida's github.com: [$syn]"
connect_as() {   # USER TARGET -> status line, X-Sandbox-Deny, body (one line each)
    runuser -u "$1" -- env PYTHONPATH="$PS_SRC/tests/lib" python3 -c '
import sys
from proxy_connect import open_tunnel
s, status, line = open_tunnel(sys.argv[1], timeout=10)
head, body = b"", b""
s.settimeout(10)
while True:
    d = s.recv(65536)
    if not d: break
    body += d
print(line)
print(body.decode(errors="replace").strip())' "$2" 2>&1
}
out=$(connect_as dnsidx "$syn:443")
assert_match "another account's synthetic address: 403" '^HTTP/1.1 403' "$out"
assert_match "denied as an address never handed out" '"reason":"address_class_synthetic"' "$out"
case $out in *github.com*) fail "the 403 names the other account's host: $out";; esac
ok "the 403 names $syn, not the name behind it"
sleep 0.3
grep -h '"mode":"explicit"' "$WORLD/decisions.jsonl" | grep '"uid":59742' | grep -q "\"host\":\"$syn\"" ||
    fail "no decision for the deny-all account's CONNECT to $syn: $(grep -h '"uid":59742' "$WORLD/decisions.jsonl" | tail -n 3)"
connect_as dnsida "$syn:443" >/dev/null
sleep 0.3
d=$(grep -h '"mode":"explicit"' "$WORLD/decisions.jsonl" | grep '"uid":59741' | tail -n 1)
# (allowed by its rule; nothing listens on 443 upstream, so it ends as upstream_connect_failed)
assert_match "the asking account's CONNECT to its address is github.com, allowed by its rule" \
    '"host":"github.com",.*"rule":"[^"]*10-box.conf:4"' "$d"
# An account allowed the same name asks for it itself: its own address, not dnsida's.
synb=$(dns_answers "$(dns_q dnsidb github.com A)")
dns_is_synthetic "$synb" || fail "dnsidb's github.com: [$synb]"
[ "$synb" != "$syn" ] || fail "two accounts share synthetic address $syn"
ok "dnsidb's own address for github.com: $synb"

# The attack: flooding the synthetic range.  dnsida takes its share of the /24 (63 names: github.com
# and 62 of flood.test); the next is SERVFAIL with the reason logged, and dnsidb, allowed the same
# names, still gets them.
for i in $(seq 0 61); do
    st=$(dns_status "$(dns_q dnsida "h$i.flood.test" A)")
    [ "$st" = NOERROR ] || fail "dnsida's name $i of its share: $st"
done
ok "dnsida holds 63 names"
out=$(dns_q dnsida h62.flood.test A)
assert_eq "dnsida's 64th name" SERVFAIL "$(dns_status "$out")"
sleep 0.3
d=$(grep -h '"mode":"dns"' "$WORLD/decisions.jsonl" | grep '"host":"h62.flood.test"' | tail -n 1)
assert_match "logged as the account's share exhausted" '"reason":"synthetic_share_exhausted"' "$d"
assert_eq "a name dnsida holds is still answered" NOERROR "$(dns_status "$(dns_q dnsida h5.flood.test A)")"
for n in h62 h63; do
    out=$(dns_q dnsidb $n.flood.test A)
    dns_is_synthetic "$(dns_answers "$out")" || fail "dnsidb starved by dnsida's flood ($n): $out"
done
ok "dnsidb still gets addresses"
dns_done
