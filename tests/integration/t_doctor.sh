#!/usr/bin/env bash
# sandboxctl doctor in a world: a clean setup (module in both common-session stacks, UsePAM yes, the
# ruleset loaded by sandboxctl apply, a real proxyd with its pid file, no DNS socket, ICMP sockets
# off) reports nothing and exits 0; each weakening, made one at a time, gives its own finding line
# (file, line where there is one) and exit 1, and undoing it makes the report clean again.
# UIDs: 59910-59919.
. "${PS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/world.sh" || exit 1
world_enter "$@"

SC=$PS_BUILD/sandboxctl
[ -x "$SC" ] || skip "sandboxctl not built"
"$SC" doctor --help >/dev/null 2>&1 || skip "sandboxctl doctor not in this build"
command -v nft >/dev/null || skip "nft missing"

# ---- the clean setup ----
getent passwd pam-sandbox >/dev/null || useradd -r -M -d / -s /usr/sbin/nologin pam-sandbox
world_add_user psdoc 59910 psdocsbx
world_add_user psdocfree 59911
world_conf
cat > "$CONF/profiles/10-doc.conf" <<'EOF'
[Match]
Group=psdocsbx
[Limits]
LimitNPROC=512
LimitNOFILE=1024:4096
[Network]
Allow=example.com:443
EOF
chmod 644 "$CONF/profiles/10-doc.conf"
"$SC" -c "$CONF" check >/dev/null || fail "test config does not check"

PAMD=/etc/pam.d
for f in common-session common-session-noninteractive; do
    [ -e "$PAMD/$f" ] || fail "$PAMD/$f missing (libpam-runtime)"
    echo "session required $PS_BUILD/pam_sandbox.so conf=$CONF" >> "$PAMD/$f"
done
# Debian's stacks for the services this host may lack (sudo, cron, systemd-user), as packaged.
[ -e $PAMD/sudo ] || printf '%s\n' '#%PAM-1.0' 'session required pam_limits.so' \
    '@include common-auth' '@include common-account' '@include common-session-noninteractive' > $PAMD/sudo
[ -e $PAMD/cron ] || printf '%s\n' '@include common-auth' 'session required pam_loginuid.so' \
    '@include common-session-noninteractive' 'session required pam_limits.so' > $PAMD/cron
[ -e $PAMD/systemd-user ] || printf '%s\n' '@include common-account' \
    'session include common-session-noninteractive' 'session optional pam_systemd.so' > $PAMD/systemd-user
