#!/usr/bin/env bash
# inference.local against a hostile account and a half-failed reload (DESIGN.md §5.4): answers to
# pipelined requests that are never read do not pile up in proxyd; a backend written as
# http://localhost is this host, never a question for DNS; an http:// backend port on this host
# squatted by a local account that is not sandboxed gets no request (and so no key), while one run
# by root or by BackendUser= is served; a reload that changes a backend's URL
# but cannot load its new key answers 503 instead of sending the old key to the new URL; a model
# name of control characters leaves a decision record that still parses.  UIDs 59580-59589.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/inference_world.sh"
command -v jq >/dev/null || skip "jq missing"

world_add_user infh 59581 infhgrp
world_add_user infh2 59582 infhgrp
inference_world
# A backend on this host, by name: the fake backend on the world's own loopback.
printf '[Backend]\nURL=http://localhost:8001/v1\nAPI=openai\nAPIKeyFile=%s\nModels=loc=gpt-4o-mini\n' \
    "$CONF/secrets/openai.key" > "$CONF/inference.d/local.conf"
chmod 644 "$CONF/inference.d/local.conf"
python3 "$PS_SRC/tests/lib/inference_fake_backend.py" --listen 127.0.0.1:8001 --record "$INF_REC" \
    --key "$INF_KEY" > "$WORLD/backend-local.out" 2>&1 &
WORLD_PIDS+=($!)
for _ in $(seq 100); do grep -q listening "$WORLD/backend-local.out" && break; sleep 0.05; done
# Two more backends on this host's loopback, over http: port 8003 held by infsquat, a local account
# that is not sandboxed (the real backend is down, say); port 8004 run by infbk, named by BackendUser=.
world_add_user infsquat 59583
world_add_user infbk 59584
printf '[Backend]\nURL=http://127.0.0.1:8003/v1\nAPI=openai\nAPIKeyFile=%s\nModels=sq=gpt-4o-mini\n' \
    "$CONF/secrets/openai.key" > "$CONF/inference.d/squatted.conf"
printf '[Backend]\nURL=http://127.0.0.1:8004/v1\nAPI=openai\nAPIKeyFile=%s\nBackendUser=infbk\nModels=own=gpt-4o-mini\n' \
    "$CONF/secrets/openai.key" > "$CONF/inference.d/own-user.conf"
# ... and port 8005 held by infsquat's listener that accepts nothing for 13 s
printf '[Backend]\nURL=http://127.0.0.1:8005/v1\nAPI=openai\nAPIKeyFile=%s\nModels=sqq=gpt-4o-mini\n' \
    "$CONF/secrets/openai.key" > "$CONF/inference.d/squatted-queue.conf"
# ... and 169.254.7.7:8006, an address of this host (on the world's lo) that sock_diag does not
# find the squatter's sockets on, because infsquat binds them to the device
ip addr add 169.254.7.7/32 dev lo
printf '[Backend]\nURL=http://169.254.7.7:8006/v1\nAPI=openai\nAPIKeyFile=%s\nModels=sqd=gpt-4o-mini\n' \
    "$CONF/secrets/openai.key" > "$CONF/inference.d/squatted-device.conf"
# ... and the root-run backend of port 8001 again, written as an IPv4-mapped IPv6 address
printf '[Backend]\nURL=http://[::ffff:127.0.0.1]:8001/v1\nAPI=openai\nAPIKeyFile=%s\nModels=mapped=gpt-4o-mini\n' \
    "$CONF/secrets/openai.key" > "$CONF/inference.d/mapped.conf"
chmod 644 "$CONF/inference.d/squatted.conf" "$CONF/inference.d/own-user.conf" "$CONF/inference.d/squatted-queue.conf" \
    "$CONF/inference.d/squatted-device.conf" "$CONF/inference.d/mapped.conf"
mkdir -m 1777 "$WORLD/squat"
as infsquat python3 "$PS_SRC/tests/lib/tcp_sink.py" 127.0.0.1:8003 "$WORLD/squat/got" > "$WORLD/squat.out" 2>&1 &
WORLD_PIDS+=($!)
as infsquat python3 "$PS_SRC/tests/lib/tcp_sink.py" 127.0.0.1:8005 "$WORLD/squat/got-queued" --accept-after 13 \
    > "$WORLD/squat-queue.out" 2>&1 &
WORLD_PIDS+=($!)
as infsquat python3 "$PS_SRC/tests/lib/tcp_sink.py" 169.254.7.7:8006 "$WORLD/squat/got-device" --device lo \
    > "$WORLD/squat-device.out" 2>&1 &
