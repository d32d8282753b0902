#!/usr/bin/env bash
# Policy DNS behind the real steering (`sandboxctl apply`): a sandboxed account that asks the real
# resolver (203.0.113.10 / 2001:db8::10, port 53) directly - dig over UDP and TCP, an unconnected
# UDP socket, glibc's getaddrinfo - is redirected to proxyd, identified through the NAT, and gets
# synthetic answers; a denied name is REFUSED and never reaches the resolver, so asking the upstream
# server directly is no way around policy.  An account outside the set is not steered.
# UIDs 59760-59769.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/dns_world.sh"

command -v nft >/dev/null || skip "nft missing"
[ -x "$PS_BUILD/sandboxctl" ] || skip "sandboxctl not built in $PS_BUILD"
world_add_user dnsst 59761 dnsbox
world_add_user dnsstfree 59762
world_add_user dnsstdeny 59763 dnsdeny
dns_world_upstream github.com=A:203.0.113.10 secret.example.net=A:203.0.113.10 api.example.com=A:203.0.113.10 \
    quick.example.com=A:203.0.113.10 leak.example.com=A:203.0.113.10
dns_world_conf "DNSListen=[::1]:$DNS_PORT"
dns_profile 10-box.conf "[Match]
Group=dnsbox
[Network]
Allow=github.com:443
Allow=*.example.com:443"
dns_profile 20-deny.conf "[Match]
Group=dnsdeny"
dns_start_proxyd
"$PS_BUILD/sandboxctl" -c "$CONF" apply > "$WORLD/apply.out" 2>&1 || fail "sandboxctl apply: $(cat "$WORLD/apply.out")"
nft list set inet pam_sandbox users | grep -qw 59761 || fail "59761 not in the steering set"
ok "steering loaded by sandboxctl apply"

dig_as() { local u=$1; shift; runuser -u "$u" -- dig +time=2 +tries=1 "$@" 2>&1; }

for srv in 203.0.113.10 2001:db8::10; do
    for tr in "" +tcp; do
        what="@$srv ${tr:-udp}"
        out=$(dig_as dnsst $tr @"$srv" github.com A)
        a=$(dns_answers "$out")
        dns_is_synthetic "$a" || fail "$what: steered query got [$a]: $out"
        ok "$what: github.com -> synthetic $a"
        assert_match "$what: the answer seems to come from the server asked" "SERVER: $srv#53" "$out"
        out=$(dig_as dnsst $tr @"$srv" secret.example.net A)
        assert_eq "$what: denied name" REFUSED "$(dns_status "$out")"
    done
done

# An unconnected UDP socket (sendto) is redirected and identified too.
got=$(runuser -u dnsst -- python3 "$PS_SRC/tests/lib/dns_probe.py" --server 203.0.113.10 --port 53 \
      --unconnected query github.com)
assert_eq "unconnected UDP socket, steered" "RCODE=NOERROR AN=1 ID=ok" "$got"

# glibc (getaddrinfo: A and AAAA in parallel over one connected socket) with the resolver of
# /etc/resolv.conf.
printf 'nameserver 203.0.113.10\n' > /etc/resolv.conf
a=$(runuser -u dnsst -- getent ahostsv4 github.com | awk '{print $1; exit}')
dns_is_synthetic "$a" || fail "getaddrinfo as the sandboxed account gave [$a]"
ok "getaddrinfo github.com -> $a"
runuser -u dnsst -- getent hosts secret.example.net && fail "getaddrinfo resolved a denied name"
ok "getaddrinfo of a denied name fails"

# Search lists: "api" with "search corp.example.com example.com" must end at api.example.com (the
# name that exists), not at api.corp.example.com - which a synthetic answer for every allowed
# name would do; policy DNS answers NXDOMAIN for allowed names that do not exist.
printf 'nameserver 203.0.113.10\nsearch corp.example.com example.com\n' > /etc/resolv.conf
a=$(runuser -u dnsst -- getent ahostsv4 api | awk '{print $1; exit}')
want=$(dns_answers "$(dig_as dnsst @203.0.113.10 api.example.com A)")
dns_is_synthetic "$a" || fail "search list: api gave [$a]"
assert_eq "search list: api resolves to api.example.com's synthetic address" "$want" "$a"
assert_eq "api.corp.example.com was asked upstream (allowed) and did not exist" 1 \
    "$(dns_upstream_count api.corp.example.com A)"

assert_eq "the resolver never saw the denied name" 0 "$(dns_upstream_count secret.example.net)"

