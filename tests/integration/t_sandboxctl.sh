#!/usr/bin/env bash
# sandboxctl check / explain / decide against real files in $CONF and real accounts (NSS, with
# supplementary groups), asserting output and exit codes (DESIGN.md §2).  UIDs 59000-59019.
. "${PS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/world.sh" || exit 1
world_enter "$@"

CTL="$PS_BUILD/sandboxctl"
[ -x "$CTL" ] || fail "$CTL not built"
ctl() { "$CTL" -c "$CONF" "$@"; }
# run CMD...: sets $out (stdout+stderr) and $rc
run() { out=$("$@" 2>&1); rc=$?; }

world_conf
world_add_user ps-ci 59001 ps-sandboxed
world_add_user ps-alice 59002 ps-sandboxed
world_add_user ps-bob 59003
world_add_user ps-rep 59004 ps-report
usermod -a -G ps-sandboxed root          # in the world's /etc copy only

DEV="$CONF/profiles/20-dev.conf"
cat > "$CONF/profiles/10-ci.conf" <<'EOC'
[Match]
User=ps-ci
[Network]
Allow=ci.example.com
EOC
cat > "$DEV" <<'EOC'
# developers
[Match]
Group=ps-sandboxed

[Limits]
LimitNOFILE=1024:4096