# sshd: Debian's config (UsePAM yes in the main file, Include of sshd_config.d first).
mkdir -p /etc/ssh/sshd_config.d
[ -e /etc/ssh/sshd_config ] || printf '%s\n' 'Include /etc/ssh/sshd_config.d/*.conf' 'UsePAM yes' > /etc/ssh/sshd_config
rm -f /etc/ssh/sshd_config.d/*.conf
mkdir -p /etc/security/limits.d /etc/sudoers.d
echo "# world: no limits" > /etc/security/limits.conf
rm -f /etc/security/limits.d/* /etc/sudoers.d/*
echo 'Defaults env_reset' > /etc/sudoers
sysctl -qw net.ipv4.ping_group_range="1 0"

"$SC" -c "$CONF" apply >"$WORLD/apply.log" 2>&1 || { cat "$WORLD/apply.log"; fail "sandboxctl apply"; }
nft list table inet pam_sandbox >/dev/null || fail "apply loaded no table"
[ -x "$PS_BUILD/sandbox-proxyd" ] || skip "sandbox-proxyd not built"
mkdir -p /run/pam_sandbox
world_bg "$PS_BUILD/sandbox-proxyd" -c "$CONF" -f
PROXYD_PID=${WORLD_PIDS[-1]}
for _ in $(seq 100); do [ -s /run/pam_sandbox/proxyd.pid ] && break; sleep 0.05; done
[ -s /run/pam_sandbox/proxyd.pid ] || fail "proxyd wrote no /run/pam_sandbox/proxyd.pid"

# Yama's ptrace_scope is global, and the test must not change it: where the kernel has it, the
# world's mount namespace sees 1, so the host's value does not decide whether the setup is clean
# (the --root tree at the end gives the doctor each value).  Without Yama the doctor adds a note,
# which is not a finding: run_doctor keeps notes apart, in NOTES.
if [ -e /proc/sys/kernel/yama/ptrace_scope ]; then
    echo 1 > "$WORLD/ptrace_scope"
    mount --bind "$WORLD/ptrace_scope" /proc/sys/kernel/yama/ptrace_scope || fail "cannot mask ptrace_scope"
fi
OUT= RC= NOTES=
run_doctor() {
    local all
    all=$("$SC" -c "$CONF" doctor 2>"$WORLD/doctor.err"); RC=$?
    OUT=$(printf '%s\n' "$all" | grep -v '^[^ ]*: note: ')
    NOTES=$(printf '%s\n' "$all" | grep '^[^ ]*: note: ')
}
assert_clean() {
    run_doctor
    assert_eq "$1: no finding" "" "$OUT"
    assert_eq "$1: exit" 0 "$RC"
}
# assert_finding WHAT REGEX: exit 1 and a line matching REGEX.
assert_finding() {
    run_doctor
    assert_eq "$1: exit" 1 "$RC"
    assert_match "$1" "$2" "$OUT"
}
assert_clean "clean setup"
assert_match "doctor counts the sandboxed account" '0 findings \(1 sandboxed account\)' "$(cat "$WORLD/doctor.err")"

# ---- each weakening, one at a time ----
cp $PAMD/common-session "$WORLD/cs.bak"
grep -v pam_sandbox "$WORLD/cs.bak" > $PAMD/common-session
assert_finding "module missing from common-session" '^/etc/pam.d/common-session: no pam_sandbox.so in its session stack' "$OUT"
assert_match "...and from sshd, which includes it" '^/etc/pam.d/sshd: no pam_sandbox.so' "$OUT"
assert_no_match "...not from cron (noninteractive has it)" '^/etc/pam.d/cron:' "$OUT"
sed 's/^session required \(.*pam_sandbox.so\)/session optional \1/' "$WORLD/cs.bak" > $PAMD/common-session
n=$(grep -n 'optional .*pam_sandbox.so' $PAMD/common-session | cut -d: -f1)
assert_finding "module optional" "^/etc/pam.d/common-session:$n: pam_sandbox.so is \"optional\"" "$OUT"
assert_eq "...reported once, not once per including service" 1 "$(printf '%s\n' "$OUT" | grep -c 'is "optional"')"
sed 's/^session required \(.*pam_sandbox.so\)/-session required \1/' "$WORLD/cs.bak" > $PAMD/common-session
assert_finding "module with -session" "^/etc/pam.d/common-session:$n: \"-session\" hides pam_sandbox.so going missing" "$OUT"
sed 's|^session required .*pam_sandbox.so|session required /nonexistent/pam_sandbox.so|' "$WORLD/cs.bak" > $PAMD/common-session
assert_finding "module file missing" "^/etc/pam.d/common-session:$n: /nonexistent/pam_sandbox.so does not exist: every session through this stack fails" "$OUT"
sed 's|^session required .*pam_sandbox.so|session required pam_sandbox.so|' "$WORLD/cs.bak" > $PAMD/common-session
if [ ! -e "$(pkg-config --variable=libdir pam)/security/pam_sandbox.so" ]; then
    assert_finding "module name not installed in libpam's directory" "^/etc/pam.d/common-session:$n: /.*/security/pam_sandbox.so does not exist" "$OUT"
fi
cp "$WORLD/cs.bak" $PAMD/common-session
cp $PAMD/common-session-noninteractive "$WORLD/csn.bak"
grep -v pam_sandbox "$WORLD/csn.bak" > $PAMD/common-session-noninteractive
assert_finding "module missing from common-session-noninteractive" '^/etc/pam.d/cron: no pam_sandbox.so' "$OUT"
assert_match "...sudo too" '^/etc/pam.d/sudo: no pam_sandbox.so' "$OUT"
assert_match "...systemd-user too (session include)" '^/etc/pam.d/systemd-user: no pam_sandbox.so' "$OUT"
assert_no_match "...not sshd" '^/etc/pam.d/sshd:' "$OUT"
cp "$WORLD/csn.bak" $PAMD/common-session-noninteractive
assert_clean "PAM restored"
# Any other service of /etc/pam.d with its own session stack is checked too; one that includes
# common-session, or has no session entries, or is root-only (runuser), is not a finding.
printf '%s\n' 'auth required pam_unix.so' 'session required pam_unix.so' > $PAMD/psdocsvc
printf '%s\n' 'auth required pam_unix.so' '@include common-session' > $PAMD/psdocok
printf '%s\n' 'auth required pam_unix.so' 'account required pam_unix.so' > $PAMD/psdocauth
assert_finding "a local service with its own session stack" '^/etc/pam.d/psdocsvc: no pam_sandbox.so' "$OUT"
assert_no_match "...but not one that includes common-session, or opens no session" 'psdocok|psdocauth' "$OUT"
rm $PAMD/psdocsvc $PAMD/psdocok $PAMD/psdocauth
assert_clean "local services removed"

