#!/usr/bin/env bash
# pam_sandbox.so through a stack that mimics Debian's cron/sudo/systemd-user path
# (common-session-noninteractive, with stock pam_loginuid, pam_keyinit, pam_env, pam_unix and
# pam_limits around it), driven by pamtester and by sandbox_pam_run (the su/cron lifecycle:
# setcred, open, a command as the user, close, setcred(DELETE), end).  Real libpam, real module.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/module_world.sh"
command -v pamtester >/dev/null || skip "pamtester missing"

MOD_ARGS="debug bogus=1" mod_setup
world_add_user ps-nia 59100 ps-sandboxed      # Group= match, defaults
world_add_user ps-nib 59101                   # Network=block, AllowNetlink= empty, NPROC 300
world_add_user ps-nim 59102                   # models; NoNewPrivileges=no, keeps CAP_NET_BIND_SERVICE
world_add_user ps-nifree 59103                # matched by nothing
mod_profile 10-block <<'EOP'
[Match]
User=ps-nib
[Limits]
LimitNPROC=300
[Seccomp]
Network=block
AllowNetlink=
EOP
mod_profile 20-models <<'EOP'
[Match]
User=ps-nim
[Process]
NoNewPrivileges=no
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
[Inference]
Models=fast
EOP
mod_profile 30-group <<'EOP'
[Match]
Group=ps-sandboxed
[Limits]
LimitNOFILE=256:512
[Process]
Umask=0027
EOP
mkdir -m 755 "$CONF/ca"
echo "bundle" > "$CONF/ca/bundle.pem"; echo "ca" > "$CONF/ca/inference-ca.pem"
chmod 644 "$CONF/ca/"*.pem
mod_apply

# --- the PAM lifecycle under the filter ---
out=$("${SAN_ENV[@]}" pamtester ps-noninteractive ps-nia 'setcred(PAM_ESTABLISH_CRED)' open_session close_session 2>&1) ||
    fail "pamtester: $out"
ok "pamtester setcred+open_session+close_session for a sandboxed account"
out=$(mod_run ps-nia true 2>&1) || fail "lifecycle: $out"
for s in 'pam_setcred\(ESTABLISH\)' pam_open_session pam_close_session 'pam_setcred\(DELETE\)' pam_end; do
    assert_match "$s succeeds under the filter" "$s: Success" "$out"
done
if ! strings "$MOD_SO" | grep -q 'built with nft_pending.c'; then
    assert_match "uid in the nftables set after login" "\\b59100\\b" "$(nft list set inet pam_sandbox users)"
fi
assert_match "module confined the session" "session of ps-nia confined by profile 30-group" "$(cat "$SYSLOG")"
assert_match "unknown argument logged" "unknown argument ignored: bogus=1" "$(cat "$SYSLOG")"

# --- limits ---
out=$(mod_run ps-nia bash -c 'ulimit -Hu; ulimit -Su; ulimit -Hc; ulimit -u 1024 2>/dev/null && echo raised || echo refused; umask' 2>/dev/null)
assert_eq "hard NPROC, soft NPROC, hard CORE, ulimit -u 1024, umask" "512 512 0 refused 0027" "$(echo $out)"
assert_eq "LimitNOFILE=256:512 (soft, hard)" "256 512" "$(echo $(mod_run ps-nia bash -c 'ulimit -Sn; ulimit -Hn' 2>/dev/null))"
assert_eq "profile's LimitNPROC" "300" "$(mod_run ps-nib bash -c 'ulimit -Hu' 2>/dev/null)"

# --- the probe: Network=proxy (defaults) and Network=block with AllowNetlink= empty ---
mod_run ps-nia "$PROBE" > "$WORLD/probe-proxy" 2>/dev/null || fail "probe session (proxy)"
check_confined_probe "$WORLD/probe-proxy" proxy "audit"
assert_probe "$WORLD/probe-proxy" rlimit.NPROC 512:512
assert_probe "$WORLD/probe-proxy" rlimit.CORE 0:0
out=$(mod_run ps-nib "$PROBE" 2>&1 > "$WORLD/probe-block") || fail "AllowNetlink= empty: login failed: $out"
ok "a profile with AllowNetlink= empty still logs in (pam_open_session: $(echo "$out" | grep -o 'pam_open_session: .*'))"
check_confined_probe "$WORLD/probe-block" block ""

