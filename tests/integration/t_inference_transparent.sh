#!/usr/bin/env bash
# inference.local on the transparent path (DESIGN.md §5.1, §5.4): with real nftables steering and
# no proxy variables, a sandboxed account's curl resolves inference.local through policy DNS (a
# synthetic address), its TCP to port 443 is redirected to proxyd and intercepted: the backend
# answers, with the admin's key and the rewritten model; a stream arrives event by event.  Port 80
# of the same address is not intercepted (a deny-all profile gets a reset), and a profile without
# models gets no interception at all.  `sandboxctl apply` reloads proxyd in place (its root-only
# CA key and API keys come from its privileged helper), and a rotated API key is used after a
# SIGHUP.  UIDs 59810-59819.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/inference_world.sh"
command -v jq >/dev/null || skip "jq missing"

world_add_user inftp 59811
world_add_user inftpdeny 59812
inference_world
proxy_profile 10-box.conf "[Match]
User=inftp
[Inference]
Models=fast claude"
proxy_profile 20-denyall.conf "[Match]
User=inftpdeny"
echo "nameserver 203.0.113.10" > /etc/resolv.conf      # steered to policy DNS by nftables
proxy_start
proxy_nft 59811 59812
# apply sent SIGHUP: the unprivileged proxyd reloads in place, with the root-only files that its
# helper read for it (a restart would cut every open connection).
for _ in $(seq 50); do grep -q 'reloaded configuration' "$SYSLOG" && break; sleep 0.1; done
assert_match "apply: proxyd reloaded in place" 'reloaded configuration' "$(cat "$SYSLOG")"
kill -0 "$PROXYD_PID" 2>/dev/null || fail "proxyd exited after apply: $(tail -n 5 "$SYSLOG")"
CA="$CONF/ca/inference-ca.pem"
tc() { local u=$1; shift; as "$u" curl -sS --max-time 10 --noproxy '*' --cacert "$CA" "$@"; }

synth=$(as inftp getent ahostsv4 inference.local | awk '{print $1; exit}')
dns_is_synthetic "$synth" || fail "inference.local resolved to [$synth], not a synthetic address"
ok "policy DNS gives inference.local the synthetic address $synth"

out=$(tc inftp https://inference.local/v1/chat/completions -H 'Authorization: Bearer sk-user-placeholder' \
      -H 'Content-Type: application/json' -d '{"model":"fast","messages":[{"role":"user","content":"hi"}]}')
assert_eq "transparent chat completion" "Hello from the fake backend" "$(jq -r '.choices[0].message.content' <<<"$out")"
rec=$(inf_backend_last)
assert_eq "backend saw the admin's key" "Bearer $INF_KEY" "$(jq -r '.headers.authorization' <<<"$rec")"
assert_eq "backend saw the rewritten model" gpt-4o-mini "$(jq -r .model <<<"$rec")"
grep -q sk-user-placeholder "$INF_REC" && fail "the client's placeholder key reached the backend"
ok "the client's key did not reach the backend"
l=$(proxy_log_last '"mode":"inference"' '"account":"inftp"' '"status":200')
assert_match "usage logged for the account" '"input_tokens":11,"output_tokens":7' "$l"
assert_match "the hand-off came from the transparent listener" '"mode":"transparent"' \
    "$(proxy_log_last '"account":"inftp"' '"host":"inference.local"' '"port":443' '"mode":"transparent"')"

out=$(tc inftp https://inference.local/v1/messages -H 'x-api-key: placeholder' -d '{"model":"claude","max_tokens":5,"messages":[]}')
assert_eq "transparent anthropic message" "Hello from the fake backend" "$(jq -r '.content[0].text' <<<"$out")"

# A stream through the transparent path, timed by the client.
r=$(as inftp python3 "$PS_SRC/tests/lib/inference_client.py" --connect "$synth:443" --ca "$CA" \
    --req '{"path":"/v1/chat/completions","body":{"model":"fast","stream":true}}')
assert_eq "transparent stream: 5 events + [DONE]" 6 "$(jq '.responses[0].chunks | length' <<<"$r")"
first_rx=$(jq '.responses[0].chunks[0].t' <<<"$r")
last_tx=$(jq -s '[.[] | select(.event_sent == 4)] | last | .t' "$INF_REC")
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$first_rx" "$last_tx" ||
    fail "first event at $first_rx, after the backend's last at $last_tx"
ok "first event reached the client before the backend sent the last"

# Port 80 of the same name is normal policy: nothing allows it, so a reset, logged as transparent.
out=$(tc inftp --resolve "inference.local:80:$synth" http://inference.local/v1/models 2>&1); rc=$?
[ $rc -ne 0 ] || fail "inference.local:80 answered: $out"
ok "port 80 refused (curl: $out)"
assert_match "port 80 denied by policy, not intercepted" '"mode":"transparent".*"port":80.*"decision":"deny"' \
    "$(proxy_log_last '"account":"inftp"' '"port":80')"

# A profile without models: no name, and no interception even with the address.
out=$(as inftpdeny curl -sS --max-time 5 --noproxy '*' --cacert "$CA" https://inference.local/v1/models 2>&1); rc=$?
assert_eq "no models: inference.local does not resolve (curl exit 6)" 6 "$rc"
out=$(as inftpdeny curl -sS --max-time 5 --noproxy '*' --cacert "$CA" --resolve "inference.local:443:$synth" \
      https://inference.local/v1/models 2>&1); rc=$?
[ $rc -ne 0 ] || fail "a profile without models was served: $out"
assert_match "no models: denied" '"decision":"deny"' "$(proxy_log_last '"account":"inftpdeny"' '"port":443')"
for port in 80 8443; do
    out=$(as inftpdeny curl -sS --max-time 5 --noproxy '*' --resolve "inference.local:$port:$synth" \
          "http://inference.local:$port/" 2>&1); rc=$?
    [ $rc -ne 0 ] || fail "deny-all reached inference.local:$port"
    assert_match "deny-all: inference.local:$port denied by policy" '"mode":"transparent".*"decision":"deny"' \
        "$(proxy_log_last '"account":"inftpdeny"' "\"port\":$port")"
done

# Key rotation: the admin replaces a root-only key file and reloads; the next request carries the
# new key, read by the helper (the backend answers 401 to a key it does not know, but records it).
INF_AKEY2="sk-ant-rotated-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s\n' "$INF_AKEY2" > "$CONF/secrets/anthropic.key"
: > "$SYSLOG"
kill -HUP "$PROXYD_PID"
for _ in $(seq 50); do grep -q 'reloaded configuration' "$SYSLOG" && break; sleep 0.1; done
kill -0 "$PROXYD_PID" 2>/dev/null || fail "proxyd exited on reload: $(tail -n 5 "$SYSLOG")"
tc inftp https://inference.local/v1/messages -d '{"model":"claude","max_tokens":5,"messages":[]}' >/dev/null
assert_eq "after rotation and SIGHUP the backend sees the new key" "$INF_AKEY2" \
    "$(jq -r '.headers["x-api-key"]' <<<"$(inf_backend_last)")"
grep -qF -- "$INF_AKEY2" "$WORLD/decisions.jsonl" "$SYSLOG" && fail "the rotated key appears in a log"

inf_secrets_absent