# Controls that skip the module or ignore its failure.  In common-session first, as a review found
# them: a jump over the module right before it, "done" before it, and the module's own line
# ignoring system_err.
n=$(grep -n 'pam_sandbox.so' "$WORLD/cs.bak" | cut -d: -f1)
modline=$(sed -n "${n}p" "$WORLD/cs.bak")
{ head -n $((n - 1)) "$WORLD/cs.bak"; echo 'session [success=1 default=ignore] pam_succeed_if.so user ingroup psdocsbx'
  tail -n +"$n" "$WORLD/cs.bak"; } > $PAMD/common-session
assert_finding "a jump over the module" "^/etc/pam.d/common-session:$n: \"\\[success=1 default=ignore\\]\" pam_succeed_if.so before pam_sandbox.so can skip it: success=1 jumps over the module" "$OUT"
assert_eq "...reported once" 1 "$(printf '%s\n' "$OUT" | grep -c 'can skip it')"
{ head -n $((n - 1)) "$WORLD/cs.bak"; echo 'session [success=ok default=done] pam_permit.so'
  tail -n +"$n" "$WORLD/cs.bak"; } > $PAMD/common-session
assert_finding "default=done before the module" "^/etc/pam.d/common-session:$n: \"\\[success=ok default=done\\]\" pam_permit.so before pam_sandbox.so can skip it: default=done ends the stack before the module runs" "$OUT"
{ head -n $((n - 1)) "$WORLD/cs.bak"; echo 'session [success=1 default=ignore] pam_permit.so'
  echo 'session optional pam_permit.so'; tail -n +"$n" "$WORLD/cs.bak"; } > $PAMD/common-session
assert_clean "a jump that lands before the module"
sed "${n}s/^session required/session [success=ok system_err=ignore default=bad]/" "$WORLD/cs.bak" > $PAMD/common-session
assert_finding "the module ignores system_err" "^/etc/pam.d/common-session:$n: pam_sandbox.so is \"\\[success=ok system_err=ignore default=bad\\]\": a failure to confine does not refuse the session \\(system_err=ignore when it cannot confine" "$OUT"
sed "${n}s/^session required/session [success=ok system_err=bad default=ignore]/" "$WORLD/cs.bak" > $PAMD/common-session
assert_finding "the module ignores module_unknown" "^/etc/pam.d/common-session:$n: pam_sandbox.so is \"\\[success=ok system_err=bad default=ignore\\]\": .*default=ignore when libpam cannot load it" "$OUT"
cp "$WORLD/cs.bak" $PAMD/common-session
assert_clean "common-session restored"

# Then in a service of its own, where each stack also goes through the real libpam with a module
# that fails: a config that does not load and whose profile names psdoc's group (PAM_SYSTEM_ERR).
# The doctor must report a line exactly when the session opens anyway.  Findings name the service
# file or a file it includes (psdocrun-*); those files' own "no pam_sandbox.so" lines have no line
# number and do not count.
PAM_RUN=$PS_BUILD/tests/sandbox_pam_run
[ -x "$PAM_RUN" ] || fail "$PAM_RUN not built"
SAN_ENV=(env)
[ "${PS_SAN:-0}" = 1 ] && SAN_ENV=(env "LD_PRELOAD=$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" ASAN_OPTIONS=detect_leaks=0)
BROKEN=$WORLD/brokenconf
cp -a "$CONF" "$BROKEN"
echo 'Bogus=1' >> "$BROKEN/profiles/10-doc.conf"
MOD="$PS_BUILD/pam_sandbox.so conf=$BROKEN"
printf '%s\n' 'session sufficient pam_permit.so' > $PAMD/psdocrun-sub
printf '%s\n' 'session required pam_permit.so' 'session required pam_permit.so' > $PAMD/psdocrun-two
# stack_case WHAT flagged|clean LINE...: the doctor's verdict on the stack, and libpam's.
stack_case() {
    local what=$1 want=$2; shift 2
    printf '%s\n' "$@" > $PAMD/psdocrun
    run_doctor
    local found=clean
    printf '%s\n' "$OUT" | grep -Eq '^/etc/pam.d/psdocrun(-sub|-two)?:[0-9]+: ' && found=flagged
    assert_eq "$what: doctor" "$want" "$found"
    local opened=refused
    "${SAN_ENV[@]}" "$PAM_RUN" psdocrun psdoc /bin/true 2>&1 | grep -q '^pam_open_session: Success' && opened=opened
    assert_eq "$what: libpam (flagged = the session opens unconfined)" \
        "$([ "$want" = flagged ] && echo opened || echo refused)" "$opened"
}
J='session [success=1 default=ignore] pam_succeed_if.so user ingroup psdocsbx'
stack_case "required" clean "session required $MOD" 'session required pam_permit.so'
stack_case "a jump over it" flagged "$J" "session required $MOD" 'session required pam_permit.so'
assert_match "...named" '^/etc/pam.d/psdocrun:1: "\[success=1 default=ignore\]" pam_succeed_if.so before pam_sandbox.so can skip it: success=1 jumps over the module \(/etc/pam.d/psdocrun\)' "$OUT"
stack_case "success=done before it" flagged 'session [success=done default=ignore] pam_succeed_if.so user ingroup psdocsbx' \
    "session required $MOD" 'session required pam_permit.so'