# --- NoNewPrivileges=no and a kept capability: the filter is still loaded ---
mod_run ps-nim "$PROBE" > "$WORLD/probe-nnp" 2>/dev/null || fail "probe session (NoNewPrivileges=no)"
assert_probe "$WORLD/probe-nnp" status.NoNewPrivs 0
assert_probe "$WORLD/probe-nnp" status.Seccomp 2
assert_probe "$WORLD/probe-nnp" status.CapBnd 0000000000000400
assert_probe "$WORLD/probe-nnp" sys.clone3 ENOSYS
assert_probe "$WORLD/probe-nnp" socket.AF_PACKET EAFNOSUPPORT

# --- a setuid-root binary gains nothing (and does for an unconfined account: the control) ---
install -o root -m 4755 /usr/bin/id /tmp/ps-scratch/suid-id
assert_eq "setuid binary, sandboxed" "59100" "$(mod_run ps-nia /tmp/ps-scratch/suid-id -u 2>/dev/null)"
assert_eq "setuid binary, unconfined (control)" "0" "$(mod_run ps-nifree /tmp/ps-scratch/suid-id -u 2>/dev/null)"

# --- fork bomb in a noninteractive session (LimitNPROC=300 for ps-nib) ---
read -r _ n why < <(mod_run ps-nib "$PROBE" forkbomb 1000 0 2>/dev/null | grep ^forkbomb)
assert_eq "fork bomb stops with" "EAGAIN" "$why"
[ "$n" -lt 300 ] && [ "$n" -gt 250 ] || fail "fork bomb made $n processes, limit 300"
ok "fork bomb stopped after $n children (LimitNPROC=300)"

# --- environment ---
env_a=$(mod_run ps-nia env 2>/dev/null); env_m=$(mod_run ps-nim env 2>/dev/null)
assert_match "HTTP_PROXY" "^HTTP_PROXY=http://127.0.0.1:3128$" "$(echo "$env_a" | grep ^HTTP_PROXY=)"
assert_match "https_proxy" "^https_proxy=http://127.0.0.1:3128$" "$(echo "$env_a" | grep ^https_proxy=)"
assert_eq "NO_PROXY empty" "NO_PROXY=" "$(echo "$env_a" | grep ^NO_PROXY=)"
assert_eq "SSL_CERT_FILE" "SSL_CERT_FILE=$CONF/ca/bundle.pem" "$(echo "$env_a" | grep ^SSL_CERT_FILE=)"
assert_eq "GIT_SSL_CAINFO" "GIT_SSL_CAINFO=$CONF/ca/bundle.pem" "$(echo "$env_a" | grep ^GIT_SSL_CAINFO=)"
assert_eq "NODE_EXTRA_CA_CERTS" "NODE_EXTRA_CA_CERTS=$CONF/ca/inference-ca.pem" "$(echo "$env_a" | grep ^NODE_EXTRA_CA_CERTS=)"
assert_no_match "no SDK variables without models" "OPENAI_BASE_URL|ANTHROPIC_BASE_URL|_API_KEY" "$env_a"
assert_eq "OPENAI_BASE_URL with models" "OPENAI_BASE_URL=https://inference.local/v1" "$(echo "$env_m" | grep ^OPENAI_BASE_URL=)"
assert_eq "ANTHROPIC_BASE_URL with models" "ANTHROPIC_BASE_URL=https://inference.local" "$(echo "$env_m" | grep ^ANTHROPIC_BASE_URL=)"
assert_match "placeholder API key" "^OPENAI_API_KEY=pam-sandbox-placeholder" "$(echo "$env_m" | grep ^OPENAI_API_KEY=)"

# --- an account no profile matches is untouched ---
mod_run ps-nifree "$PROBE" > "$WORLD/probe-free" 2>/dev/null || fail "unmatched account's session"
check_unconfined_probe "$WORLD/probe-free"
assert_eq "unmatched account keeps its own NPROC limit" "$(ulimit -Hu)" "$(mod_run ps-nifree bash -c 'ulimit -Hu' 2>/dev/null)"
assert_no_match "unmatched: no proxy variables" "HTTP_PROXY" "$(mod_run ps-nifree env 2>/dev/null)"
assert_match "debug: why it was left alone" "no profile matches user ps-nifree" "$(cat "$SYSLOG")"
echo "all ok"
