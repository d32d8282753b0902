#!/usr/bin/env bash
# `make install DESTDIR=...` produces the documented tree (README "Installed files"), with root
# ownership and the documented modes; a second install keeps an admin's edited config; the example
# profiles are installed inert (they sandbox nobody until renamed to NAME.conf).
# UIDs: 59900-59909.
. "${PS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/world.sh" || exit 1
world_enter "$@"

command -v make >/dev/null || skip "make missing"
D=$WORLD/destdir
MODDIR=$(pkg-config --variable=libdir pam 2>/dev/null)/security
[ "$MODDIR" != /security ] || skip "pkg-config pam missing (libpam0g-dev)"

# Under check-asan PS_BUILD is the sanitizer build: keep its flags (SAN=1) so make never rebuilds it
# without them.
SANARG=(); [ "${PS_SAN:-0}" = 1 ] && SANARG=(SAN=1)
inst() { make -s -C "$PS_SRC" "${SANARG[@]}" B="$PS_BUILD" DESTDIR="$D" install "$@" >"$WORLD/install.log" 2>&1 \
         || { cat "$WORLD/install.log"; fail "make install $*"; }; }
inst

# assert_node PATH MODE (type+perm as stat %A) : exists, root:root, that mode.
assert_node() {
    [ -e "$D$1" ] || fail "missing $1"
    assert_eq "$1" "$2 root:root" "$(stat -c '%A %U:%G' "$D$1")"
}

assert_node "$MODDIR/pam_sandbox.so"             -rw-r--r--
assert_node /usr/sbin/sandboxctl                 -rwxr-xr-x
assert_node /usr/sbin/sandbox-proxyd             -rwxr-xr-x
assert_node /usr/share/pam-configs/pam_sandbox   -rw-r--r--
assert_node /etc/pam_sandbox                     drwxr-xr-x
assert_node /etc/pam_sandbox/profiles            drwxr-xr-x
assert_node /etc/pam_sandbox/inference.d         drwxr-xr-x
assert_node /usr/share/pam_sandbox/examples      drwxr-xr-x
# Every man page of the tree, in its section; every unit.
n=0
for p in "$PS_SRC"/man/*.[0-9]; do
    [ -e "$p" ] || continue
    b=${p##*/}; assert_node "/usr/share/man/man${b##*.}/$b" -rw-r--r--; n=$((n+1))
done
[ $n -gt 0 ] || fail "no man page installed (man/ is empty)"
n=0
for u in "$PS_SRC"/packaging/*.service; do
    [ -e "$u" ] || continue
    assert_node "/lib/systemd/system/${u##*/}" -rw-r--r--; n=$((n+1))
done
[ $n -ge 2 ] || fail "expected the ruleset and the proxyd units, found $n unit(s)"
# The module is a loadable PAM module exporting the session hooks.
assert_match "units name the installed programs" 'ExecStart=/usr/sbin/sandbox-proxyd' \
    "$(cat "$D/lib/systemd/system/sandbox-proxyd.service")"
# Debian's nftables.service flushes the whole ruleset on stop, start and reload: its drop-in
# loads table inet pam_sandbox again right after each, and the ruleset unit is not stopped with it.
assert_node /lib/systemd/system/nftables.service.d/pam-sandbox.conf -rw-r--r--
dropin=$(cat "$D/lib/systemd/system/nftables.service.d/pam-sandbox.conf")
for k in ExecStartPost ExecReload ExecStopPost; do
    assert_match "nftables drop-in: $k re-applies" "^$k=-/usr/sbin/sandboxctl apply\$" "$(grep "^$k=" <<<"$dropin")"
done
assert_no_match "the ruleset unit does not stop with nftables" '^PartOf=' \
    "$(cat "$D/lib/systemd/system/pam-sandbox-ruleset.service")"
assert_match "module exports pam_sm_open_session" 'pam_sm_open_session' \
    "$(nm -D --defined-only "$D$MODDIR/pam_sandbox.so")"
# The pam-auth-update profile must not restrict itself to interactive sessions (DESIGN §9.5).
assert_no_match "no Session-Interactive-Only" 'Session-Interactive-Only' \
    "$(cat "$D/usr/share/pam-configs/pam_sandbox")"

