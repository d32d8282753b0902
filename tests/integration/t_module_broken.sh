#!/usr/bin/env bash
# A configuration that fails to load (DESIGN.md §4.1, pam_sandbox(8) "BROKEN CONFIGURATION"):
# accounts a profile file's [Match] names are refused with the reason in syslog, others are left
# alone; when nobody can tell whom a file matches (its [Match] is broken, it is not trusted) every
# account but root is refused; root always gets in.  Driven through the noninteractive stack.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/module_world.sh"

mod_setup
world_add_user ps-ba 59190 ps-bgrp     # matched through Group= by a broken profile
world_add_user ps-bb 59191             # matched by a valid profile while another file is broken
world_add_user ps-bfree 59192          # matched by nothing
mod_profile 10-valid <<'EOP'
[Match]
User=ps-bb
EOP
runs() { mod_run "$1" true >/dev/null 2>&1; }
mark() { MARK=$(wc -l < "$SYSLOG"); }
since() { sleep 0.2; tail -n +$((MARK + 1)) "$SYSLOG"; }

# egress steering first: without the ruleset loaded, a sandboxed account gets no session
if ! strings "$MOD_SO" | grep -q 'built with nft_pending.c'; then
    mark
    runs ps-bb && fail "ps-bb got a session while table inet pam_sandbox is not loaded"
    assert_match "refused: table missing" "refusing session of ps-bb \\(profile 10-valid\\): nftables: .*table inet pam_sandbox is not loaded" "$(since)"
    runs ps-bfree || fail "an unmatched account needs no ruleset"
    ok "unmatched account logs in without the ruleset"
fi
mod_apply
runs ps-bb || fail "ps-bb after sandboxctl apply"
ok "ps-bb logs in once the ruleset is loaded"

mod_profile 20-broken <<'EOP'
[Match]
Group=ps-bgrp
[Limits]
LimitNPROC=lots
EOP

mark
runs ps-ba && fail "ps-ba (Group= of the broken profile) got a session"
assert_match "reason names the file and line" "refusing session of ps-ba: configuration in $CONF is invalid: $CONF/profiles/20-broken.conf:4: .*the account is sandboxed \\($CONF/profiles/20-broken.conf:2: Group=ps-bgrp" "$(since)"
runs ps-bb && fail "ps-bb (valid profile, broken config) got a session"
ok "an account of a valid profile is refused too: its profile cannot be applied from a broken config"
mark
runs ps-bfree || fail "ps-bfree (matched by nothing) locked out"
assert_match "unmatched account: warning, not refused" "configuration in $CONF is invalid.*no profile's \\[Match\\] matches ps-bfree: session not confined" "$(since)"
runs root || fail "root locked out"
ok "root logs in"

# a [Match] that is itself broken: nobody can tell whom it is for
mod_profile 30-badmatch <<'EOP'
[Match]
User=ps-bfree bad!name
EOP
mark
runs ps-bfree && fail "ps-bfree got a session although 30-badmatch.conf may match it"
assert_match "cannot tell" "cannot tell whom $CONF/profiles/30-badmatch.conf matches" "$(since)"
runs root || fail "root locked out by a broken [Match]"
ok "root still logs in"
rm "$CONF/profiles/30-badmatch.conf"

# User= or Group= outside [Match] is an error, but the admin meant an account by it: the file
# cannot say whom it is for, rather than quietly not matching that account
mod_profile 35-stray <<'EOP'
[Match]
Group=ps-bgrp
[Limits]
LimitNPROC=256
User=ps-bfree
EOP
mark
runs ps-bfree && fail "ps-bfree got a session although 35-stray.conf names it outside [Match]"
assert_match "stray User= outside [Match]: cannot tell" "cannot tell whom $CONF/profiles/35-stray.conf matches" "$(since)"
runs root || fail "root locked out by a stray User="
rm "$CONF/profiles/35-stray.conf"

# a profile file others may write is not trusted to say whom it matches
mod_profile 40-loose <<'EOP'
[Match]
User=nobody-else
EOP
chmod 666 "$CONF/profiles/40-loose.conf"
mark
runs ps-bfree && fail "a world-writable profile file decided that ps-bfree is not sandboxed"
assert_match "untrusted file" "cannot tell whom $CONF/profiles/40-loose.conf matches" "$(since)"
rm "$CONF/profiles/40-loose.conf" "$CONF/profiles/20-broken.conf"

# fixed: everything back to normal
runs ps-bfree || fail "ps-bfree after the fix"
runs ps-bb || fail "ps-bb after the fix"
ok "after the fix: both log in"
echo "all ok"
