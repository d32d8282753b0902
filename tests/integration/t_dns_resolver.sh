#!/usr/bin/env bash
# The upstream resolver of sandbox-proxyd (c-ares on the proxyd loop, TTL cache): answers are
# cached for their TTL and asked again after it, NXDOMAIN is cached, concurrent lookups share one
# upstream query, Resolver= may carry a port, an empty Resolver= means /etc/resolv.conf, and the
# connect path (explicit proxy) resolves through the same cache.  The test resolver's query log is
# the witness.  UIDs 59730-59739.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/dns_world.sh"

world_add_user dnsres 59731 dnsbox
dns_world_upstream ttl.example.com=A:203.0.113.10:2 long.example.com=A:203.0.113.10:300 \
    web.example.com=A:203.0.113.10:3 par.example.com=A:203.0.113.10:300
dns_world_conf
dns_profile 10-box.conf "[Match]
Group=dnsbox
[Network]
Allow=*.example.com:80,443
Allow=only-on-5353.example.net"
dns_start_proxyd

q() { dns_q dnsres "$@"; }

# Per TTL: two queries within the 2 s TTL make one upstream query; after it, a new one.
a1=$(dns_answers "$(q ttl.example.com A)")
a2=$(dns_answers "$(q ttl.example.com A)")
dns_is_synthetic "$a1" || fail "ttl.example.com answered [$a1]"
assert_eq "synthetic address stable" "$a1" "$a2"
assert_eq "two queries within the TTL: upstream A queries" 1 "$(dns_upstream_count ttl.example.com A)"
sleep 3
q ttl.example.com A >/dev/null
assert_eq "after the TTL: asked again" 2 "$(dns_upstream_count ttl.example.com A)"
assert_eq "synthetic address still the same" "$a1" "$(dns_answers "$(q ttl.example.com A)")"

# A long TTL stays cached; AAAA and other types share the same cached lookup.
q long.example.com A >/dev/null; q long.example.com AAAA >/dev/null; q long.example.com MX >/dev/null
assert_eq "long TTL: one upstream A query for three questions" 1 "$(dns_upstream_count long.example.com A)"

# NXDOMAIN is cached too (RESOLVER_NEG_TTL).
assert_eq "nonexistent allowed name" NXDOMAIN "$(dns_status "$(q nx.example.com A)")"
assert_eq "nonexistent, again" NXDOMAIN "$(dns_status "$(q nx.example.com A)")"
assert_eq "NXDOMAIN cached: upstream A queries" 1 "$(dns_upstream_count nx.example.com A)"

# Concurrent queries for one name: one upstream query.
pids=()
for i in 1 2 3 4 5 6 7 8; do q par.example.com A > "$WORLD/par.$i" & pids+=($!); done
wait "${pids[@]}"
for i in 1 2 3 4 5 6 7 8; do
    dns_is_synthetic "$(dns_answers "$(cat "$WORLD/par.$i")")" || fail "parallel query $i: $(cat "$WORLD/par.$i")"
done
assert_eq "8 concurrent queries: upstream A queries" 1 "$(dns_upstream_count par.example.com A)"

# An upstream that does not answer: SERVFAIL, not a synthetic address (and not cached).
ip netns exec dnsup nft add table inet drop53 2>/dev/null
ip netns exec dnsup nft add chain inet drop53 in '{ type filter hook input priority 0; }'
ip netns exec dnsup nft add rule inet drop53 in udp dport 53 drop
ip netns exec dnsup nft add rule inet drop53 in tcp dport 53 drop
out=$(runuser -u dnsres -- dig +time=12 +tries=1 -p "$DNS_PORT" @127.0.0.1 down.example.com A)
assert_eq "upstream unreachable" SERVFAIL "$(dns_status "$out")"
ip netns exec dnsup nft delete table inet drop53

# Resolver= with a port, and the fallback to /etc/resolv.conf, each on a fresh proxyd.
ip netns exec dnsup python3 "$PS_SRC/tests/lib/dns_fake_resolver.py" --listen 203.0.113.10 --port 5353 \
    --log "$WORLD/upstream-5353.log" --record only-on-5353.example.net=A:203.0.113.10 > "$WORLD/fr5353.out" 2>&1 &
WORLD_PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$WORLD/fr5353.out" 2>/dev/null && break; sleep 0.05; done
restart_proxyd() {
    dns_done
    for _ in $(seq 100); do ss -uln | grep -q "127.0.0.1:$DNS_PORT " || break; sleep 0.05; done
    dns_start_proxyd
}
sed -i 's/^Resolver=.*/Resolver=203.0.113.10:5353/' "$CONF/sandbox.conf"
restart_proxyd
out=$(q only-on-5353.example.net A)
dns_is_synthetic "$(dns_answers "$out")" || fail "Resolver= with a port not used: $out"
assert_eq "Resolver=203.0.113.10:5353 asked" 1 "$(grep -c 'only-on-5353.example.net A$' "$WORLD/upstream-5353.log")"

sed -i '/^Resolver=/d' "$CONF/sandbox.conf"
printf 'nameserver 203.0.113.10\n' > /etc/resolv.conf
restart_proxyd
before=$(dns_upstream_count long.example.com A)
dns_is_synthetic "$(dns_answers "$(q long.example.com A)")" || fail "resolv.conf fallback"
assert_eq "empty Resolver=: the resolv.conf server asked" $((before + 1)) "$(dns_upstream_count long.example.com A)"

# The connect path resolves through the same resolver and cache: two explicit-proxy requests to an
# origin within the 3 s TTL make one upstream query, one after it makes another.
command -v curl >/dev/null || skip "curl missing"
mkdir -p "$WORLD/www" && echo hello-dns > "$WORLD/www/index.html"
ip netns exec dnsup python3 -m http.server --bind 203.0.113.10 --directory "$WORLD/www" 80 \
    > "$WORLD/http.log" 2>&1 &
WORLD_PIDS+=($!)
for _ in $(seq 100); do ip netns exec dnsup ss -tln | grep -q '203.0.113.10:80 ' && break; sleep 0.05; done
ss -tln | grep -q '127.0.0.1:3128 ' || fail "explicit proxy not listening"
c() { runuser -u dnsres -- curl -s --max-time 5 -x http://127.0.0.1:3128 http://web.example.com/index.html; }
assert_eq "explicit proxy to an allowed name" hello-dns "$(c)"
assert_eq "again" hello-dns "$(c)"
assert_eq "connect path: one upstream query within the TTL" 1 "$(dns_upstream_count web.example.com A)"
sleep 4
assert_eq "after the TTL" hello-dns "$(c)"
assert_eq "connect path: asked again after the TTL" 2 "$(dns_upstream_count web.example.com A)"
dns_done
