#!/usr/bin/env bash
# sandboxctl apply / status / flush and ps_nft_ensure_uid (issue 7): the login-time check refuses
# a missing or stale table; apply is idempotent, keeps UIDs added by logins, leaves established
# connections of other accounts alone, signals a running proxyd; an unrenderable configuration
# fails with FILE:LINE and leaves the loaded table as it was; rejections are logged with the UID.
# Accounts: sbx 59351 (sandboxed), plain 59352, late 59353 (added as a login would), pam-sandbox
# 59359 (proxyd's account).
. "$(dirname "$0")/../lib/world.sh" || exit 1
world_enter "$@"
command -v nft >/dev/null || skip "nft missing"
command -v setpriv >/dev/null || skip "setpriv missing"
[ -x "$PS_BUILD/sandboxctl" ] && [ -x "$PS_BUILD/tests/nft_ensure_uid" ] || skip "not built: $PS_BUILD"

world_upstream up
world_add_user sbx 59351 sandboxed
world_add_user plain 59352
world_add_user late 59353
world_add_user pam-sandbox 59359
sysctl -qw net.ipv4.ping_group_range="0 2147483647"

write_conf() {   # write_conf TRANSPARENT_V4 [EXTRA_LINE]
    cat > "$CONF/sandbox.conf" <<EOC
[Proxy]
User=pam-sandbox
ExplicitListen=127.0.0.1:3128
TransparentListen=$1
TransparentListen=[::1]:3129
DNSListen=127.0.0.1:3153
${2:-}
DecisionLog=$WORLD/decisions.jsonl
EOC
    chmod 644 "$CONF/sandbox.conf"
}
write_conf 127.0.0.1:3129
printf '[Match]\nGroup=sandboxed\n' > "$CONF/profiles/dev.conf"
chmod 644 "$CONF/profiles/dev.conf"

CTL=("$PS_BUILD/sandboxctl" -c "$CONF")
ENSURE=("$PS_BUILD/tests/nft_ensure_uid" "$CONF")
C="$PS_SRC/tests/lib/nft_client.py"
same_table() { [ "$2" = "$3" ] || fail "$1: the table changed:
$(diff <(echo "$2") <(echo "$3"))"; ok "$1"; }
as() { local u=$1; shift; setpriv --reuid "$u" --regid "$u" --init-groups -- /usr/bin/python3 "$C" "$@"; }

# --- no table: the login step refuses, status says so ---
out=$("${ENSURE[@]}" 59351 2>&1) && fail "ensure_uid succeeded without a table"
assert_match "login refused when the table is missing" 'table inet pam_sandbox is not loaded' "$out"
out=$("${CTL[@]}" status 2>&1) && fail "status exits 0 without a table"
assert_match "status: not loaded" 'not loaded' "$out"

# --- a real proxyd, so that apply has something to signal ---
PROXYD_UP=0
if [ -x "$PS_BUILD/sandbox-proxyd" ]; then
    world_bg "$PS_BUILD/sandbox-proxyd" -f -c "$CONF" -p "$WORLD/proxyd.pid"
    for _ in $(seq 100); do [ -s "$WORLD/proxyd.pid" ] && break; sleep 0.05; done
    [ -s "$WORLD/proxyd.pid" ] && PROXYD_UP=1
fi

# --- apply ---
out=$("${CTL[@]}" apply --proxyd-pidfile "$WORLD/proxyd.pid" 2>&1) || fail "apply: $out"
echo "$out"
assert_match "apply loads the table" 'table inet pam_sandbox loaded \(version 0x[0-9a-f]{8}\)' "$out"
if [ $PROXYD_UP = 1 ]; then
    assert_match "apply signals proxyd" "proxyd \(pid $(cat "$WORLD/proxyd.pid")\) asked to reload" "$out"
    for _ in $(seq 50); do grep -q 'reloaded configuration' "$SYSLOG" && break; sleep 0.1; done
    assert_match "proxyd reloaded" 'reloaded configuration' "$(cat "$SYSLOG")"
    kill "$(cat "$WORLD/proxyd.pid")"
    sleep 0.2
else
    echo "note: sandbox-proxyd did not start here; the SIGHUP step is not exercised"
fi
out=$("${CTL[@]}" status); rc=$?
assert_eq "status exit when loaded and current" 0 "$rc"
assert_match "status lists sbx with its profile" '59351 sbx \(profile dev\)' "$out"
assert_match "status says current" 'current' "$out"

# --- the login step: adds the UID; refuses root and proxyd's account ---
"${ENSURE[@]}" 59353 || fail "ensure_uid 59353 failed"
assert_match "a login adds its UID" '59353' "$(nft list set inet pam_sandbox users)"
assert_match "status says which UIDs no longer match a profile" '59353 late \(matches no profile now' "$("${CTL[@]}" status)"
out=$("${ENSURE[@]}" 0 2>&1) && fail "ensure_uid 0 succeeded"
assert_match "uid 0 is refused" 'uid 0 is never steered' "$out"
out=$("${ENSURE[@]}" 59359 2>&1) && fail "ensure_uid of proxyd's account succeeded"
assert_match "proxyd's account is refused" "proxyd's own account" "$out"

# --- an established connection of another account survives apply ---
ip netns exec up /usr/bin/python3 -c '
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("203.0.113.10", 7)); s.listen(8); print("ready", flush=True)
def echo(c):
    while True:
        d = c.recv(100)
        if not d: break
        c.sendall(d)