WORLD_PIDS+=($!)
as infbk python3 "$PS_SRC/tests/lib/inference_fake_backend.py" --listen 127.0.0.1:8004 \
    --record "$WORLD/squat/own.jsonl" --key "$INF_KEY" > "$WORLD/squat/own.out" 2>&1 &
WORLD_PIDS+=($!)
for _ in $(seq 100); do
    grep -q listening "$WORLD/squat.out" && grep -q listening "$WORLD/squat/own.out" &&
        grep -q listening "$WORLD/squat-device.out" && break
    sleep 0.05
done
grep -q listening "$WORLD/squat-device.out" || fail "device-bound squatter did not start: $(cat "$WORLD/squat-device.out")"
grep -q listening "$WORLD/squat.out" || fail "squatter did not start: $(cat "$WORLD/squat.out")"
grep -q listening "$WORLD/squat/own.out" || fail "infbk's backend did not start: $(cat "$WORLD/squat/own.out")"
proxy_profile 10-h.conf "[Match]
Group=infhgrp
[Inference]
Models=fast loc big gz sq sqq sqd own mapped"
"$PS_BUILD/sandboxctl" -c "$CONF" check >/dev/null || { "$PS_BUILD/sandboxctl" -c "$CONF" check; fail "config"; }
proxy_start

# --- http://localhost: reached on loopback, never resolved ---
r=$(inf_req infh --req '{"path":"/v1/chat/completions","body":{"model":"loc","messages":[]}}')
assert_eq "http://localhost backend answers" 200 "$(jq -r '.responses[0].status' <<<"$r")"
assert_eq "  ... and no resolver was asked for localhost" 0 "$(dns_upstream_count localhost)"

# --- a squatted http:// backend port: the request (and the key) never leaves proxyd ---
r=$(inf_req infh --req '{"path":"/v1/chat/completions","body":{"model":"sq","messages":[]}}')
assert_eq "a backend port held by a local account that is not sandboxed" 502 "$(jq -r '.responses[0].status' <<<"$r")"
l=$(proxy_log_last '"model":"sq"')
assert_match "  ... refused for its owner, logged" '"reason":"backend_owner_mismatch"' "$l"
assert_match "  ... the log names the owner's uid" '"backend_owner_uid":59583' "$l"
sleep 0.5
assert_eq "  ... the squatter received nothing at all" 0 "$(stat -c %s "$WORLD/squat/got" 2>/dev/null || echo missing)"
assert_match "  ... though proxyd did connect to it" "accepted" "$(cat "$WORLD/squat.out")"
# The accept queue: the connection is up as soon as the kernel completes the handshake, before the
# squatter's process has it, and the kernel names no owner for it until then.  And a squatter on
# an address of this host that binds its sockets to a device: sock_diag finds no socket for the
# connection at all, which must not pass for a remote backend.  Both are waited for until the
# connect deadline (10 s, side by side), and never written to.
inf_req infh --req '{"path":"/v1/chat/completions","body":{"model":"sqq","messages":[]}}' > "$WORLD/sqq.json" &
q1=$!
inf_req infh --req '{"path":"/v1/chat/completions","body":{"model":"sqd","messages":[]}}' > "$WORLD/sqd.json" &
q2=$!
wait "$q1" "$q2"
assert_eq "a squatter that leaves the connection in its accept queue" 504 "$(jq -r '.responses[0].status' "$WORLD/sqq.json")"
assert_match "  ... refused as an unknown owner, logged" '"reason":"backend_owner_unknown"' "$(proxy_log_last '"model":"sqq"')"
assert_eq "a squatter whose sockets are bound to a device" 504 "$(jq -r '.responses[0].status' "$WORLD/sqd.json")"
assert_match "  ... refused as an unknown owner, logged" '"reason":"backend_owner_unknown"' "$(proxy_log_last '"model":"sqd"')"
for _ in $(seq 100); do grep -q accepted "$WORLD/squat-queue.out" && break; sleep 0.1; done
sleep 0.5
assert_match "  ... the queueing squatter accepted the connection later" "accepted" "$(cat "$WORLD/squat-queue.out")"
assert_eq "  ... and found nothing in it" 0 "$(stat -c %s "$WORLD/squat/got-queued" 2>/dev/null || echo missing)"
assert_match "  ... the device-bound squatter had the connection" "accepted" "$(cat "$WORLD/squat-device.out")"
assert_eq "  ... and found nothing in it" 0 "$(stat -c %s "$WORLD/squat/got-device" 2>/dev/null || echo missing)"
r=$(inf_req infh --req '{"path":"/v1/chat/completions","body":{"model":"mapped","messages":[]}}')
assert_eq "root's backend written as http://[::ffff:127.0.0.1]" 200 "$(jq -r '.responses[0].status' <<<"$r")"
r=$(inf_req infh --req '{"path":"/v1/chat/completions","body":{"model":"own","messages":[]}}')
assert_eq "a backend run by its BackendUser= account" 200 "$(jq -r '.responses[0].status' <<<"$r")"
assert_eq "  ... received the request with the key" "Bearer $INF_KEY" \
    "$(grep '"path"' "$WORLD/squat/own.jsonl" | tail -n 1 | jq -r .headers.authorization)"