stack_case "sufficient before it" flagged 'session sufficient pam_permit.so' "session required $MOD"
stack_case "requisite and required before it" clean 'session requisite pam_permit.so' 'session required pam_permit.so' \
    "session required $MOD"
stack_case "system_err=ignore" flagged "session [success=ok system_err=ignore default=bad] $MOD" 'session required pam_permit.so'
stack_case "system_err=1" flagged "session [success=ok system_err=1 default=bad] $MOD" 'session required pam_permit.so' \
    'session required pam_permit.so'
stack_case "system_err=reset" flagged "session [success=ok system_err=reset default=bad] $MOD" 'session required pam_permit.so'
# ok and done make the failure the stack's result: refused
stack_case "system_err=ok" clean "session [success=ok system_err=ok default=bad] $MOD" 'session required pam_permit.so'
stack_case "default=done" clean "session [success=ok default=done] $MOD" 'session required pam_permit.so'
stack_case "a reset after it" flagged "session required $MOD" 'session [success=reset default=ignore] pam_permit.so' \
    'session required pam_permit.so'
assert_match "...named" '^/etc/pam.d/psdocrun:2: "\[success=reset default=ignore\]" pam_permit.so after pam_sandbox.so can undo its failure: success=reset' "$OUT"
stack_case "a reset before it" clean 'session [success=reset default=ignore] pam_permit.so' "session required $MOD" \
    'session required pam_permit.so'
# includes: their lines count one by one for a jump; a substack counts as one, and its "done"
# (sufficient) ends only the substack
stack_case "a jump onto it past an include" clean 'session [success=2 default=ignore] pam_permit.so' \
    'session include psdocrun-two' "session required $MOD"
stack_case "a jump over it past an include" flagged 'session [success=3 default=ignore] pam_permit.so' \
    'session include psdocrun-two' "session required $MOD" 'session required pam_permit.so'
stack_case "a jump over a substack" clean 'session [success=1 default=ignore] pam_permit.so' \
    'session substack psdocrun-two' "session required $MOD"
stack_case "sufficient in a substack" clean 'session substack psdocrun-sub' "session required $MOD"
stack_case "sufficient in an include" flagged 'session include psdocrun-sub' "session required $MOD" \
    'session required pam_permit.so'
assert_match "...named in the included file" '^/etc/pam.d/psdocrun-sub:1: "sufficient" pam_permit.so before pam_sandbox.so can skip it: success=done' "$OUT"
# a jump past the end of the stack is an error: libpam refuses the session
stack_case "a jump past the end" clean 'session required pam_permit.so' 'session [success=3 default=ignore] pam_permit.so' \
    "session required $MOD"
# libpam's tokenizer: a bracketed control ends at its "]" even with no blank after it, and then
# loses its brackets ("[sufficient]" is the keyword); "\]" does not end it.
stack_case "no blank after ]" clean "session [success=ok default=bad]$MOD" 'session required pam_permit.so'
stack_case "a jump with no blank after ]" flagged \
    'session [success=1 default=ignore]pam_succeed_if.so user ingroup psdocsbx' "session required $MOD" \
    'session required pam_permit.so'
stack_case "a keyword in brackets" flagged 'session [sufficient] pam_permit.so' "session required $MOD"
stack_case "an escaped ] inside the brackets" clean \
    'session [success=1 default=ignore\] x] pam_permit.so' "session required $MOD" 'session required pam_permit.so'