# Config: global settings active, examples inert (*.conf.example), pristine copies in examples/.
[ -e "$PS_SRC/profiles/sandbox.conf" ] && assert_node /etc/pam_sandbox/sandbox.conf -rw-r--r--
nprof=0
for p in "$PS_SRC"/profiles/profiles/*.conf; do
    [ -e "$p" ] || continue
    b=${p##*/}
    assert_node "/etc/pam_sandbox/profiles/$b.example" -rw-r--r--
    assert_node "/usr/share/pam_sandbox/examples/profiles/$b" -rw-r--r--
    [ -e "$D/etc/pam_sandbox/profiles/$b" ] && fail "example $b installed active"
    nprof=$((nprof+1))
done
[ $nprof -gt 0 ] || fail "no example profile in profiles/profiles/"
for p in "$PS_SRC"/profiles/inference.d/*.conf; do
    [ -e "$p" ] || continue
    b=${p##*/}
    assert_node "/etc/pam_sandbox/inference.d/$b.example" -rw-r--r--
    [ -e "$D/etc/pam_sandbox/inference.d/$b" ] && fail "example backend $b installed active"
done
# The decision log's rotation: installed, and it really rotates a file held open for appending the
# way proxyd holds it (copytruncate; the next record lands at offset 0 of the emptied file).
assert_node /etc/logrotate.d/pam-sandbox -rw-r--r--
command -v logrotate >/dev/null || fail "logrotate missing: bash scripts/deps installs it"
L=/var/log/pam_sandbox/decisions.jsonl   # in the world's own /var/log (world.sh)
exec 9>>"$L"
echo '{"decision":"allow","n":1}' >&9
out=$(logrotate -f -s "$WORLD/logrotate.state" "$D/etc/logrotate.d/pam-sandbox" 2>&1) || fail "logrotate: $out"
echo '{"decision":"allow","n":2}' >&9
exec 9>&-
assert_eq "rotated copy has the record before" '{"decision":"allow","n":1}' "$(cat "$L.1" 2>/dev/null)"
assert_eq "live file has only the record after, from offset 0" '{"decision":"allow","n":2}' "$(cat "$L")"
rm -f "$L" "$L".*

# Nothing group/other-writable anywhere in the tree (the config loader would reject it, and a
# writable program directory is a root compromise).
bad=$(find "$D" -perm /022 ! -type l)
assert_eq "no group/other-writable path" "" "$bad"

# The installed config is valid, and it sandboxes nobody: an account in every group and with every
# name that the examples match is not matched...
SC=$D/usr/sbin/sandboxctl
out=$("$SC" -c "$D/etc/pam_sandbox" check 2>&1) || fail "installed config does not check: $out"
ok "installed config checks"
groups=$(sed -n 's/^[[:space:]]*Group=//p' "$PS_SRC"/profiles/profiles/*.conf | tr -s ' \t' '\n' | sort -u | grep -v '^$' || true)
for g in $groups; do getent group "$g" >/dev/null || groupadd "$g"; done
world_add_user psinst 59900 $groups
out=$("$SC" -c "$D/etc/pam_sandbox" explain psinst 2>&1) || true
assert_match "inert: examples match nobody" 'not sandboxed|no profile' "$out"
# ...while the same account IS matched once the admin enables an example (so the test above means
# something).
for p in "$PS_SRC"/profiles/profiles/*.conf; do
    b=${p##*/}
    cp "$D/etc/pam_sandbox/profiles/$b.example" "$D/etc/pam_sandbox/profiles/$b"
done
out=$("$SC" -c "$D/etc/pam_sandbox" explain psinst 2>&1) || true
assert_no_match "enabled example matches" 'not sandboxed|no profile' "$out"
rm -f "$D"/etc/pam_sandbox/profiles/*.conf

# A second install keeps the admin's edits, and says so.
printf '# edited by the admin\n' >> "$D/etc/pam_sandbox/sandbox.conf" 2>/dev/null || \
    printf '# edited by the admin\n' > "$D/etc/pam_sandbox/sandbox.conf"
first=$(ls "$D"/etc/pam_sandbox/profiles/*.example | head -n 1)
echo "# admin" > "$first"
sum_before=$(md5sum "$D/etc/pam_sandbox/sandbox.conf" "$first")
inst
assert_eq "edited config kept" "$sum_before" "$(md5sum "$D/etc/pam_sandbox/sandbox.conf" "$first")"
assert_match "install says it kept the file" "keep .*/etc/pam_sandbox/sandbox.conf" "$(cat "$WORLD/install.log")"
# examples/ under /usr/share is the package's own and is refreshed.
assert_eq "examples refreshed" "$(md5sum < "$PS_SRC/profiles/profiles/$(basename "$first" .example)")" \
    "$(md5sum < "$D/usr/share/pam_sandbox/examples/profiles/$(basename "$first" .example)")"