# One UDP socket, many servers (musl's resolver sends each lookup to every nameserver at once from
# one socket).  Every datagram is redirected to proxyd.  DNSListen= is a range of PS_REDIRECT_PORTS
# (16) ports, so for each new server the kernel takes the next port and the reply tuple
# (proxyd:port <-> host:sport) stays unique without touching the client's source port: 16 servers
# are all answered, each judged under the client's own identity.  The 17th cannot be placed
# without rewriting the source port; proxyd would then look the client up by a port it never had
# (for an unconnected socket, possibly another account's socket bound to that port, whose profile
# would judge the query).  The table refuses such flows before proxyd (chain remapped) and counts
# them.
n0=$(dns_decisions github.com | wc -l)
world_bg "$PS_BUILD/tests/nft_nflog_reader" 7100 > "$WORLD/nflog.log"
for _ in $(seq 100); do grep -q ready "$WORLD/nflog.log" && break; sleep 0.05; done
out=$(runuser -u dnsst -- python3 - <<'PY'
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.5)
query = struct.pack("!HHHHHH", 4242, 0x0100, 1, 0, 0, 0) + b"\x06github\x03com\x00" + struct.pack("!HH", 1, 1)
for i in range(17):
    srv = "203.0.113.%d" % (10 + i)
    s.sendto(query, (srv, 53))
    try:
        d, _ = s.recvfrom(512)
        print(i + 1, srv, "rcode", d[3] & 15)
    except socket.timeout:
        print(i + 1, srv, "no answer")
PY
)
assert_eq "one socket, 16 servers: all answered through proxyd" 16 "$(grep -c ' rcode 0$' <<<"$out")"
assert_match "  ... the 17th, same socket: refused before proxyd" "^17 203\.0\.113\.26 no answer" "$out"
assert_eq "  ... proxyd judged the 16" "$((n0 + 16))" "$(dns_decisions github.com | wc -l)"
assert_eq "  ... and never looked up a rewritten port" 0 "$(grep -c client_not_found "$WORLD/decisions.jsonl")"
st=$("$PS_BUILD/sandboxctl" -c "$CONF" status 2>&1)
assert_match "  ... counted by the table (sandboxctl status)" "source port rewritten by conntrack: [1-9]" "$st"
assert_match "  ... and logged like every rejection (NFLOG)" \
    'prefix="pam_sandbox reject: " uid=-1 proto=17 dst=127\.0\.0\.1' "$(cat "$WORLD/nflog.log")"

# Each steered DNS datagram carries its sender's UID as its mark (the map uidmark), so identity
# does not depend on the sender's socket still being there when proxyd looks.  Made deterministic
# by stopping proxyd while the datagrams are sent.  nft lists the map with what apply put in it.
assert_match "the mark map holds the sandboxed account" '59761 : 0x0000e971' "$(nft list map inet pam_sandbox uidmark)"
send_and_close() {   # USER PORT NAME: one query from a socket bound to PORT (SO_REUSEADDR), closed at once
    runuser -u "$1" -- python3 - "$2" "$3" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
name = b"".join(bytes([len(l)]) + l for l in sys.argv[2].encode().split(b".")) + b"\0"
s.sendto(struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + name + struct.pack("!HH", 1, 1), ("203.0.113.10", 53))
s.close()
PY
}
kill -STOP "$DNS_PROXYD_PID"
send_and_close dnsst 40161 quick.example.com
kill -CONT "$DNS_PROXYD_PID"
for _ in $(seq 40); do dns_decisions quick.example.com | grep -q . && break; sleep 0.05; done
assert_match "sender gone before proxyd looked: still its own query" '"account":"dnsst".*"decision":"allow"' \
    "$(dns_decisions quick.example.com)"
# The attack this closes: the allowed account holds a UDP port with SO_REUSEADDR; the deny-all
# account binds the same port, asks for a name only the other may resolve, and closes before
# proxyd looks, when the socket table shows only the allowed account on that port.
runuser -u dnsst -- python3 "$PS_SRC/tests/lib/dns_probe.py" --server 203.0.113.10 --port 53 \
    --bind-port 40162 --reuseaddr --hold 3 query github.com > "$WORLD/holder.out" &
holder=$!
for _ in $(seq 40); do [ -s "$WORLD/holder.out" ] && break; sleep 0.05; done
kill -STOP "$DNS_PROXYD_PID"
send_and_close dnsstdeny 40162 leak.example.com
kill -CONT "$DNS_PROXYD_PID"
for _ in $(seq 40); do dns_decisions leak.example.com | grep -q . && break; sleep 0.05; done
assert_match "borrowed port: refused" '"decision":"deny"' "$(dns_decisions leak.example.com)"
assert_no_match "  ... never under the allowed account" '"account":"dnsst"' "$(dns_decisions leak.example.com)"
assert_eq "  ... and never asked upstream" 0 "$(dns_upstream_count leak.example.com)"
wait "$holder"

# Not in the set: not steered, the real resolver answers (and logs it).
out=$(dig_as dnsstfree @203.0.113.10 secret.example.net A)
assert_eq "unsteered account reaches the resolver" 203.0.113.10 "$(dns_answers "$out")"
assert_eq "and the resolver saw that query" 1 "$(dns_upstream_count secret.example.net A)"

dns_done