while True:
    c, _ = s.accept(); threading.Thread(target=echo, args=(c,), daemon=True).start()
' > "$WORLD/echo.log" &
WORLD_PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$WORLD/echo.log" && break; sleep 0.05; done
as plain hold 203.0.113.10 7 "$WORLD/go" > "$WORLD/hold.out" &
HOLD=$!
for _ in $(seq 100); do ss -tn | grep -q '203.0.113.10:7 ' && break; sleep 0.05; done

# --- apply twice: identical table, UIDs kept ---
before=$(nft list table inet pam_sandbox)
"${CTL[@]}" apply --proxyd-pidfile "$WORLD/none.pid" >/dev/null || fail "second apply"
after=$(nft list table inet pam_sandbox)
same_table "apply twice gives the identical table" "$before" "$after"
assert_match "the UID added by a login survives apply" '59353' "$(nft list set inet pam_sandbox users)"
touch "$WORLD/go"
wait $HOLD
assert_match "plain's established connection survived both applies" '^held ab' "$(cat "$WORLD/hold.out")"

# --- rejections are logged with the UID (NFLOG of this namespace) and counted ---
assert_match "the log rule carries the quoted prefix and the socket's UID" \
    'log prefix "pam_sandbox reject: " flags skuid' "$(nft list chain inet pam_sandbox egress)"
world_bg "$PS_BUILD/tests/nft_nflog_reader" 7100 > "$WORLD/nflog.log"
for _ in $(seq 100); do grep -q ready "$WORLD/nflog.log" && break; sleep 0.05; done
r=$(as sbx udp 203.0.113.10 9999)
assert_match "sbx's UDP/9999 is rejected" '^error EPERM' "$r"
r=$(as sbx ping 2001:db8::10)
assert_match "sbx's ping is dropped" '^(error EPERM|noreply)' "$r"
sleep 0.3
log=$(cat "$WORLD/nflog.log")
echo "$log"
assert_match "the UDP rejection is logged with the UID" 'prefix="pam_sandbox reject: " uid=59351 proto=17 dst=203\.0\.113\.10' "$log"
assert_match "the ICMPv6 drop is logged with the UID" 'prefix="pam_sandbox reject: " uid=59351 proto=58 dst=2001:db8::10' "$log"
assert_no_match "nothing of another account is logged" 'uid=(59352|59359|0) ' "$log"
out=$("${CTL[@]}" status)
assert_match "status counts the rejected datagram and the dropped echo" 'tcp 0, udp 1, other \(dropped\) 1' "$out"

# --- the configuration changes without apply: logins are refused, status says STALE ---
write_conf 127.0.0.1:3229
out=$("${ENSURE[@]}" 59351 2>&1) && fail "ensure_uid accepted a stale table"
assert_match "a stale table refuses the login" 'rendered from another configuration' "$out"
out=$("${CTL[@]}" status) && fail "status exits 0 for a stale table"
assert_match "status says STALE" 'STALE' "$out"

# --- a configuration that cannot be rendered: FILE:LINE, the loaded table stays ---
before=$(nft list table inet pam_sandbox)
write_conf 203.0.113.1:3129
out=$("${CTL[@]}" apply 2>&1) && fail "apply accepted a transparent listener redirect cannot reach"
assert_match "unreachable redirect target: FILE:LINE" "^$CONF/sandbox.conf:4: TransparentListen=203\.0\.113\.1:3129: nftables redirects" "$out"
same_table "the table is unchanged" "$before" "$(nft list table inet pam_sandbox)"
write_conf 127.0.0.1:3129 "TransparentListen=0.0.0.0:3200"
out=$("${CTL[@]}" apply 2>&1) && fail "apply accepted two IPv4 transparent ports"
assert_match "two redirect ports for one family: FILE:LINE" "^$CONF/sandbox.conf:7: TransparentListen=: a second IPv4 port \(3200, first 3129\)" "$out"
same_table "the table is still unchanged" "$before" "$(nft list table inet pam_sandbox)"
write_conf 127.0.0.1:3129
"${ENSURE[@]}" 59351 || fail "ensure_uid after restoring the configuration"
ok "the restored configuration matches the table that stayed loaded"

