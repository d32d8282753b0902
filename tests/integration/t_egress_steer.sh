#!/usr/bin/env bash
# Egress steering (issue 7, DESIGN.md §5.1) with the real ruleset loaded by `sandboxctl apply`,
# in a private network namespace joined by veth to an "upstream" namespace.  A test listener on
# the transparent and DNS ports stands where proxyd would and reports SO_ORIGINAL_DST and the
# sock_diag owner of every connection; the upstream runs the same listener, so every line in its
# log is something that got out.
# Accounts: sbx 59301 (sandboxed), plain 59302 (not), squat 59303 (not: binds proxyd's ports while
# proxyd is down), pam-sandbox 59309 (proxyd's account, in the sandboxed group on purpose: it must
# still never be steered).
. "$(dirname "$0")/../lib/world.sh" || exit 1
world_enter "$@"
command -v nft >/dev/null || skip "nft missing"
command -v setpriv >/dev/null || skip "setpriv missing"
[ -x "$PS_BUILD/sandboxctl" ] && [ -x "$PS_BUILD/tests/nft_origdst_listener" ] || skip "not built: $PS_BUILD"

world_upstream up
world_add_user sbx 59301 sandboxed
world_add_user plain 59302
world_add_user pam-sandbox 59309 sandboxed
# Unprivileged ICMP ("ping") sockets for everyone, in this namespace only.
sysctl -qw net.ipv4.ping_group_range="0 2147483647"

cat > "$CONF/sandbox.conf" <<EOC
[Proxy]
User=pam-sandbox
ExplicitListen=127.0.0.1:3128
TransparentListen=127.0.0.1:3129
TransparentListen=[::1]:3129
DNSListen=127.0.0.1:3153
DNSListen=[::1]:3153
DecisionLog=$WORLD/decisions.jsonl
EOC
printf '[Match]\nGroup=sandboxed\n' > "$CONF/profiles/dev.conf"
chmod 644 "$CONF/sandbox.conf" "$CONF/profiles/dev.conf"

out=$("$PS_BUILD/sandboxctl" -c "$CONF" apply 2>&1) || fail "apply: $out"
echo "$out"
assert_match "apply names the sandboxed account" 'sbx \(uid 59301\)' "$out"
assert_match "apply refuses to steer proxyd's account" "pam-sandbox \(uid 59309\).*never steered" "$out"
set_list=$(nft list set inet pam_sandbox users)
assert_match "sbx is in the set" '59301' "$set_list"
assert_no_match "proxyd's account is not in the set" '59309' "$set_list"
assert_no_match "plain is not in the set" '59302' "$set_list"

# Where proxyd would listen, and the upstream host (which also has something on port 9999 UDP).
L="$PS_BUILD/tests/nft_origdst_listener"
world_bg "$L" tcp 127.0.0.1 3129 tcp ::1 3129 udp 127.0.0.1 3153 udp ::1 3153 > "$WORLD/proxy.log"
PROXY_PID=${WORLD_PIDS[-1]}
world_bg ip netns exec up "$L" tcp 203.0.113.10 80 tcp 2001:db8::10 80 \
    udp 203.0.113.10 9999 udp 2001:db8::10 9999 > "$WORLD/upstream.log"
world_bg "$L" tcp 127.0.0.1 6379 > "$WORLD/redis.log"
for f in proxy upstream redis; do
    for _ in $(seq 100); do grep -q ready "$WORLD/$f.log" 2>/dev/null && break; sleep 0.05; done
    grep -q ready "$WORLD/$f.log" || fail "$f listener did not start"
done

C="$PS_SRC/tests/lib/nft_client.py"
as() { local u=$1; shift; setpriv --reuid "$u" --regid "$u" --init-groups -- /usr/bin/python3 "$C" "$@"; }
upstream_lines() { grep -c -v ready "$WORLD/upstream.log"; }

# --- sandboxed account: TCP is redirected to the transparent port, with the right identity ---
r=$(as sbx tcp 203.0.113.10 80)
assert_match "IPv4 TCP of sbx answered by the transparent listener" '^connected ok' "$r"
assert_match "IPv4: SO_ORIGINAL_DST and sock_diag UID are right" \
    'orig=203\.0\.113\.10:80 uid=59301 redirected=yes' "$(cat "$WORLD/proxy.log")"