# A line of an unknown type in a file included for the session type is an always-failing session
# handler, and counts for a jump; in a service's own file it goes to the auth stack.
printf '%s\n' 'sesion optional pam_permit.so' > $PAMD/psdocrun-inv
stack_case "a jump of 1 lands on an unknown type's line in an include" clean \
    'session [success=1 default=ignore] pam_permit.so' 'session include psdocrun-inv' \
    "session required $MOD" 'session required pam_permit.so'
stack_case "an unknown type's line in the service's own file is not in the session stack" flagged \
    'session [success=1 default=ignore] pam_permit.so' 'sesion optional pam_permit.so' \
    "session required $MOD" 'session required pam_permit.so'
# A line without a module is an always-failing handler with the line's actions.
stack_case "a line without a module, jumping over it" flagged 'session [default=1]' "session required $MOD" \
    'session required pam_permit.so'
rm $PAMD/psdocrun $PAMD/psdocrun-sub $PAMD/psdocrun-two $PAMD/psdocrun-inv
assert_clean "stacks removed"

# pam_limits after the module (cron, sshd) with an entry that raises a sandboxed limit.
printf '%s\n' '# ours' '@psdocsbx soft nproc 100000' '@psdocsbx hard nproc 10' \
    '@nosuchgroup hard nproc unlimited' 'psdocfree hard nofile 65536' > /etc/security/limits.d/50-ok.conf
assert_clean "limits that lower, are soft, or hit nobody sandboxed"
printf '%s\n' '# raise it' '@psdocsbx hard nproc unlimited' > /etc/security/limits.d/60-raise.conf
assert_finding "limits.d raises NPROC" '^/etc/security/limits.d/60-raise.conf:2: "@psdocsbx hard nproc unlimited" raises LimitNPROC of sandboxed account psdoc .*pam_limits runs after pam_sandbox.so in /etc/pam.d/(sshd|cron)' "$OUT"
rm /etc/security/limits.d/60-raise.conf
printf '%s\n' '*  -  nofile  8192' >> /etc/security/limits.conf
assert_finding "limits.conf wildcard raises NOFILE" '^/etc/security/limits.conf:2: "\* - nofile 8192" raises LimitNOFILE of sandboxed account psdoc' "$OUT"
echo "# world: no limits" > /etc/security/limits.conf
printf '%s\n' '59900:59919 hard nproc 100000' > /etc/security/limits.d/70-range.conf
assert_finding "uid range raises NPROC" '^/etc/security/limits.d/70-range.conf:1: ' "$OUT"
rm /etc/security/limits.d/70-range.conf
assert_clean "limits restored"

# sshd: UsePAM no in an included file wins over the main file's yes; unset means no.
echo 'UsePAM no' > /etc/ssh/sshd_config.d/10-nopam.conf
assert_finding "UsePAM no (included)" '^/etc/ssh/sshd_config.d/10-nopam.conf:1: "UsePAM no"' "$OUT"
rm /etc/ssh/sshd_config.d/10-nopam.conf
cp /etc/ssh/sshd_config "$WORLD/sshd.bak"
grep -iv '^[[:space:]]*usepam' "$WORLD/sshd.bak" > /etc/ssh/sshd_config
assert_finding "UsePAM unset" '^/etc/ssh/sshd_config: UsePAM is not set' "$OUT"
cp "$WORLD/sshd.bak" /etc/ssh/sshd_config
assert_clean "sshd restored"

# sudo: Defaults !pam_session in sudoers and in sudoers.d (qualified too); a positive flag and a
# file that sudo ignores (a '.' in its name) are not findings.
echo 'Defaults pam_session' > /etc/sudoers.d/ok
echo 'Defaults !pam_session' > /etc/sudoers.d/ignored.conf
assert_clean "pam_session set, ignored file"
printf '%s\n' 'Defaults env_reset' 'Defaults:psdoc  env_keep+=FOO, !pam_session' > /etc/sudoers
assert_finding "sudoers !pam_session" '^/etc/sudoers:2: "Defaults !pam_session"' "$OUT"
echo 'Defaults env_reset' > /etc/sudoers
echo 'Defaults	!pam_session' > /etc/sudoers.d/nosession
assert_finding "sudoers.d !pam_session" '^/etc/sudoers.d/nosession:1: "Defaults !pam_session"' "$OUT"
rm -f /etc/sudoers.d/*
assert_clean "sudo restored"

# The ruleset.
nft delete table inet pam_sandbox
assert_finding "ruleset not loaded" '^table inet pam_sandbox: the ruleset is not loaded' "$OUT"
"$SC" -c "$CONF" apply >/dev/null 2>&1 || fail "re-apply"
assert_clean "ruleset reloaded"
cp "$CONF/sandbox.conf" "$WORLD/sc.bak"
sed -i 's/^DNSListen=.*/DNSListen=127.0.0.1:3154/' "$CONF/sandbox.conf"
assert_finding "ruleset stale" '^table inet pam_sandbox: the loaded ruleset \(version 0x[0-9a-f]+\) is not the one the configuration renders' "$OUT"
cp "$WORLD/sc.bak" "$CONF/sandbox.conf"
assert_clean "config back as applied"