# --- an account holding request bodies open (heads with a 10 MB Content-Length, no body) ---
# Each is reserved whole at its head; an account holds at most 64 MiB of request bodies, so the
# seventh is refused at once, another account is still served, and closing gives the bytes back.
hold() { as "$1" timeout 60 python3 "$PS_SRC/tests/lib/inference_hold_bodies.py" --ca "$CONF/ca/inference-ca.pem" "${@:2}"; }
r=$(hold infh --hold 7 --length 10000000 --after)
# (the seventh head to reach proxyd: heads sent in turn on seven connections may be read in any order)
assert_eq "six 10 MB bodies in transit are waited for" 6 "$(jq '[.held[] | select(. == null)] | length' <<<"$r")"
assert_eq "the seventh is refused at its head" "429 request_bodies_account_limit" \
    "$(jq -r '[.held, .reasons] | transpose | map(select(.[0] != null)) | map("\(.[0]) \(.[1])") | join(",")' <<<"$r")"
assert_eq "with the held ones closed, the account's next request is served" 200 "$(jq -r .after <<<"$r")"
assert_match "the refusal logged" '"reason":"request_bodies_account_limit"' "$(proxy_log_last '"uid":59581' '"decision":"deny"')"
# while infh holds six, infh2 (same profile, another account) is served
as infh timeout 30 python3 "$PS_SRC/tests/lib/inference_hold_bodies.py" --ca "$CONF/ca/inference-ca.pem" \
    --hold 6 --length 10000000 --wait 8 > "$WORLD/hold6.json" &
holder=$!
sleep 2
r=$(inf_req infh2 --req '{"path":"/v1/chat/completions","body":{"model":"fast","messages":[]}}')
assert_eq "another account, while one holds its whole share" 200 "$(jq -r '.responses[0].status' <<<"$r")"
wait "$holder"
assert_eq "  ... and infh's six were still held meanwhile" "null,null,null,null,null,null" "$(jq -r '.held | map(tostring) | join(",")' "$WORLD/hold6.json")"

# --- an encoded answer (we ask for identity) cannot be checked for the key: withheld ---
r=$(inf_req infh --req '{"path":"/v1/chat/completions","body":{"model":"gz","messages":[]}}')
assert_eq "a gzip answer quoting the key" 502 "$(jq -r '.responses[0].status' <<<"$r")"
assert_match "  ... withheld as encoded, logged" '"reason":"backend_answer_encoded"' "$(proxy_log_last '"model":"gz"')"

# --- large non-streamed answers: held whole, so they count in the same budget ---
# Alone, a 20 MiB answer is passed on, and its usage (the last object) is logged without the
# answer being parsed whole.  With 50 MB of request bodies held by the account, it is not.
r=$(inf_req infh --timeout 60 --req '{"path":"/v1/chat/completions","body":{"model":"big","messages":[]}}')
assert_eq "a 20 MiB answer" 200 "$(jq -r '.responses[0].status' <<<"$r")"
assert_match "  ... its usage logged" '"input_tokens":4242' "$(proxy_log_last '"model":"big"')"
as infh timeout 40 python3 "$PS_SRC/tests/lib/inference_hold_bodies.py" --ca "$CONF/ca/inference-ca.pem" \
    --hold 5 --length 10000000 --wait 15 > "$WORLD/hold5.json" &
holder=$!
sleep 2
r=$(inf_req infh --timeout 60 --req '{"path":"/v1/chat/completions","body":{"model":"big","messages":[]}}')
assert_eq "a 20 MiB answer while 50 MB of bodies are held" 502 "$(jq -r '.responses[0].status' <<<"$r")"
assert_match "  ... withheld for the budget, logged" '"reason":"backend_answers_over_budget"' "$(proxy_log_last '"model":"big"')"
r=$(inf_req infh2 --timeout 60 --req '{"path":"/v1/chat/completions","body":{"model":"big","messages":[]}}')
assert_eq "  ... while another account's is passed on" 200 "$(jq -r '.responses[0].status' <<<"$r")"
wait "$holder"

