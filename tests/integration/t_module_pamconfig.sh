#!/usr/bin/env bash
# packaging/pam-configs/pam_sandbox with the real pam-auth-update (in the world's copy of /etc and
# a private copy of /usr/share/pam-configs): the module lands in common-session AND
# common-session-noninteractive (sudo, cron and systemd-user include only the latter, so the
# profile must not be Session-Interactive-Only), as "required", and disabling removes it.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
command -v pam-auth-update >/dev/null || skip "pam-auth-update missing (libpam-runtime)"
prof="$PS_SRC/packaging/pam-configs/pam_sandbox"
[ -f "$prof" ] || fail "$prof missing"
assert_no_match "no Session-Interactive-Only" "Interactive-Only" "$(cat "$prof")"

# pam-auth-update writes /etc/pam.d (the world's copy), its state in /var/lib/pam and its answer
# in the debconf database: all three must be private copies, or the host's would change.
for d in /usr/share/pam-configs /var/lib/pam /var/cache/debconf; do
    [ -d "$d" ] || fail "$d missing"
    priv="$WORLD/private$(echo "$d" | tr / _)"
    mkdir -p "$priv"; cp -a "$d/." "$priv/"
    mount --bind "$priv" "$d" || fail "cannot make $d private"
done
install -m 644 "$prof" /usr/share/pam-configs/pam_sandbox
DEBIAN_FRONTEND=noninteractive pam-auth-update --package --enable pam_sandbox >/dev/null 2>&1 ||
    fail "pam-auth-update --enable pam_sandbox failed"
for f in common-session common-session-noninteractive; do
    assert_match "$f has the module as required" "^session[[:space:]]+required[[:space:]]+pam_sandbox\\.so" "$(cat /etc/pam.d/$f)"
done
DEBIAN_FRONTEND=noninteractive pam-auth-update --package --remove pam_sandbox >/dev/null 2>&1 ||
    fail "pam-auth-update --remove pam_sandbox failed"
for f in common-session common-session-noninteractive; do
    assert_no_match "$f without the module after --remove" "pam_sandbox" "$(cat /etc/pam.d/$f)"
done
echo "all ok"
