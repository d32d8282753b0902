#!/usr/bin/env bash
# Policy DNS across SIGHUP reloads of the real sandbox-proxyd: new profile rules take effect at
# once, DNSListen= addresses are added and removed, Resolver= and SyntheticRange= change, and an
# invalid new configuration leaves the old one answering.  UIDs 59750-59759.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/dns_world.sh"

world_add_user dnsrl 59751 dnsbox
dns_world_upstream github.com=A:203.0.113.10 pypi.org=A:203.0.113.10
ip netns exec dnsup python3 "$PS_SRC/tests/lib/dns_fake_resolver.py" --listen 203.0.113.10 --port 5353 \
    --log "$WORLD/upstream-5353.log" --record other-server.example.net=A:203.0.113.10 \
    > "$WORLD/fr5353.out" 2>&1 &
WORLD_PIDS+=($!)
dns_world_conf
profile() {
    dns_profile 10-box.conf "[Match]
Group=dnsbox
[Network]
$1"
}
profile "Allow=github.com:443"
dns_start_proxyd

hup() {
    kill -HUP "$DNS_PROXYD_PID"
    sleep 0.5
    kill -0 "$DNS_PROXYD_PID" || fail "sandbox-proxyd died on SIGHUP"
}
st() { dns_status "$(DNS_PORT=${2:-3153} dns_q dnsrl "$1" A)"; }
st_tcp() { dns_status "$(DNS_PORT=${2:-3153} dns_q dnsrl +tcp "$1" A)"; }

assert_eq "before: github.com" NOERROR "$(st github.com)"
assert_eq "before: pypi.org" REFUSED "$(st pypi.org)"

profile "Allow=pypi.org:443"
hup
assert_eq "after reload: github.com no longer allowed" REFUSED "$(st github.com)"
assert_eq "after reload: pypi.org allowed" NOERROR "$(st pypi.org)"

# A second listen address, then the first one removed.  Each is the first of 16 ports
# (PS_REDIRECT_PORTS): 3153-3168, then 3170-3185.
sed -i 's/^DNSListen=.*/DNSListen=127.0.0.1:3153\nDNSListen=127.0.0.1:3170/' "$CONF/sandbox.conf"
hup
assert_eq "new listener 3170, UDP" NOERROR "$(st pypi.org 3170)"
assert_eq "new listener 3170, TCP" NOERROR "$(st_tcp pypi.org 3170)"
assert_eq "  ... and the last port of its range, 3185" NOERROR "$(st pypi.org 3185)"
assert_eq "old listener 3153 kept" NOERROR "$(st pypi.org 3153)"
sed -i '/^DNSListen=127.0.0.1:3153$/d' "$CONF/sandbox.conf"
hup
ss -uln | grep -qE '127\.0\.0\.1:(315[3-9]|316[0-8]) ' && fail "3153-3168 still bound after their DNSListen= went"
ok "3153-3168 closed"
assert_eq "3170 still answers" NOERROR "$(st pypi.org 3170)"

# Resolver= moves to another server (the name exists only there).
for _ in $(seq 100); do grep -q ready "$WORLD/fr5353.out" 2>/dev/null && break; sleep 0.05; done
profile "Allow=pypi.org:443
Allow=*.example.net"
sed -i 's/^Resolver=.*/Resolver=203.0.113.10:5353/' "$CONF/sandbox.conf"
hup
assert_eq "Resolver= changed: name only the new server knows" NOERROR "$(st other-server.example.net 3170)"
assert_eq "the new server was asked" 1 "$(grep -c 'other-server.example.net A$' "$WORLD/upstream-5353.log")"

# SyntheticRange= changes: new answers come from the new range.
echo "SyntheticRange=100.64.0.0/16" >> "$CONF/sandbox.conf"
hup
a=$(dns_answers "$(DNS_PORT=3170 dns_q dnsrl other-server.example.net A)")
assert_match "answer from the new SyntheticRange" '^100\.64\.[0-9]+\.[0-9]+$' "$a"

# An invalid configuration is rejected and the old one keeps answering.
echo "NoSuchKey=1" >> "$CONF/sandbox.conf"
profile "Allow=github.com:443"
hup
assert_eq "invalid reload: still the old rules (pypi.org)" NOERROR "$(st pypi.org 3170)"
assert_eq "invalid reload: github.com still refused" REFUSED "$(st github.com 3170)"

dns_done