# proxyd: stopped (stale pid file), then no pid file.
kill "$PROXYD_PID"; wait "$PROXYD_PID" 2>/dev/null
echo "$PROXYD_PID" > /run/pam_sandbox/proxyd.pid
assert_finding "proxyd stopped, stale pid file" '^/run/pam_sandbox/proxyd.pid: sandbox-proxyd is not running' "$OUT"
rm -f /run/pam_sandbox/proxyd.pid
assert_finding "proxyd stopped, no pid file" '^/run/pam_sandbox/proxyd.pid: sandbox-proxyd is not running \(no pid file\)' "$OUT"
# ... and while it is down, an account binds its ports: the doctor names each socket that holds
# one of proxyd's endpoints without proxyd's mark (the ruleset refuses everything sent to it).
world_bg setpriv --reuid 59911 --regid 59911 --clear-groups -- "$PS_BUILD/tests/nft_origdst_listener" \
    nomark tcp 127.0.0.1 3129 tcp ::1 3140 udp 127.0.0.1 3160 tcp 127.0.0.1 3128 > "$WORLD/squat.log"
SQUAT_PID=${WORLD_PIDS[-1]}
for _ in $(seq 100); do grep -q ready "$WORLD/squat.log" 2>/dev/null && break; sleep 0.05; done
grep -q ready "$WORLD/squat.log" || fail "squatter did not start: $(cat "$WORLD/squat.log")"
assert_finding "a squatter on the transparent port" \
    "^$CONF/sandbox.conf:[0-9]+: 127\\.0\\.0\\.1:3129/tcp \\(TransparentListen=\\) is held by a socket without proxyd's mark \\(uid 59911, " "$OUT"
assert_match "  ... IPv6, within the port range" "^$CONF/sandbox.conf:[0-9]+: \\[::1\\]:3140/tcp \\(TransparentListen=\\) is held" "$OUT"
assert_match "  ... the DNS port range, UDP" "127\\.0\\.0\\.1:3160/udp \\(DNSListen=\\) is held by a socket without proxyd's mark" "$OUT"
assert_match "  ... the explicit port" "127\\.0\\.0\\.1:3128/tcp \\(ExplicitListen=\\) is held" "$OUT"
kill "$SQUAT_PID"; wait "$SQUAT_PID" 2>/dev/null
world_bg "$PS_BUILD/sandbox-proxyd" -c "$CONF" -f
for _ in $(seq 100); do [ -s /run/pam_sandbox/proxyd.pid ] && break; sleep 0.05; done
assert_clean "proxyd restarted (its own, marked listeners are no finding)"

# An http:// inference backend on loopback whose port another account holds: proxyd would refuse
# every request to it (backend_owner_mismatch), so the doctor names the holder and BackendUser=.
mkdir -p "$CONF/inference.d"
printf '[Backend]\nURL=http://127.0.0.1:8093/v1\nAPI=openai\nModels=docm\n' > "$CONF/inference.d/local.conf"
chmod 644 "$CONF/inference.d/local.conf"
assert_clean "an http:// backend on loopback that nothing holds"
world_bg setpriv --reuid 59911 --regid 59911 --clear-groups -- "$PS_BUILD/tests/nft_origdst_listener" \
    nomark tcp 127.0.0.1 8093 > "$WORLD/bsquat.log"
SQUAT_PID=${WORLD_PIDS[-1]}
for _ in $(seq 100); do grep -q ready "$WORLD/bsquat.log" 2>/dev/null && break; sleep 0.05; done
grep -q ready "$WORLD/bsquat.log" || fail "backend port holder did not start: $(cat "$WORLD/bsquat.log")"
assert_finding "a backend port held by another account" \
    "^$CONF/inference.d/local.conf:2: http://127\\.0\\.0\\.1:8093/v1 is held by uid 59911 \\(psdocfree\\), which is not root, sandbox-proxyd's user or BackendUser=: .*set BackendUser=psdocfree" "$OUT"
