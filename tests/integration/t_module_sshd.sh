#!/usr/bin/env bash
# pam_sandbox.so under a real sshd (Debian's /etc/pam.d/sshd with the module in common-session, as
# pam-auth-update puts it): a shell with a tty, `ssh host cmd`, sftp through internal-sftp, for a
# Network=proxy and a Network=block account; sshd logs no audit failure; an unmatched account is
# untouched; a profile that fails `sandboxctl check` refuses its account with the reason in syslog
# while another account still logs in.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/module_world.sh"

mod_setup
world_add_user ps-sa 59140            # defaults (Network=proxy, AllowNetlink=audit)
world_add_user ps-sb 59141            # Network=block, AllowNetlink= empty
world_add_user ps-sfree 59142         # matched by nothing
world_add_user ps-sc 59143            # LimitNPROC=40, for the fork bomb
mod_profile 10-block <<'EOP'
[Match]
User=ps-sb
[Seccomp]
Network=block
AllowNetlink=
EOP
mod_profile 20-dev <<'EOP'
[Match]
User=ps-sa
EOP
mod_profile 30-bomb <<'EOP'
[Match]
User=ps-sc
[Limits]
LimitNPROC=40
EOP
mod_apply
if [ "${PS_SAN:-0}" = 1 ]; then LD_PRELOAD="${SAN_ENV[1]#LD_PRELOAD=}" ASAN_OPTIONS=detect_leaks=0 world_start_sshd 2240; else world_start_sshd 2240; fi
for u in ps-sa ps-sb ps-sfree ps-sc; do world_authorize $u; done
install -o root -m 4755 /usr/bin/id /tmp/ps-scratch/suid-id

# --- ssh host cmd ---
out=$(world_ssh ps-sa 'ulimit -Hu; ulimit -Hc; ulimit -u 1024 2>/dev/null && echo raised || echo refused') ||
    fail "ssh ps-sa cmd: $(tail -5 "$WORLD/sshd.log")"
assert_eq "ssh cmd: hard NPROC, hard CORE, ulimit -u 1024" "512 0 refused" "$(echo $out)"
world_ssh ps-sa "$PROBE" > "$WORLD/probe-cmd" || fail "probe over ssh"
check_confined_probe "$WORLD/probe-cmd" proxy "audit"
world_ssh ps-sb "$PROBE" > "$WORLD/probe-block" || fail "probe over ssh (block)"
check_confined_probe "$WORLD/probe-block" block ""

assert_eq "setuid binary gains nothing" "59140" "$(world_ssh ps-sa /tmp/ps-scratch/suid-id -u)"
read -r _ n why < <(world_ssh ps-sc "$PROBE forkbomb 1000 0" | grep ^forkbomb)
assert_eq "fork bomb over ssh stops with" "EAGAIN" "$why"
[ "$n" -lt 40 ] || fail "fork bomb made $n processes, limit 40"
ok "fork bomb over ssh stopped after $n children (LimitNPROC=40)"
assert_eq "another account unaffected" "forkbomb 100 none" "$(world_ssh ps-sa "$PROBE forkbomb 100 0" | grep ^forkbomb)"

# --- an interactive login shell with a tty (pty session: sshd's own audit code runs for it) ---
tty_shell() { { sleep 0.5; printf '%s\nexit\n' "$2"; } | PS_SSH_TTY=1 world_ssh "$1" | tr -d '\r'; }
out=$(tty_shell ps-sa "echo TTY=\$(tty); $PROBE") || fail "interactive ssh session"
assert_match "login shell has a tty" "TTY=/dev/pts/" "$out"
echo "$out" > "$WORLD/probe-tty"
assert_probe "$WORLD/probe-tty" tiocsti.tty EPERM
assert_probe "$WORLD/probe-tty" status.NoNewPrivs 1
assert_probe "$WORLD/probe-tty" status.CapBnd 0000000000000000
assert_probe "$WORLD/probe-tty" rlimit.NPROC 512:512
out=$(tty_shell ps-sb 'echo TTY=$(tty) HU=$(ulimit -Hu)') || fail "interactive ssh session (AllowNetlink= empty)"
assert_match "AllowNetlink= empty: pty login works" "TTY=/dev/pts/[0-9]+ HU=512" "$out"