# PREFIX moves the programs; SYSCONFDIR stays /etc.
D=$WORLD/destdir2
make -s -C "$PS_SRC" "${SANARG[@]}" B="$PS_BUILD" DESTDIR="$D" PREFIX=/usr/local install >"$WORLD/install2.log" 2>&1 \
    || { cat "$WORLD/install2.log"; fail "make install PREFIX=/usr/local"; }
assert_node /usr/local/sbin/sandboxctl -rwxr-xr-x
assert_match "units follow SBINDIR" 'ExecStart=/usr/local/sbin/sandbox-proxyd' \
    "$(cat "$D/lib/systemd/system/sandbox-proxyd.service")"
assert_match "the nftables drop-in follows SBINDIR" 'ExecStopPost=-/usr/local/sbin/sandboxctl apply' \
    "$(cat "$D/lib/systemd/system/nftables.service.d/pam-sandbox.conf")"
assert_node /usr/local/share/pam-configs/pam_sandbox -rw-r--r--
assert_node /etc/pam_sandbox drwxr-xr-x

# ---- The README walkthrough, step by step, on this world as the fresh host ----
# The installed files come from the first DESTDIR tree.  Directories of the host that the
# walkthrough writes to (pam-auth-update's profiles, state and debconf cache, libpam's module
# directory) get private writable copies bound over them, in this mount namespace only.
D=$WORLD/destdir
overlay() { local c=$WORLD/overlay$1; mkdir -p "$c"; cp -a "$1/." "$c/"; mount --bind "$c" "$1"; }
command -v pam-auth-update >/dev/null || skip "pam-auth-update missing (libpam-runtime)"
for dir in /usr/share/pam-configs /var/lib/pam /var/cache/debconf "$MODDIR"; do
    [ -d "$dir" ] || skip "$dir missing"; overlay "$dir"
done
install -m 644 "$D/usr/share/pam-configs/pam_sandbox" /usr/share/pam-configs/
install -m 644 "$D$MODDIR/pam_sandbox.so" "$MODDIR/"
rm -rf /etc/pam_sandbox; cp -a "$D/etc/pam_sandbox" /etc/
# (the first part edited this copy: start from the pristine example again)
cp "$D/usr/share/pam_sandbox/examples/profiles/example-dev.conf" /etc/pam_sandbox/profiles/example-dev.conf.example
export PATH="$D/usr/sbin:$PATH"
world_add_user alice 59901
world_add_user psadmin 59902
# 1. proxyd's account
useradd --system --no-create-home --home-dir / --shell /usr/sbin/nologin pam-sandbox
# 2. the CA
sandboxctl ca init >/dev/null || fail "sandboxctl ca init"
assert_eq "CA key mode" "-rw------- root" "$(stat -c '%A %U' /etc/pam_sandbox/ca/inference-ca.key)"
# 3. a profile from the example, a group, a member
getent group sandboxed >/dev/null || groupadd sandboxed
cp /etc/pam_sandbox/profiles/example-dev.conf.example /etc/pam_sandbox/profiles/dev.conf
usermod -aG sandboxed alice
# 4. check, explain, decide
out=$(sandboxctl check 2>&1) || fail "sandboxctl check after the walkthrough's edits: $out"
assert_match "explain alice: matched" 'profile: dev' "$(sandboxctl explain alice)"
assert_match "explain psadmin: not sandboxed" 'not sandboxed' "$(sandboxctl explain psadmin)"
assert_match "decide github.com 443" '^allow' "$(sandboxctl decide alice github.com 443)"
# 5. ruleset and proxyd (the unit's ExecStart, in the foreground: no systemd in the world)
sandboxctl apply >/dev/null || fail "sandboxctl apply"
nft list table inet pam_sandbox >/dev/null || fail "no table after apply"
start_proxyd() {
    rm -f /run/pam_sandbox/proxyd.pid
    world_bg sandbox-proxyd -f 2>>"$WORLD/proxyd.log"; PROXYD_PID=${WORLD_PIDS[-1]}
    for _ in $(seq 100); do [ -s /run/pam_sandbox/proxyd.pid ] && break; sleep 0.1; done
}
start_proxyd
# 6. the module into both session stacks
pam-auth-update --enable pam_sandbox >/dev/null 2>&1 || fail "pam-auth-update --enable pam_sandbox"
for f in common-session common-session-noninteractive; do
    assert_match "pam-auth-update: $f runs the module" 'required[[:space:]]+pam_sandbox.so' "$(cat /etc/pam.d/$f)"