r=$(as sbx tcp 2001:db8::10 80)
assert_match "IPv6 TCP of sbx answered by the transparent listener" '^connected ok' "$r"
assert_match "IPv6: IP6T_SO_ORIGINAL_DST and sock_diag UID are right" \
    'orig=\[2001:db8::10\]:80 uid=59301 redirected=yes' "$(cat "$WORLD/proxy.log")"
assert_eq "nothing of sbx reached upstream (TCP)" 0 "$(upstream_lines)"

# --- a loopback service of the host is redirected, not delivered ---
r=$(as sbx tcp 127.0.0.1 6379)
assert_match "127.0.0.1:6379 from sbx is answered by the transparent listener" '^connected ok' "$r"
assert_match "it was redirected with its original destination" 'orig=127\.0\.0\.1:6379 uid=59301' "$(cat "$WORLD/proxy.log")"
assert_eq "the loopback service saw nothing" 0 "$(grep -c peer= "$WORLD/redis.log")"

# --- DNS: UDP to port 53 of any address reaches the policy DNS port ---
before=$(grep -c '^udp' "$WORLD/proxy.log")
r=$(as sbx udp 203.0.113.10 53)
assert_match "IPv4 UDP/53 of sbx answered by the DNS port" '^reply dns-ok' "$r"
r=$(as sbx udp 203.0.113.77 53)
assert_match "UDP/53 to an address where no host answers reaches the DNS port" '^reply dns-ok' "$r"
r=$(as sbx udp 2001:db8::10 53)
assert_match "IPv6 UDP/53 of sbx answered by the DNS port" '^reply dns-ok' "$r"
assert_eq "three datagrams arrived at the DNS port" $((before + 3)) "$(grep -c '^udp' "$WORLD/proxy.log")"

# --- other UDP fails at once with EPERM, nothing arrives upstream ---
r=$(as sbx udp 203.0.113.10 9999)
assert_match "IPv4 UDP/9999 of sbx fails at once with EPERM" '^error EPERM elapsed=0\.[0-4]' "$r"
r=$(as sbx udp 2001:db8::10 9999)
assert_match "IPv6 UDP/9999 of sbx fails at once with EPERM" '^error EPERM elapsed=0\.[0-4]' "$r"
sleep 0.3
assert_eq "no datagram of sbx arrived upstream" 0 "$(upstream_lines)"

# --- ICMP echo gets nothing out (the ping socket's send is dropped) ---
ip netns exec up nft -f - <<'EON'
table inet count {
    chain in {
        type filter hook input priority 0; policy accept;
        icmp type echo-request counter
        icmpv6 type echo-request counter
    }
}
EON
r=$(as sbx ping 203.0.113.10)
assert_match "IPv4 ping socket of sbx gets no echo out" '^(error EPERM|noreply)' "$r"
r=$(as sbx ping 2001:db8::10)
assert_match "IPv6 ping socket of sbx gets no echo out" '^(error EPERM|noreply)' "$r"
if command -v ping >/dev/null; then
    r=$(setpriv --reuid sbx --regid sbx --init-groups -- ping -c 1 -W 1 203.0.113.10 2>&1) && fail "ping(8) of sbx got a reply: $r"
    ok "ping(8) of sbx gets no reply"
fi
assert_match "upstream counted no echo request" 'icmp type echo-request counter packets 0 .*icmpv6 type echo-request counter packets 0' \
    "$(ip netns exec up nft list chain inet count in | tr '\n' ' ')"

# --- a socket bound to the veth (SO_BINDTODEVICE) is routed out of it even to 127.0.0.1 or ::1
# after the redirect, past every rule that looks at addresses: dropped on the way out ---
ip netns exec up nft -f - <<'EON'
table inet leak {
    chain pre {
        type filter hook prerouting priority -300; policy accept;
        ip daddr 127.0.0.0/8 counter
        ip6 daddr ::1 counter
    }
}
EON
# With a default route by the veth (as a host has by its uplink), such a packet would go to the
# gateway's address on the wire: the upstream host plays the gateway here.
ip route add default via 203.0.113.10 dev ps-veth0
ip -6 route add default via 2001:db8::10 dev ps-veth0
dev() { NFT_CLIENT_DEVICE=ps-veth0 as "$@"; }
r=$(dev sbx udp 203.0.113.10 53)
assert_match "sbx's DNS datagram from a socket bound to the veth gets nothing" '^(error EPERM|noreply)' "$r"
r=$(dev sbx udp 2001:db8::10 53)
assert_match "  ... over IPv6 too (no route to ::1 by the veth, or dropped)" '^(error (EPERM|ENETUNREACH)|noreply)' "$r"
r=$(dev sbx tcp 203.0.113.10 80)
assert_no_match "  ... nor its TCP connection" '^connected' "$r"
r=$(dev plain tcp 203.0.113.10 80)
assert_match "an account that is not sandboxed binds to the veth and connects (the test can see it)" '^connected ok' "$r"
sleep 0.3
assert_match "upstream saw no packet to a loopback address" 'ip daddr 127\.0\.0\.0/8 counter packets 0 .*ip6 daddr ::1 counter packets 0 ' \
    "$(ip netns exec up nft list chain inet leak pre | tr '\n' ' ')"