echo "BackendUser=psdocfree" >> "$CONF/inference.d/local.conf"
assert_clean "the same, named by BackendUser="
kill "$SQUAT_PID"; wait "$SQUAT_PID" 2>/dev/null
# A dual-stack [::] listener takes the IPv4 backend's connections when no IPv4 listener does.
sed -i '/^BackendUser=/d' "$CONF/inference.d/local.conf"
mkdir -m 1777 "$WORLD/bs6"
world_bg setpriv --reuid 59911 --regid 59911 --clear-groups -- /usr/bin/python3 "$PS_SRC/tests/lib/tcp_sink.py" \
    "[::]:8093" "$WORLD/bs6/got" > "$WORLD/bs6/log" 2>&1
SQUAT_PID=${WORLD_PIDS[-1]}
for _ in $(seq 100); do grep -q listening "$WORLD/bs6/log" 2>/dev/null && break; sleep 0.05; done
grep -q listening "$WORLD/bs6/log" || fail "dual-stack holder did not start: $(cat "$WORLD/bs6/log")"
assert_finding "a dual-stack [::] listener on an IPv4 backend's port" \
    "^$CONF/inference.d/local.conf:2: http://127\\.0\\.0\\.1:8093/v1 is held by uid 59911 " "$OUT"
kill "$SQUAT_PID"; wait "$SQUAT_PID" 2>/dev/null
rm "$CONF/inference.d/local.conf"

# DNS through Unix sockets that nftables cannot see (created in the world's private /run).
mksock() { python3 -c 'import socket,sys,os; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666)' "$1"; }
mkdir -p /run/nscd /run/systemd/resolve
mksock /run/nscd/socket
assert_finding "nscd socket" "^/run/nscd/socket: nscd's socket is reachable" "$OUT"
chmod 600 /run/nscd/socket
assert_clean "nscd socket not reachable by others"
rm /run/nscd/socket
mksock /run/systemd/resolve/io.systemd.Resolve
assert_finding "resolved socket" "^/run/systemd/resolve/io.systemd.Resolve: systemd-resolved's varlink socket is reachable" "$OUT"
# closing the varlink socket leaves resolved's D-Bus API, open to every account by its bus policy
chmod 600 /run/systemd/resolve/io.systemd.Resolve
assert_clean "resolved without a system bus"
mkdir -p /run/dbus; mksock /run/dbus/system_bus_socket
assert_finding "resolved over D-Bus" "^/run/systemd/resolve/io.systemd.Resolve: systemd-resolved is running, and any account can ask it for names over D-Bus" "$OUT"
rm /run/systemd/resolve/io.systemd.Resolve /run/dbus/system_bus_socket
mkdir -p /run/avahi-daemon; mksock /run/avahi-daemon/socket
assert_finding "avahi socket" "^/run/avahi-daemon/socket: avahi's socket \(mDNS names and services\) is reachable" "$OUT"
rm /run/avahi-daemon/socket
assert_clean "sockets removed"

# ping_group_range (this network namespace's own): Debian's systemd default covers every group.
sysctl -qw net.ipv4.ping_group_range="0 2147483647"
assert_finding "ping_group_range" '^/proc/sys/net/ipv4/ping_group_range: "0 2147483647" lets sandboxed account psdoc' "$OUT"
g=$(id -g psdocfree)
sysctl -qw net.ipv4.ping_group_range="$g $g"
assert_clean "ping only for a group without sandboxed members"
sysctl -qw net.ipv4.ping_group_range="1 0"

# Yama (read below --root, since the real value may not be changed): a tree that is clean
# otherwise (the stacks with the module, proxyd's pid file, the world's live ruleset).
Y=$WORLD/ytree
moddir=$(pkg-config --variable=libdir pam)/security
mkdir -p "$Y/etc/pam.d" "$Y$moddir" "$Y/run/pam_sandbox" "$Y/proc/sys/kernel/yama"
for f in common-session common-session-noninteractive; do
    echo 'session required pam_sandbox.so' > "$Y/etc/pam.d/$f"
done
: > "$Y$moddir/pam_sandbox.so"
cp /run/pam_sandbox/proxyd.pid "$Y/run/pam_sandbox/proxyd.pid"
ydoctor() { OUT=$("$SC" -c "$CONF" doctor --root "$Y" 2>/dev/null); RC=$?; }
for v in 1 2 3; do
    echo "$v" > "$Y/proc/sys/kernel/yama/ptrace_scope"
    ydoctor
    assert_eq "ptrace_scope $v: clean" "0:" "$RC:$OUT"