done
# 7. log in (a real sshd with a key) as alice, and as an admin from a second session
if [ "${PS_SAN:-0}" = 1 ]; then   # an ASan module needs the runtime loaded first in sshd
    LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
        ASAN_OPTIONS=detect_leaks=0 world_start_sshd 2299
else
    world_start_sshd 2299
fi
world_authorize alice; world_authorize psadmin
out=$(world_ssh alice 'ulimit -Hu; grep NoNewPrivs /proc/self/status; curl -sS -o /dev/null -w "%{http_connect}" https://example.org 2>/dev/null')
assert_match "alice: confined (512, NoNewPrivs 1, example.org 403)" '^512
NoNewPrivs:[[:space:]]+1
403' "$out"
out=$(world_ssh psadmin 'ulimit -Hu; grep NoNewPrivs /proc/self/status')
assert_no_match "admin: not confined" '^512|NoNewPrivs:[[:space:]]+1' "$out"
# 8. the doctor finds nothing left to fix on this host
out=$(sandboxctl doctor 2>&1); rc=$?
# (notes do not count: on a kernel without Yama the doctor says what that leaves open)
assert_eq "doctor after the walkthrough (exit $rc)" "" "$(printf '%s\n' "$out" | grep -v -e '^sandboxctl doctor: 0 findings' -e '^[^ ]*: note: ')"
assert_eq "  ... and its exit status" 0 "$rc"
# Rolling out with Mode=report: the rules' denial becomes a logged would_deny, and
# sandboxctl denials turns it into an Allow= line.
sed -i 's/^Mode=enforce/Mode=report/' /etc/pam_sandbox/profiles/dev.conf
sandboxctl apply >/dev/null || fail "apply in report mode"
# apply sends SIGHUP; the unprivileged proxyd cannot read the root-only CA key: its helper
# validates the new config and hands the key over, and proxyd reloads in place (no restart, which
# would cut every open connection).
for _ in $(seq 50); do grep -q 'sandbox-proxyd.*reloaded configuration' "$SYSLOG" && break; sleep 0.1; done
assert_match "apply: proxyd reloaded in place" "sandbox-proxyd\\[$PROXYD_PID\\]: reloaded configuration" "$(cat "$SYSLOG")"
kill -0 "$PROXYD_PID" 2>/dev/null || fail "proxyd exited after apply: $(tail -n 5 "$SYSLOG")"
# An origin on the upstream host, by address (no DNS needed): no rule allows it.
world_upstream psinst-up
mkdir -p "$WORLD/www"; echo hello > "$WORLD/www/index.html"
world_bg ip netns exec psinst-up python3 -m http.server 80 --bind 203.0.113.10 --directory "$WORLD/www" >/dev/null 2>&1
for _ in $(seq 100); do ip netns exec psinst-up ss -Hlnt | grep -q '203.0.113.10:80 ' && break; sleep 0.1; done
code=$(world_ssh alice 'curl -sS -m 10 -o /dev/null -w "%{http_code}" http://203.0.113.10/ 2>/dev/null')
assert_eq "report mode: the denied origin is reached" 200 "$code"
assert_match "report mode: logged as would_deny" '"host":"203.0.113.10".*"decision":"would_deny"' \
    "$(cat /var/log/pam_sandbox/decisions.jsonl)"
assert_match "sandboxctl denials suggests the Allow= line" 'Allow=203.0.113.10:80' "$(sandboxctl denials alice 2>&1)"
sed -i 's/^Mode=report/Mode=enforce/' /etc/pam_sandbox/profiles/dev.conf
sandboxctl apply >/dev/null || fail "apply back to enforce"
# Undoing everything (README order: PAM first, then the ruleset, proxyd, the files)
pam-auth-update --disable pam_sandbox >/dev/null 2>&1 || fail "pam-auth-update --disable"
assert_no_match "common-session without the module" 'pam_sandbox' "$(cat /etc/pam.d/common-session)"
sandboxctl flush >/dev/null || fail "sandboxctl flush"
nft list table inet pam_sandbox >/dev/null 2>&1 && fail "table still loaded after flush"
out=$(world_ssh alice 'ulimit -Hu; grep NoNewPrivs /proc/self/status')
assert_no_match "alice after undo: not confined" '^512|NoNewPrivs:[[:space:]]+1' "$out"
echo "t_install: all assertions passed"