off=$(nft list counter inet pam_sandbox off_loopback | sed -n 's/.*packets \([0-9]*\).*/\1/p')
assert_eq "they were dropped leaving by the veth (counter off_loopback)" yes "$([ "${off:-0}" -ge 3 ] && echo yes || echo "no: ${off:-none}")"
assert_match "sandboxctl status shows it" "dropped, leaving by another device than lo \(a socket bound to it\): $off" \
    "$("$PS_BUILD/sandboxctl" -c "$CONF" status 2>&1)"
ip route del default via 203.0.113.10 dev ps-veth0
ip -6 route del default via 2001:db8::10 dev ps-veth0

# --- a connection the kernel refuses fails at once (DESIGN.md §9.9: the RST has no owner) ---
r=$(as sbx tcp 127.0.0.1 3128)
assert_match "sbx to proxyd's explicit port with nothing listening: refused at once" '^error ECONNREFUSED elapsed=0\.[0-4]' "$r"

# --- accounts that are not steered: plain and proxyd's own ---
r=$(as plain tcp 203.0.113.10 80)
assert_match "plain reaches upstream directly over IPv4" '^connected ok' "$r"
assert_match "upstream saw plain's connection unchanged" 'peer=203\.0\.113\.1:[0-9]+ orig=203\.0\.113\.10:80' "$(cat "$WORLD/upstream.log")"
r=$(as plain udp 2001:db8::10 9999)
assert_match "plain's IPv6 UDP/9999 gets its answer from upstream" '^reply dns-ok' "$r"
r=$(as plain ping 203.0.113.10)
assert_match "plain's ping gets a reply" '^reply' "$r"
assert_match "and the upstream counter saw it (so the zero above means something)" \
    'icmp type echo-request counter packets 1 ' "$(ip netns exec up nft list chain inet count in | tr '\n' ' ')"
n=$(upstream_lines)
r=$(as pam-sandbox tcp 2001:db8::10 80)
assert_match "proxyd's account reaches upstream directly over IPv6" '^connected ok' "$r"
r=$(as pam-sandbox udp 203.0.113.10 9999)
assert_match "proxyd's account's UDP/9999 gets its answer" '^reply dns-ok' "$r"
assert_eq "upstream saw both connections of proxyd's account" $((n + 2)) "$(upstream_lines)"

# --- an ExplicitListen= address that is not this host's (the corporate proxy written there by
# mistake, a lease that moved) exempts nothing: sbx's connection to it is still redirected ---
echo "ExplicitListen=203.0.113.10:80" >> "$CONF/sandbox.conf"
out=$("$PS_BUILD/sandboxctl" -c "$CONF" apply 2>&1) || fail "apply with a remote ExplicitListen=: $out"
n=$(upstream_lines)
r=$(as sbx tcp 203.0.113.10 80)
assert_match "sbx to a remote ExplicitListen= address: answered by the transparent listener" '^connected ok' "$r"
assert_eq "  ... and nothing reached that address directly" "$n" "$(upstream_lines)"
sed -i '/^ExplicitListen=203.0.113.10:80$/d' "$CONF/sandbox.conf"
"$PS_BUILD/sandboxctl" -c "$CONF" apply >/dev/null 2>&1 || fail "apply after removing it"

