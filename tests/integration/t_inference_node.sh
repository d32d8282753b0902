#!/usr/bin/env bash
# The official `openai` Node.js package (from npm) in a real pam_sandbox session: the command runs
# through the PAM module (tests/lib/sandbox_pam_run, a service with only pam_sandbox.so), so its
# environment is exactly what the module set (OPENAI_BASE_URL, OPENAI_API_KEY placeholder,
# NODE_EXTRA_CA_CERTS, proxy variables) and it runs under the module's limits and seccomp filter.
# The SDK does not use HTTPS_PROXY, so it reaches inference.local by policy DNS and the nftables
# redirect (the transparent path).  A completion, a stream, the model list, a refused model (403)
# and a cut stream (an APIError, not a hang).  UIDs 59820-59829.
#
# The package is installed once (npm, before entering the namespace: the world has no route out)
# into $PS_BUILD/node-openai and reused; a fresh clone installs it on its first run.
. "$(dirname "$0")/../lib/world.sh" || exit 1
OPENAI_VERSION=4.95.0
NODE_CACHE="$PS_BUILD/node-openai"
if [ -z "${PS_IN_WORLD:-}" ] && [ "$(id -u)" = 0 ]; then
    command -v node >/dev/null || skip "node missing"
    if [ "$(cat "$NODE_CACHE/.version" 2>/dev/null)" != "$OPENAI_VERSION" ]; then
        command -v npm >/dev/null || skip "npm missing (cannot install the openai package)"
        rm -rf "$NODE_CACHE"; mkdir -p "$NODE_CACHE"
        (cd "$NODE_CACHE" && timeout 300 npm install --no-audit --no-fund --loglevel=error \
            "openai@$OPENAI_VERSION" >npm.log 2>&1) || skip "npm install openai@$OPENAI_VERSION failed: $(tail -n 3 "$NODE_CACHE/npm.log")"
        echo "$OPENAI_VERSION" > "$NODE_CACHE/.version"
    fi
fi
world_enter "$@"
. "$PS_SRC/tests/lib/inference_world.sh"
[ -d "$NODE_CACHE/node_modules/openai" ] || skip "openai package not installed in $NODE_CACHE"
[ -f "$PS_BUILD/pam_sandbox.so" ] || skip "pam_sandbox.so not built"
[ -x "$PS_BUILD/tests/sandbox_pam_run" ] || skip "sandbox_pam_run not built"
# A sanitizer build of the module needs the sanitizer runtimes preloaded into the PAM
# application (only there: preloaded into every command of the test, it hangs the cleanup).
pam_run=("$PS_BUILD/tests/sandbox_pam_run")
if [ "${PS_SAN:-0}" = 1 ]; then
    pam_run=(env "LD_PRELOAD=$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
             ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 "${pam_run[@]}")
fi

world_add_user infnode 59821
inference_world
proxy_profile 10-node.conf "[Match]
User=infnode
[Inference]
Models=fast cut"
echo "nameserver 203.0.113.10" > /etc/resolv.conf
echo "session required $PS_BUILD/pam_sandbox.so conf=$CONF" > /etc/pam.d/ps-inference
proxy_start
proxy_nft 59821
# proxy_start waits for the explicit port only; under ASan policy DNS can answer later than that,
# and glibc then reports EAI_AGAIN to the SDK.  Wait until the account's own lookup is answered.
for _ in $(seq 100); do
    setpriv --reuid 59821 --regid 59821 --clear-groups getent hosts inference.local >/dev/null && break
    sleep 0.1
done
# Where the account can read them (the build tree may not be).
cp -r "$NODE_CACHE/node_modules" "$WORLD/node_modules"
cp "$PS_SRC/tests/lib/inference_openai_node.js" "$WORLD/"
chmod -R a+rX "$WORLD/node_modules" "$WORLD/inference_openai_node.js"

out=$("${pam_run[@]}" ps-inference infnode /usr/bin/env 2>"$WORLD/env.err")
printf '%s\n' "$out" > "$WORLD/session.env"
assert_match "the module set OPENAI_BASE_URL" "^OPENAI_BASE_URL=https://inference.local/v1$" "$(grep ^OPENAI_BASE_URL= "$WORLD/session.env")"
assert_match "the module set NODE_EXTRA_CA_CERTS to the CA" "^NODE_EXTRA_CA_CERTS=$CONF/ca/inference-ca.pem$" \
    "$(grep ^NODE_EXTRA_CA_CERTS= "$WORLD/session.env")"
key=$(sed -n 's/^OPENAI_API_KEY=//p' "$WORLD/session.env")
[ -n "$key" ] || fail "no OPENAI_API_KEY placeholder in the session: $(cat "$WORLD/env.err")"
ok "placeholder OPENAI_API_KEY set"

out=$("${pam_run[@]}" ps-inference infnode /usr/bin/node "$WORLD/inference_openai_node.js" \
      "$WORLD/node_modules/openai" 2>"$WORLD/node.err")
printf '%s\n' "$out" >> "$INF_OUT"
val() { printf '%s\n' "$out" | sed -n "s/^$1: //p"; }
[ -z "$(val error)" ] || fail "the SDK failed: $out / $(cat "$WORLD/node.err")"
assert_eq "SDK completion" "Hello from the fake backend" "$(val content)"
assert_eq "SDK sees usage" "11/7" "$(val usage)"
assert_eq "SDK stream chunks" 5 "$(val stream_chunks)"
assert_eq "SDK stream text" "tok0 tok1 tok2 tok3 tok4" "$(val stream_text)"
assert_eq "SDK model list" "cut,fast" "$(val models)"
assert_eq "SDK: a model the profile does not allow" "403 model_not_allowed" "$(val denied)"
assert_match "SDK: a cut stream raises an API error" "^APIError stream_interrupted$" "$(val cut)"
rec=$(grep '"path": "/v1/chat/completions"' "$INF_REC" | head -n 1)
assert_eq "backend saw the admin's key, not the placeholder" "Bearer $INF_KEY" "$(jq -r '.headers.authorization' <<<"$rec")"
grep -qF -- "$key" "$INF_REC" && fail "the placeholder key reached the backend"
assert_match "the SDK came through the transparent path" '"decision":"allow","reason":"inference"' \
    "$(proxy_log_last '"account":"infnode"' '"mode":"transparent"' '"host":"inference.local"' '"port":443')"
assert_match "SDK usage logged" '"account":"infnode".*"input_tokens":11' "$(proxy_log_last '"mode":"inference"' '"account":"infnode"' '"model":"fast"' '"stream":false')"
inf_secrets_absent