# --- sftp via internal-sftp (runs inside the confined session) ---
echo "payload-$$" > "$WORLD/up.txt"; chmod 644 "$WORLD/up.txt"
printf 'put %s up.txt\nls -l up.txt\n' "$WORLD/up.txt" > "$WORLD/sftp.batch"
sftp -i "$WORLD/id_ed25519" -P "$SSH_PORT" -b "$WORLD/sftp.batch" -o BatchMode=yes \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR ps-sa@127.0.0.1 >/dev/null ||
    fail "sftp: $(tail -5 "$WORLD/sshd.log")"
assert_eq "sftp upload" "payload-$$" "$(cat /home/ps-sa/up.txt)"

# --- sshd: sessions confined, closed, and no audit failure ---
n=$(grep -c "session of ps-sa confined by profile 20-dev" "$SYSLOG")
[ "$n" -ge 4 ] || fail "expected a confined session per login of ps-sa, syslog has $n"
ok "every ps-sa login was confined ($n)"
sleep 0.5
assert_no_match "no audit failure in sshd's log" "[Aa]udit.*(fail|error)|linux_audit" "$(cat "$WORLD/sshd.log")"
assert_no_match "no PAM session error in sshd's log" "pam_open_session|pam_close_session|PAM: " "$(grep -v 'Accepted' "$WORLD/sshd.log")"

# --- egress of the session is steered (the nftables step): with no proxyd listening, a TCP
# connection to a loopback service is redirected to the transparent port and refused; the
# unmatched account reaches the same service ---
if ! strings "$MOD_SO" | grep -q 'built with nft_pending.c'; then
    assert_eq "sandboxed: TCP to sshd's port" "refused" \
        "$(world_ssh ps-sa "timeout 5 bash -c 'echo > /dev/tcp/127.0.0.1/$SSH_PORT' 2>/dev/null && echo connected || echo refused")"
    assert_eq "unmatched: TCP to sshd's port" "connected" \
        "$(world_ssh ps-sfree "timeout 5 bash -c 'echo > /dev/tcp/127.0.0.1/$SSH_PORT' 2>/dev/null && echo connected || echo refused")"
fi

# --- unmatched account ---
world_ssh ps-sfree "$PROBE" > "$WORLD/probe-free" || fail "unmatched account cannot log in"
check_unconfined_probe "$WORLD/probe-free"

# --- a profile that fails `sandboxctl check` ---
mod_profile 20-dev <<'EOP'
[Match]
User=ps-sa
[Seccomp]
Network=sometimes
EOP
if [ -x "$PS_BUILD/sandboxctl" ]; then
    "$PS_BUILD/sandboxctl" -c "$CONF" check >/dev/null 2>&1 && fail "sandboxctl check accepts the broken profile"
    ok "sandboxctl check rejects the broken profile"
fi
: > "$SYSLOG.mark"; before=$(wc -l < "$SYSLOG")
out=$(world_ssh ps-sa 'echo logged-in' 2>&1) && fail "ps-sa logged in with a broken profile: $out"
assert_no_match "no shell for ps-sa" "logged-in" "$out"
sleep 0.3
log=$(tail -n +$((before + 1)) "$SYSLOG")
assert_match "reason in syslog" "refusing session of ps-sa: configuration in $CONF is invalid: $CONF/profiles/20-dev.conf:4: .*Network" "$log"
assert_eq "another account still logs in" "still-here" "$(world_ssh ps-sfree 'echo still-here')"
if [ -n "${PS_SHOW_LOGS:-}" ]; then cat "$SYSLOG" "$WORLD/sshd.log"; fi
echo "all ok"