done
echo 0 > "$Y/proc/sys/kernel/yama/ptrace_scope"
ydoctor
assert_eq "ptrace_scope 0: exit" 1 "$RC"
assert_match "ptrace_scope 0: finding" '^/proc/sys/kernel/yama/ptrace_scope: "0" lets a sandboxed process write the memory of any dumpable, unconfined process of its own account through /proc/PID/mem .*fix: echo .kernel.yama.ptrace_scope = 1.' "$OUT"
assert_eq "...the only one" 1 "$(printf '%s\n' "$OUT" | grep -c "^/")"
rm "$Y/proc/sys/kernel/yama/ptrace_scope"
ydoctor
assert_eq "no Yama: a note, not a finding (exit)" 0 "$RC"
assert_match "no Yama: the note" '^/proc/sys/kernel/yama/ptrace_scope: note: Yama is not active in this kernel, so nothing keeps a sandboxed process from writing the memory' "$OUT"
assert_eq "...the only line" 1 "$(printf '%s\n' "$OUT" | grep -c "^/")"
# Container and VM daemons' sockets that a sandboxed account can use: a way out of every rule.
mksock /run/docker.sock
chgrp psdocsbx /run/docker.sock; chmod 660 /run/docker.sock
assert_finding "docker's socket, writable by a sandboxed account's group" \
    "^/run/docker.sock: the Docker daemon's socket is reachable by sandboxed account psdoc \\(a member of group psdocsbx\\): it starts containers or machines as root" "$OUT"
chmod 666 /run/docker.sock
assert_finding "docker's socket, writable by every account" \
    "^/run/docker.sock: the Docker daemon's socket is reachable by every account \\(mode 0666\\)" "$OUT"
chmod 600 /run/docker.sock
assert_clean "docker's socket for root only"
rm /run/docker.sock

# Processes of a sandboxed account without the module's seccomp filter (started outside a
# session the module opened); one under the filter is no finding.
world_bg setpriv --reuid 59910 --regid 59910 --clear-groups -- sleep 60
UNC=${WORLD_PIDS[-1]}
for _ in $(seq 50); do [ "$(stat -c %u "/proc/$UNC" 2>/dev/null)" = 59910 ] && break; sleep 0.05; done
assert_finding "an unconfined process of a sandboxed account" \
    "^/proc/$UNC: process $UNC \\(sleep\\) of sandboxed account psdoc runs without the module's seccomp filter" "$OUT"
kill "$UNC"; wait "$UNC" 2>/dev/null
printf 'session required %s conf=%s\n' "$PS_BUILD/pam_sandbox.so" "$CONF" > $PAMD/psdocok
"${SAN_ENV[@]}" "$PAM_RUN" psdocok psdoc /bin/sleep 30 > "$WORLD/confined.out" 2>&1 &
CONFINED=$!
confined=
for _ in $(seq 100); do
    for p in $(pgrep -u 59910 -x sleep); do
        grep -q '^Seccomp:[[:space:]]*2' "/proc/$p/status" 2>/dev/null && confined=$p
    done
    [ -n "$confined" ] && break
    sleep 0.05
done
[ -n "$confined" ] || fail "no confined process of psdoc: $(cat "$WORLD/confined.out")"
assert_clean "a process of the account under the module's filter"
kill "$confined" 2>/dev/null; wait "$CONFINED" 2>/dev/null
rm $PAMD/psdocok

# A broken config is a finding too (and --root reads the files of another tree).
echo 'Bogus=1' >> "$CONF/profiles/10-doc.conf"
assert_finding "config error" "^$CONF: the configuration does not load" "$OUT"
mkdir -p "$WORLD/tree/etc/pam.d"
printf '%s\n' 'session required pam_unix.so' > "$WORLD/tree/etc/pam.d/login"
OUT=$("$SC" doctor --root "$WORLD/tree" 2>/dev/null); RC=$?
assert_eq "--root: exit" 1 "$RC"
assert_match "--root: the tree's login stack" '^/etc/pam.d/login: no pam_sandbox.so' "$OUT"
assert_match "--root: config from the tree" '^'"$WORLD"'/tree/etc/pam_sandbox: the configuration does not load' "$OUT"
assert_no_match "--root: not the world's stacks" '^/etc/pam.d/sshd:' "$OUT"
echo "t_doctor: all assertions passed"