# --- fail closed: with nothing on the transparent port, sbx's TCP is refused at once ---
kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null
for _ in $(seq 50); do ss -ltn | grep -q ':3129 ' || break; sleep 0.05; done
n=$(upstream_lines)
r=$(as sbx tcp 203.0.113.10 80)
assert_match "IPv4: no transparent listener, refused at once" '^error ECONNREFUSED elapsed=0\.[0-4]' "$r"
r=$(as sbx tcp 2001:db8::10 80)
assert_match "IPv6: no transparent listener, refused at once" '^error ECONNREFUSED elapsed=0\.[0-4]' "$r"
assert_eq "upstream accepted nothing meanwhile" "$n" "$(upstream_lines)"

# --- a port squatter, while proxyd is down, receives nothing (chain listeners) ---
# An unprivileged account binds the transparent, DNS and explicit ports first.  Its sockets lack
# proxyd's mark (PS_PROXY_SOCKET_MARK, which needs CAP_NET_ADMIN), so what is steered there is
# refused, logged and counted, as if nothing listened.
world_add_user squat 59303
world_bg setpriv --reuid 59303 --regid 59303 --clear-groups -- "$L" nomark tcp 127.0.0.1 3129 \
    tcp ::1 3129 udp 127.0.0.1 3153 tcp 127.0.0.1 3128 > "$WORLD/squat.log"
SQUAT_PID=${WORLD_PIDS[-1]}
for _ in $(seq 100); do grep -q ready "$WORLD/squat.log" 2>/dev/null && break; sleep 0.05; done
grep -q ready "$WORLD/squat.log" || fail "squatter did not start: $(cat "$WORLD/squat.log")"
squatted() { nft list counter inet pam_sandbox squatter | sed -n 's/.*packets \([0-9]*\).*/\1/p'; }
# refused WHAT EXPECTED_REGEX ACCOUNT CLIENT_ARGS...: refused as expected, and by chain listeners:
# its counter moved by exactly one packet (the SYN or the datagram), not by the kernel for another
# reason
refused() {
    local what=$1 want=$2 who=$3 c r
    shift 3
    c=$(squatted)
    r=$(as "$who" "$@")
    assert_match "$what" "$want" "$r"
    assert_eq "  ... refused by chain listeners (counter squatter +1)" $((c + 1)) "$(squatted)"
}
refused "IPv4: sbx's TCP with a squatter on the transparent port: refused at once" \
    '^error ECONNREFUSED elapsed=0\.[0-4]' sbx tcp 203.0.113.10 80
refused "IPv6: the same" '^error ECONNREFUSED elapsed=0\.[0-4]' sbx tcp 2001:db8::10 80
refused "sbx's DNS query to a squatter on the DNS port: port unreachable at once" \
    '^error ECONNREFUSED elapsed=0\.[0-4]' sbx udp 203.0.113.10 53
refused "not only steered traffic: plain's explicit-proxy connection is refused too" \
    '^error ECONNREFUSED elapsed=0\.[0-4]' plain tcp 127.0.0.1 3128
assert_eq "the squatter received nothing" 0 "$(grep -vc ready "$WORLD/squat.log")"
assert_match "sandboxctl status shows the count" \
    "not proxyd's socket \\(a port squatter\\): $(squatted)\$" "$("$PS_BUILD/sandboxctl" -c "$CONF" status 2>&1)"
# The attack is real: without chain listeners the squatter gets sbx's connection and its query.
nft flush chain inet pam_sandbox listeners
r=$(as sbx tcp 203.0.113.10 80)
assert_match "without chain listeners, the squatter is answering sbx's TCP" '^connected ok' "$r"
r=$(as sbx udp 203.0.113.10 53)
assert_match "  ... and sbx's DNS" '^reply dns-ok' "$r"
out=$("$PS_BUILD/sandboxctl" -c "$CONF" apply 2>&1) || fail "apply after the flush: $out"
r=$(as sbx tcp 203.0.113.10 80)
assert_match "apply restores the guard" '^error ECONNREFUSED elapsed=0\.[0-4]' "$r"
assert_match "  ... and warns about the squatted transparent port, by UID" \
    "warning: 127\\.0\\.0\\.1:3129/tcp \\(TransparentListen=\\) is held by a socket without proxyd's mark \\(uid 59303," "$out"
assert_match "  ... and the DNS one" "warning: 127\\.0\\.0\\.1:3153/udp \\(DNSListen=\\)" "$out"
kill "$SQUAT_PID"; wait "$SQUAT_PID" 2>/dev/null
true   # the wait reports the squatter's SIGTERM (143): not the test's status
