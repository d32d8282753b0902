#!/usr/bin/env bash
# inference.local overhead (issue 5 targets: under 2 ms added to the time to first byte, under 1 ms
# added per streamed event), measured side by side in a private world with the real sandbox-proxyd
# and the fake backend (tests/lib/inference_fake_backend.py, https, in the upstream namespace):
#   - time to first byte of a chat completion, calling the backend directly versus through
#     interception (explicit CONNECT inference.local:443, TLS to proxyd's leaf, proxyd's own
#     connection and TLS to the backend): "cold" from a new connection, "warm" on a kept-alive one;
#   - per-event delay of a stream: arrival at the client minus the time the backend sent the
#     event (one clock), directly versus through interception.
# Figures are printed as markdown, never asserted.  Use: bench/inference.sh [ROUNDS] [EVENTS]
set -u
ROUNDS=${1:-${PS_BENCH_ROUNDS:-100}}
export INF_EVENTS=${2:-50} INF_DELAY=0.01
. "$(dirname "$0")/../tests/lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/inference_world.sh"
command -v jq >/dev/null || skip "jq missing"

world_add_user infbench 59890
inference_world >&2
proxy_profile 10-bench.conf "[Match]
User=infbench
[Inference]
Models=fast"
proxy_start >&2
B="$PS_SRC/tests/lib/inference_bench.py"
CA="$CONF/ca/inference-ca.pem"
bench() { as infbench python3 "$B" "$@"; }
direct=(--connect 203.0.113.10:8443 --host llm.test --ca "$PROXY_CA" --auth "$INF_KEY")
proxied=(--proxy "$PROXY_EXPLICIT" --host inference.local --ca "$CA")

echo "time to first byte: $ROUNDS rounds each" >&2
bench ttfb "${direct[@]}" --rounds 5 --body '{"model":"gpt-4o-mini","messages":[]}' >/dev/null   # warm-up
bench ttfb "${proxied[@]}" --rounds 5 >/dev/null
d=$(bench ttfb "${direct[@]}" --rounds "$ROUNDS" --body '{"model":"gpt-4o-mini","messages":[]}') || fail "direct ttfb"
p=$(bench ttfb "${proxied[@]}" --rounds "$ROUNDS") || fail "proxied ttfb"

# Per-event delay: arrival minus the backend's send time of the same event.
events_delay() {   # $1: client JSON, $2: backend events recorded before; prints median and p90 (ms)
    local n; n=$(jq '.arrivals | length' <<<"$1")
    sleep 0.3                      # the backend records an event just after sending it
    jq -n --argjson c "$1" --slurpfile r <(grep event_sent "$INF_REC" | tail -n "+$(($2 + 1))" | head -n "$n") '
        [range(0; $c.arrivals | length) | ($c.arrivals[.] - $r[.].t) * 1000] | sort
        | {median: .[length / 2 | floor], p90: .[length * 0.9 | floor], n: length}'
}
echo "stream: $INF_EVENTS events, ${INF_DELAY}s apart" >&2
n0=$(grep -c event_sent "$INF_REC")
s=$(bench stream "${direct[@]}" --body '{"model":"gpt-4o-mini","stream":true,"messages":[]}') || fail "direct stream"
sd=$(events_delay "$s" "$n0")
n0=$(grep -c event_sent "$INF_REC")
s=$(bench stream "${proxied[@]}" --body '{"model":"fast","stream":true,"messages":[]}') || fail "proxied stream"
sp=$(events_delay "$s" "$n0")

f() { jq -r "$2" <<<"$1"; }
cat <<EOT
inference.local interception versus calling the test backend directly (python clients, the fake
backend over https in the upstream namespace; medians, p90 in brackets; ms).

| measure | direct to backend | through inference.local | added | target |
|---|---|---|---|---|
| time to first byte, new connection (TCP+TLS+request) | $(f "$d" .cold_median_ms) ($(f "$d" .cold_p90_ms)) | $(f "$p" .cold_median_ms) ($(f "$p" .cold_p90_ms)) | $(jq -rn --argjson a "$d" --argjson b "$p" '$b.cold_median_ms - $a.cold_median_ms | . * 1000 | round / 1000') | < 2 |
| time to first byte, kept-alive connection | $(f "$d" .warm_median_ms) ($(f "$d" .warm_p90_ms)) | $(f "$p" .warm_median_ms) ($(f "$p" .warm_p90_ms)) | $(jq -rn --argjson a "$d" --argjson b "$p" '$b.warm_median_ms - $a.warm_median_ms | . * 1000 | round / 1000') | < 2 |
| per-event delay of a stream ($INF_EVENTS events) | $(f "$sd" '.median | . * 1000 | round / 1000') ($(f "$sd" '.p90 | . * 1000 | round / 1000')) | $(f "$sp" '.median | . * 1000 | round / 1000') ($(f "$sp" '.p90 | . * 1000 | round / 1000')) | $(jq -rn --argjson a "$sd" --argjson b "$sp" '$b.median - $a.median | . * 1000 | round / 1000') | < 1 |

Through inference.local a new connection costs a CONNECT round trip and a second TLS handshake
(client to proxyd) on top of proxyd's own connection and handshake to the backend; on a kept-alive
client connection proxyd still opens a new backend connection per request.  $ROUNDS rounds each.
EOT
