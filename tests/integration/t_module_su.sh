#!/usr/bin/env bash
# pam_sandbox.so under `su -` (Debian's /etc/pam.d/su, module in common-session): limits, NNP,
# bounding set, the probe, TIOCSTI into the root-owned terminal of su (the attack that
# dev.tty.legacy_tiocsti=1 allows: the unconfined control succeeds), and a fork bomb that stops at
# the limit with EAGAIN, can be killed, and leaves another account unaffected.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/module_world.sh"
command -v script >/dev/null || skip "script(1) missing"

mod_setup
world_add_user ps-ua 59120 ps-sugrp      # defaults
world_add_user ps-uother 59121 ps-sugrp  # same profile, the bystander of the fork bomb
world_add_user ps-ub 59122               # the fork bomber: LimitNPROC=48
world_add_user ps-ufree 59123            # matched by nothing
mod_profile 10-bomb <<'EOP'
[Match]
User=ps-ub
[Limits]
LimitNPROC=48
EOP
mod_profile 20-group <<'EOP'
[Match]
Group=ps-sugrp
EOP
mod_apply

out=$("${SAN_ENV[@]}" su - ps-ua -c 'ulimit -Hu; ulimit -Hc; ulimit -u 1024 2>/dev/null && echo raised || echo refused') || fail "su - ps-ua"
assert_eq "su: hard NPROC, hard CORE, ulimit -u 1024" "512 0 refused" "$(echo $out)"

install -o root -m 4755 /usr/bin/id /tmp/ps-scratch/suid-id
assert_eq "su: setuid binary gains nothing" "59120" "$("${SAN_ENV[@]}" su - ps-ua -c '/tmp/ps-scratch/suid-id -u')"

# An interactive `su -` (no -c, which would setsid): root's terminal is the user's controlling
# tty, and TIOCSTI on it would type into root's shell after the user exits.
su_tty() { { sleep 0.3; printf '%s\nexit\n' "$2"; } | "${SAN_ENV[@]}" script -qec "su - $1" /dev/null | tr -d '\r'; }
su_tty ps-ua "$PROBE" > "$WORLD/probe-su"
check_confined_probe "$WORLD/probe-su" proxy "audit"
assert_probe "$WORLD/probe-su" tiocsti.tty EPERM
su_tty ps-ufree "$PROBE" > "$WORLD/probe-free"
check_unconfined_probe "$WORLD/probe-free"
assert_probe "$WORLD/probe-free" tiocsti.tty ok      # the control: the injection works unconfined

# --- fork bomb ---
uid_procs() { pgrep -U "$1" | wc -l; }
"${SAN_ENV[@]}" su - ps-ub -c "$PROBE forkbomb 1000 20" > "$WORLD/bomb.out" 2>&1 &
bomb_su=$!; WORLD_PIDS+=($bomb_su)
for _ in $(seq 100); do grep -q '^forkbomb' "$WORLD/bomb.out" && break; sleep 0.1; done
read -r _ n why < <(grep '^forkbomb' "$WORLD/bomb.out") || fail "fork bomb printed nothing: $(cat "$WORLD/bomb.out")"
assert_eq "fork bomb stops with" "EAGAIN" "$why"
[ "$n" -lt 48 ] && [ "$n" -gt 30 ] || fail "fork bomb made $n processes, limit 48"
ok "fork bomb stopped after $n children (LimitNPROC=48)"
assert_eq "bomber's processes at the limit" 48 "$(uid_procs 59122)"
# another account (same sandbox, its own UID) is unaffected meanwhile
assert_eq "bystander forks freely" "forkbomb 100 none" "$("${SAN_ENV[@]}" su - ps-uother -c "$PROBE forkbomb 100 0" | grep ^forkbomb)"
# a real shell fork bomb on top, then kill the whole session
"${SAN_ENV[@]}" su - ps-ub -c ':(){ :|:& };:; sleep 30' >/dev/null 2>&1 &
WORLD_PIDS+=($!)
sleep 2
for _ in $(seq 50); do
    pids=$(pgrep -U 59122) || break
    kill -KILL $pids 2>/dev/null
    sleep 0.1
done
assert_eq "session killed: processes left for ps-ub" 0 "$(uid_procs 59122)"
wait "$bomb_su" 2>/dev/null
assert_eq "bystander still works" "alive" "$("${SAN_ENV[@]}" su - ps-uother -c 'echo alive')"
echo "all ok"