[Network]
Allow=github.com:443
Allow=*.githubusercontent.com:443
Allow=10.20.0.0/16:5432
Allow=git.example.com:22 binary=/usr/bin/ssh
Deny=gist.github.com
EOC
cat > "$CONF/profiles/30-report.conf" <<'EOC'
[Match]
Group=ps-report
[Network]
Allow=github.com
Mode=report
[Process]
NoNewPrivileges=no
EOC
chmod 644 "$CONF"/profiles/*.conf

# ---- check: a valid configuration ----
run ctl check
assert_eq "check rc on a valid config" 0 "$rc"
assert_match "check says OK" "configuration OK \(3 profiles" "$out"
assert_match "check warns about NoNewPrivileges=no with its place" \
    "30-report.conf:7: warning: NoNewPrivileges=no: set-user-ID programs run as root" "$out"
assert_eq "only there" 1 "$(grep -c 'warning:' <<<"$out")"

# ---- explain ----
run ctl explain ps-alice
assert_eq "explain rc" 0 "$rc"
assert_match "alice gets 20-dev" "# profile: 20-dev \($DEV\)" "$out"
assert_match "matched by a supplementary group, with FILE:LINE" "matched by $DEV:3: Group=ps-sandboxed \(supplementary\)" "$out"
assert_match "defaults shown" "LimitNPROC=512 +# default" "$out"
assert_match "file settings shown with origin" "LimitNOFILE=1024:4096 +# $DEV:6" "$out"
assert_match "deny without port = every port" "Deny=gist.github.com:\* +# $DEV:13" "$out"
assert_match "no inference" "no Models=: inference.local is denied" "$out"

run ctl explain ps-ci
assert_match "first profile wins (ps-ci is also in ps-sandboxed)" "# profile: 10-ci " "$out"
assert_match "ci matched by User=" "10-ci.conf:2: User=ps-ci" "$out"

run ctl explain ps-bob
assert_eq "explain of an unmatched user rc" 0 "$rc"
assert_match "bob is not sandboxed" "not sandboxed" "$out"

run ctl explain root
assert_match "root (UID 0) is never matched" "profile: none: root has UID 0, which is never sandboxed" "$out"

# Group= names a group by one of its names: a second name for the same GID in /etc/group (which
# getgrgid() never returns) matches too, by number.
rgid=$(getent group ps-report | cut -d: -f3)
echo "ps-report-alias:x:$rgid:" >> /etc/group
printf '[Match]\nGroup=ps-report-alias\n' > "$CONF/profiles/05-alias.conf"
chmod 644 "$CONF/profiles/05-alias.conf"
run ctl explain ps-rep
assert_match "a second name of the same GID matches" "# profile: 05-alias " "$out"
rm "$CONF/profiles/05-alias.conf"
sed -i '/^ps-report-alias:/d' /etc/group

# A group with thousands of members does not fit NSS's usual 16 KiB buffer (ERANGE): the member
# must still be matched by Group=, never left unconfined for want of the group's name.
members=$(seq -f 'm%05g' 3000 | paste -sd, -)
sed -i "s/^\(ps-sandboxed:[^:]*:[0-9]*:.*\)\$/\1,$members/" /etc/group
[ "$(grep '^ps-sandboxed:' /etc/group | wc -c)" -gt 20000 ] || fail "could not grow ps-sandboxed"
run ctl explain ps-alice
assert_match "member of a 3,000-member group still matched by Group=" \
    "matched by $DEV:3: Group=ps-sandboxed \(supplementary\)" "$out"

run ctl explain ps-nosuchuser
assert_eq "explain of an unknown user rc" 1 "$rc"

run ctl explain
assert_eq "explain without USER is a usage error" 2 "$rc"

# ---- decide ----
run ctl decide ps-alice github.com 443
assert_eq "decide allow rc" 0 "$rc"
assert_eq "decide allow verdict" allow "$(head -n1 <<<"$out")"
assert_match "decide names the allow rule" "rule: $DEV:9: Allow=github.com:443" "$out"

run ctl decide ps-alice GIST.GitHub.com. 443
assert_eq "decide deny rc" 1 "$rc"
assert_eq "deny over allow" deny "$(head -n1 <<<"$out")"
assert_match "decide names the deny rule" "rule: $DEV:13: Deny=gist.github.com" "$out"

run ctl decide ps-alice githubusercontent.com 443
assert_eq "*.suffix does not match the apex" deny "$(head -n1 <<<"$out")"
assert_match "default decides" "rule: default \(no matching rule\)" "$out"

run ctl decide ps-alice raw.githubusercontent.com 443
assert_eq "*.suffix matches a subdomain" allow "$(head -n1 <<<"$out")"

run ctl decide ps-alice git.example.com 22 --binary /usr/bin/ssh
assert_eq "binary= matches its binary" allow "$(head -n1 <<<"$out")"
run ctl decide ps-alice git.example.com 22 --binary /usr/bin/nc
assert_eq "binary= refuses another binary" deny "$(head -n1 <<<"$out")"
assert_match "binary mismatch reason" "reason: binary_mismatch" "$out"

run ctl decide ps-alice 10.20.3.4 5432
assert_eq "explicit CIDR opens a private range" allow "$(head -n1 <<<"$out")"
run ctl decide ps-alice 169.254.169.254 80
assert_eq "metadata address denied" deny "$(head -n1 <<<"$out")"
assert_match "metadata reason" "address_class_metadata" "$out"

run ctl decide ps-rep example.org 443
assert_eq "report mode rc" 0 "$rc"
assert_eq "report mode verdict" would-deny "$(head -n1 <<<"$out")"

run ctl decide ps-bob github.com 443
assert_eq "decide for an unsandboxed user" not-sandboxed "$(head -n1 <<<"$out")"

run ctl decide ps-alice github.com 0
assert_eq "port 0 is a usage error" 2 "$rc"
run ctl decide ps-alice github.com 65536
assert_eq "port 65536 is a usage error" 2 "$rc"
run ctl decide ps-alice github.com
assert_eq "missing PORT is a usage error" 2 "$rc"

# ---- check: bad input, every error as FILE:LINE, exit 1 ----
BAD="$CONF/profiles/40-bad.conf"
printf '[Match]\nUser=ps-bob\n[Limits]\nLimitNPROC=-1\n[Network]\nAllow=*.com\nAllow=10.0.0.0/33\nAllow=x.example.com:65536\nMode=enforce\nMode=report\nno equals sign\n[Seccomp]\nDenySyscalls=frobnicate\nAllowNetlink=xfrm\n[Bogus]\n' > "$BAD"
chmod 644 "$BAD"
run ctl check
assert_eq "check rc on bad input" 1 "$rc"
assert_match "LimitNPROC=-1" "^$BAD:4: LimitNPROC=-1: " "$out"
assert_match "wildcard too broad" "$BAD:6: Allow=\*\.com: .*too broad" "$out"
assert_match "CIDR /33" "$BAD:7: .*/33 is out of range" "$out"
assert_match "port 65536" "$BAD:8: .*not a port" "$out"
assert_match "duplicate Mode=" "$BAD:10: duplicate Mode=" "$out"
assert_match "line without =" "$BAD:11: expected Key=Value" "$out"
assert_match "unknown syscall" "$BAD:13: .*unknown system call 'frobnicate'" "$out"
assert_match "unknown netlink" "$BAD:14: .*unknown netlink protocol 'xfrm'" "$out"
assert_match "unknown section" "$BAD:15: unknown section \[Bogus\]" "$out"
assert_eq "every error is reported" 9 "$(grep -c "^$BAD:" <<<"$out")"
run ctl decide ps-alice github.com 443
assert_eq "decide refuses an invalid config" 1 "$rc"
rm -f "$BAD"