# --- the kernel refuses the transaction half-way: nothing of it takes effect ---
# (the flushes of both chains come before the conflicting set in the same batch)
nft delete set inet pam_sandbox version
nft add set inet pam_sandbox version '{ type ipv4_addr; }'
before=$(nft list table inet pam_sandbox)
out=$("${CTL[@]}" apply 2>&1) && fail "apply succeeded over a conflicting set"
assert_match "the refusal names the config file and the rejected text" \
    "^$CONF/sandbox.conf:0: nftables refused the ruleset at \"set version \{\": Could not process rule: File exists" "$out"
same_table "a refused transaction changed nothing (rules, UIDs)" "$before" "$(nft list table inet pam_sandbox)"
nft delete set inet pam_sandbox version
"${CTL[@]}" apply >/dev/null || fail "apply after removing the conflicting set"
assert_match "the UIDs survived all of it" '59351, 59353' "$(nft list set inet pam_sandbox users)"

# --- the whole ruleset flushed under running sessions (Debian's nftables.service does that on
# stop, start and reload): apply brings back every UID a login added, also late's, which matches
# no profile and so would not be found by listing the accounts ---
assert_eq "logins recorded their UIDs" "59351 59353" "$(ls /run/pam_sandbox/steered | sort -n | xargs)"
nft flush ruleset
out=$("${CTL[@]}" apply 2>&1) || fail "apply after a flushed ruleset: $out"
assert_match "apply says where the extra UID comes from" 'uid 59353: steered by a session since boot' "$out"
assert_match "both UIDs steered again" '59351, 59353' "$(nft list set inet pam_sandbox users)"
r=$(as late udp 203.0.113.10 9999)
assert_match "late's traffic is steered again" '^error EPERM' "$r"

# --- proxyd's account does not exist (yet): steering still loads, without an exemption ---
sed -i 's/^User=.*/User=no-such-proxy-user/' "$CONF/sandbox.conf"
out=$("${CTL[@]}" apply 2>&1) || fail "apply with a missing proxyd account: $out"
assert_match "apply warns that proxyd's account is missing" 'User=no-such-proxy-user: no such account' "$out"
assert_no_match "no exemption rule for a UID nobody has" 'meta skuid [0-9]+ return' "$(nft list table inet pam_sandbox)"
r=$(as sbx udp 203.0.113.10 9999)
assert_match "sbx is still steered" '^error EPERM' "$r"
write_conf 127.0.0.1:3129

# --- no IPv6 transparent listener: sandboxed IPv6 TCP meets nft's reset, at once and logged ---
write_conf 127.0.0.1:3129
sed -i '/^TransparentListen=\[::1\]/d' "$CONF/sandbox.conf"
"${CTL[@]}" apply >/dev/null || fail "apply without an IPv6 transparent listener"
tcp_before=$(nft list counter inet pam_sandbox rejected_tcp | grep -o 'packets [0-9]*')
r=$(as sbx tcp 2001:db8::10 80)
assert_match "IPv6 TCP of sbx is reset at once by the reject rule" '^error ECONNREFUSED elapsed=0\.[0-4]' "$r"
assert_no_match "the reject rule counted it" "^$tcp_before\$" "$(nft list counter inet pam_sandbox rejected_tcp | grep -o 'packets [0-9]*')"
sleep 0.3
assert_match "and logged it with the UID" 'prefix="pam_sandbox reject: " uid=59351 proto=6 dst=2001:db8::10' "$(cat "$WORLD/nflog.log")"
write_conf 127.0.0.1:3129

# --- flush ---
"${CTL[@]}" flush >/dev/null || fail "flush"
nft list table inet pam_sandbox >/dev/null 2>&1 && fail "table still there after flush"
ok "flush removed the table"
assert_eq "flush forgets the UIDs steered since boot (apply would add them back)" "" \
    "$(ls -A /run/pam_sandbox/steered 2>/dev/null)"
out=$("${ENSURE[@]}" 59351 2>&1) && fail "ensure_uid succeeded after flush"
assert_match "after flush, logins are refused" 'not loaded' "$out"
out=$("${CTL[@]}" flush) || fail "flush of an absent table"
assert_match "flush of an absent table says so" 'was not loaded: nothing removed' "$out"
ok "flush of an absent table succeeds"
