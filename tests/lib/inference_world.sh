# Helpers for the inference.local tests (tests/integration/t_inference_*.sh).  Source after world.sh
# and world_enter; builds on tests/lib/proxy_world.sh (upstream namespace "dnsup", resolver,
# test CA $PROXY_CA, proxy account, sandbox.conf).
#
#   inference_world [EXTRA-SANDBOX-LINE...]
#       the proxy world plus: the test CA in the world's system trust store (proxyd verifies https
#       backends against it), `sandboxctl ca init`, the admin's keys, and the fake backend
#       (tests/lib/inference_fake_backend.py) in the upstream namespace:
#         https://llm.test:8443/v1  API=openai     (name resolved by proxyd through the test resolver)
#         http://203.0.113.10:8000  API=anthropic
#       (not-llm.test resolves to the same address, whose certificate does not name it)
#       Models: fast=gpt-4o-mini gpt-4o cut=cut-stream slow=slow-stream echo=echo-key
#               closed=close-delimited (openai); claude=claude-3-5-haiku (anthropic)
#       $INF_KEY / $INF_AKEY: the admin's keys; $INF_REC: what the backend received (JSON lines)
#   inf_req USER ARGS...   tests/lib/inference_client.py as USER through the explicit proxy, CA
#                          of inference.local trusted; prints its JSON
#   inf_backend_last       the last request record of the backend
#   inf_secrets_absent     fail if either admin key is in the decision log, syslog or $INF_OUT
. "$PS_SRC/tests/lib/proxy_world.sh"

INF_KEY="sk-admin-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
INF_AKEY="sk-ant-admin-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
INF_OUT="$WORLD/inference-client-outputs"
: > "$INF_OUT"

inference_world() {
    proxy_world llm.test=A:203.0.113.10 not-llm.test=A:203.0.113.10
    local l
    for l in "$@"; do echo "$l" >> "$CONF/sandbox.conf"; done
    local d="$WORLD/pki"
    # The backend's certificate for llm.test, from the test CA that the world's trust store holds.
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=llm.test" \
        -keyout "$d/llm.key" -out "$d/llm.csr" 2>/dev/null
    printf 'subjectAltName=DNS:llm.test\n' > "$d/llm.ext"
    openssl x509 -req -in "$d/llm.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
        -extfile "$d/llm.ext" -out "$d/llm.pem" 2>/dev/null || fail "openssl llm cert"
    cat "$d/ca.pem" >> /etc/ssl/certs/ca-certificates.crt      # the world's copy of /etc
    "$PS_BUILD/sandboxctl" -c "$CONF" ca init >/dev/null || fail "sandboxctl ca init"
    mkdir -p "$CONF/secrets"; chmod 700 "$CONF/secrets"
    printf '%s\n' "$INF_KEY" > "$CONF/secrets/openai.key"
    printf '%s\n' "$INF_AKEY" > "$CONF/secrets/anthropic.key"
    chmod 600 "$CONF/secrets/"*.key
    cat > "$CONF/inference.d/openai.conf" <<EOC
[Backend]
URL=https://llm.test:8443/v1
API=openai
APIKeyFile=$CONF/secrets/openai.key
Models=fast=gpt-4o-mini gpt-4o cut=cut-stream slow=slow-stream echo=echo-key closed=close-delimited big=big-answer gz=gzip-answer
EOC
    cat > "$CONF/inference.d/anthropic.conf" <<EOC
[Backend]
URL=http://203.0.113.10:8000
API=anthropic
APIKeyFile=$CONF/secrets/anthropic.key
Models=claude=claude-3-5-haiku
EOC
    chmod 644 "$CONF/inference.d/"*.conf
    INF_REC="$WORLD/backend-received.jsonl"; : > "$INF_REC"
    ip netns exec dnsup python3 "$PS_SRC/tests/lib/inference_fake_backend.py" --listen 203.0.113.10:8443 \
        --tls "$d/llm.pem" "$d/llm.key" --record "$INF_REC" --key "$INF_KEY" \
        --delay "${INF_DELAY:-0.3}" --events "${INF_EVENTS:-5}" --slow 6 > "$WORLD/backend-openai.out" 2>&1 &
    WORLD_PIDS+=($!)
    ip netns exec dnsup python3 "$PS_SRC/tests/lib/inference_fake_backend.py" --listen 203.0.113.10:8000 \
        --record "$INF_REC" --key "$INF_AKEY" --delay "${INF_DELAY:-0.3}" > "$WORLD/backend-anthropic.out" 2>&1 &
    WORLD_PIDS+=($!)
    for _ in $(seq 100); do
        grep -q listening "$WORLD/backend-openai.out" && grep -q listening "$WORLD/backend-anthropic.out" && break
        sleep 0.05
    done
    grep -q listening "$WORLD/backend-openai.out" || fail "backend did not start: $(cat "$WORLD/backend-openai.out")"
    export INF_KEY INF_AKEY INF_REC INF_OUT
}

inf_req() {
    local u=$1; shift
    local out
    out=$(as "$u" python3 "$PS_SRC/tests/lib/inference_client.py" --proxy "$PROXY_EXPLICIT" \
          --ca "$CONF/ca/inference-ca.pem" "$@")
    printf '%s\n' "$out" >> "$INF_OUT"
    printf '%s\n' "$out"
}

inf_backend_last() { grep '"path"' "$INF_REC" | tail -n 1; }

inf_secrets_absent() {
    local f k
    for k in "$INF_KEY" "$INF_AKEY"; do
        for f in "$WORLD/decisions.jsonl" "$SYSLOG" "$INF_OUT" "$@"; do
            [ -e "$f" ] || continue
            if grep -qF -- "$k" "$f"; then fail "an admin key appears in $f"; fi
        done
    done
    ok "the admin keys appear in no log and no client output"
}
