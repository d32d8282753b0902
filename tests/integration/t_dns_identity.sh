#!/usr/bin/env bash
# Who asked: policy DNS identifies the account behind each query from the kernel's socket table
# (proxyd/dns_ident.h).  Connected and unconnected UDP sockets, TCP, IPv4 and IPv6 listeners; and
# the attack: a deny-all account binds the same UDP port as an allowed account (SO_REUSEADDR
# sharing) to borrow its identity - the query must be refused as ambiguous, never answered.
# UIDs 59740-59749.
. "$(dirname "$0")/../lib/world.sh"; world_enter "$@"
. "$PS_SRC/tests/lib/dns_world.sh"

world_add_user dnsida 59741 dnsbox
world_add_user dnsidx 59742 dnsdeny
world_add_user dnsidfree 59743
dns_world_upstream github.com=A:203.0.113.10
dns_world_conf "DNSListen=[::1]:$DNS_PORT"
dns_profile 10-box.conf "[Match]
Group=dnsbox
[Network]
Allow=github.com:443"
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
dns_done