printf '[Match]\nUser=ps-bob\n\xff\n' > "$BAD"; chmod 644 "$BAD"
run ctl check
assert_match "non-UTF-8 byte" "$BAD:3: invalid UTF-8" "$out"
rm -f "$BAD"

# ---- check: file-system security ----
chmod 666 "$DEV"
run ctl check
assert_eq "world-writable profile rc" 1 "$rc"
assert_match "error names the world-writable file" "^$DEV:0: world-writable \(mode 0666\)" "$out"
run ctl explain ps-alice
assert_eq "explain refuses a world-writable profile" 1 "$rc"
chmod 644 "$DEV"

chown 59003 "$DEV"
run ctl check
assert_match "error names a file not owned by root" "$DEV:0: owned by uid 59003" "$out"
chown 0 "$DEV"

chmod 775 "$CONF/profiles"
run ctl check
assert_match "group-writable profiles dir" "$CONF/profiles:0: group-writable" "$out"
chmod 755 "$CONF/profiles"

mkdir -p "$CONF/secrets"; chmod 755 "$CONF/secrets"
echo sk-test > "$CONF/secrets/openai.key"; chmod 644 "$CONF/secrets/openai.key"
cat > "$CONF/inference.d/openai.conf" <<EOC
[Backend]
URL=https://api.openai.com/v1
API=openai
APIKeyFile=$CONF/secrets/openai.key
Models=fast=gpt-4o-mini gpt-4o
EOC
chmod 644 "$CONF/inference.d/openai.conf"
run ctl check
assert_eq "other-readable key rc" 1 "$rc"
assert_match "error names the readable key file" "$CONF/secrets/openai.key:0: readable by others" "$out"
chmod 600 "$CONF/secrets/openai.key"
run ctl check
assert_eq "check passes once the key is private" 0 "$rc"
assert_match "backend counted" "1 inference backend" "$out"

run "$CTL" -c "$WORLD/nonexistent" check
assert_eq "missing config dir rc" 1 "$rc"
assert_match "missing dir named" "$WORLD/nonexistent:0: configuration directory does not exist" "$out"

# The shipped examples pass check as they are installed (root-owned, 0644).
EX="$WORLD/examples"; mkdir -p "$EX/profiles" "$EX/inference.d" "$EX/secrets"
install -m 644 "$PS_SRC/profiles/sandbox.conf" "$EX/sandbox.conf"
install -m 644 "$PS_SRC"/profiles/profiles/*.conf "$EX/profiles/"
sed "s#/etc/pam_sandbox/secrets#$EX/secrets#" "$PS_SRC/profiles/inference.d/example-openai.conf" > "$EX/inference.d/example-openai.conf"
chmod 644 "$EX/inference.d/example-openai.conf"
install -m 600 /dev/null "$EX/secrets/openai.key"
run "$CTL" -c "$EX" check
assert_eq "shipped examples pass check" 0 "$rc"
echo "all sandboxctl checks passed"