# --- a client that pipelines requests and never reads the answers ---
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$PROXYD_PID/status"; }
before=$(rss)
sent=$(as infh timeout 20 python3 -c '
import os, socket, ssl, sys, threading, time
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(b"CONNECT inference.local:443 HTTP/1.1\r\nHost: inference.local:443\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
ctx = ssl.create_default_context(cafile=sys.argv[1])
t = ctx.wrap_socket(s, server_hostname="inference.local")
req = b"GET /v1/models HTTP/1.1\r\nHost: inference.local\r\n\r\n" * 256
sent = [0]
def flood():
    while True:
        t.sendall(req); sent[0] += len(req)
threading.Thread(target=flood, daemon=True).start()
time.sleep(4)
print(sent[0], flush=True)
os._exit(0)' "$CONF/ca/inference-ca.pem")
after=$(rss)
[ -n "$sent" ] || fail "the flooding client did not run"
[ "$sent" -lt $((24 << 20)) ] || fail "proxyd kept taking pipelined requests nobody read: $sent bytes in 4 s"
ok "pipelined requests stop being taken while their answers are unread ($sent bytes sent in 4 s)"
# (Under ASan freed memory sits in its quarantine, so RSS says nothing there; the bytes above do.)
if [ "${PS_SAN:-0}" != 1 ]; then
    [ $((after - before)) -lt $((32 << 10)) ] || fail "proxyd grew by $((after - before)) KiB under the flood"
    ok "  ... and proxyd's memory stays bounded (+$((after - before)) KiB)"
fi
r=$(inf_req infh --req '{"method":"GET","path":"/v1/models"}')
assert_eq "the next client is served" 200 "$(jq -r '.responses[0].status' <<<"$r")"

# --- a model name of control characters: the decision record stays one JSON object ---
ctl=$(printf '\\u0001%.0s' $(seq 200))
r=$(inf_req infh --req '{"path":"/v1/chat/completions","body":{"model":"'"$ctl"'","messages":[]}}')
assert_match "unknown model refused" '^40[34]$' "$(jq -r '.responses[0].status' <<<"$r")"
sleep 0.2
l=$(proxy_log_last '"mode":"inference"' '"model":"\u0001\u0001\u0001')
assert_match "the control-character model's refusal is logged" '"reason":"model_not_(found|allowed)"' "$l"
bad=$(python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        json.loads(line)
    except ValueError:
        print(line[:400])' "$WORLD/decisions.jsonl")
[ -z "$bad" ] || fail "decision records that do not parse: $(head -c 400 <<<"$bad")"
ok "every decision record parses, the control-character model's included"

# --- a reload that moves a backend but cannot load its new key ---
# sandboxctl check only checks the key file's mode; proxyd refuses a key with a space in it, keeps
# the keys it had, and must then not send the old key to the backend's new address.
printf 'Bearer sk-new key\n' > "$CONF/secrets/new.key"; chmod 600 "$CONF/secrets/new.key"
printf '[Backend]\nURL=http://203.0.113.66:80/v1\nAPI=openai\nAPIKeyFile=%s\nModels=fast=gpt-4o-mini\n' \
    "$CONF/secrets/new.key" > "$CONF/inference.d/openai.conf"
: > "$SYSLOG"
kill -HUP "$PROXYD_PID"
for _ in $(seq 50); do grep -q 'reloaded configuration' "$SYSLOG" && break; sleep 0.1; done
assert_match "reload took the new configuration" 'reloaded configuration' "$(cat "$SYSLOG")"
r=$(inf_req infh --req '{"path":"/v1/chat/completions","body":{"model":"fast","messages":[]}}')
assert_eq "a moved backend without its new key: 503" 503 "$(jq -r '.responses[0].status' <<<"$r")"
l=$(proxy_log_last '"mode":"inference"' '"model":"fast"' '"status":503')
assert_match "  ... logged as such" '"reason":"backend_key_unavailable"' "$l"
sleep 0.3
assert_eq "  ... and the new address got no request" 0 "$(grep -c '"path"' "$ATTACKER_LOG")"
r=$(inf_req infh --req '{"path":"/v1/chat/completions","body":{"model":"loc","messages":[]}}')
assert_eq "an unchanged backend still works" 200 "$(jq -r '.responses[0].status' <<<"$r")"
inf_secrets_absent "$ATTACKER_LOG"

kill -0 "$PROXYD_PID" || fail "proxyd died"
proxy_done
