#!/usr/bin/env bash
# Relay loops (proxyd/relay.c, sandbox-proxyd -j): one loop per CPU by default, the decision loop
# being one; busy tunnels are shared out (the decision loop keeps its share and ties), short ones
# never move; a moved tunnel relays bytes both ways intact, keeps its upkeep (HalfClosedTimeout=),
# survives a reload, and when it ends its close record is written with its bytes and its slot of
# the per-account cap (-m) comes back; SIGTERM with tunnels on relay loops exits cleanly.  Where a
# connection is relayed is read from /proc: the epoll instance that has proxyd's socket registered
# (tests/lib/proxy_epoll_of.py).
# UIDs 59590-59599.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/proxy_world.sh"

world_add_user ruser 59591
proxy_world
echo "HalfClosedTimeout=1s" >> "$CONF/sandbox.conf"     # checked every 250 ms
proxy_profile 10-r.conf "[Match]
User=ruser
[Network]
Allow=203.0.113.10:8095-8096"

# The origin echoes what it reads until the client's EOF; then
#   8095  says nothing more and keeps the connection open (the tunnel ends by HalfClosedTimeout=)
#   8096  closes
proxy_echo_origin "$WORLD/echo-origin.out" 8095:echo-hold 8096:echo-close

relays() { grep -l '^pd-relay' /proc/"$PROXYD_PID"/task/*/comm 2>/dev/null | wc -l; }
where() { python3 "$PS_SRC/tests/lib/proxy_epoll_of.py" "$PROXYD_PID" 3128 "$1"; }
client() { as ruser timeout 40 python3 "$PS_SRC/tests/lib/proxy_relay_client.py" "$@"; }
# wait_port FILE: the port a paused client printed
wait_port() {
    local p
    for _ in $(seq 200); do
        p=$(sed -n 's/^port //p' "$1" 2>/dev/null)
        [ -n "$p" ] && { echo "$p"; return 0; }
        sleep 0.05
    done
    fail "client did not get to its pause: $(cat "$1")"
}
# wait_log FILTER...: the close record (fixed strings), polled: a relay loop hands it back
wait_log() {
    local l
    for _ in $(seq 100); do
        l=$(proxy_log_last '"decision":"close"' "$@")
        [ -n "$l" ] && { echo "$l"; return 0; }
        sleep 0.05
    done
    fail "no close record with $*"
}

# --- the default: one loop per CPU, the decision loop being one of them ---
proxy_start
n=$(python3 -c 'import os; print(len(os.sched_getaffinity(0)))')   # what proxyd counts
want=$(( n < 2 ? 0 : (n > 17 ? 16 : n - 1) ))
assert_eq "one relay loop per further CPU by default ($n CPUs)" "$want" "$(relays)"
proxy_done

# --- -j 1 (two loops), at most 3 connections per account ---
proxy_start -j 1 -m 3
assert_eq "-j 1: one relay loop" 1 "$(relays)"

# Busy tunnels are shared: the first (a tie, 0 and 0) stays, the second goes to the relay loop.
client echo 8095 40 20 "$WORLD/go1" > "$WORLD/kept.out" 2>&1 &
KEPT=$!
pk=$(wait_port "$WORLD/kept.out") || exit 1
assert_eq "the first busy tunnel (40 round trips) is the decision loop's share" decision "$(where "$pk")"
client echo 8095 40 20 "$WORLD/go1" > "$WORLD/busy.out" 2>&1 &
BUSY=$!
pb=$(wait_port "$WORLD/busy.out") || exit 1
assert_eq "the second has moved to the relay loop" relay "$(where "$pb")"
client echo 8096 1 0 "$WORLD/go1" > "$WORLD/short.out" 2>&1 &
SHORT=$!
ps_=$(wait_port "$WORLD/short.out") || exit 1
assert_eq "a short tunnel (1 round trip) stays on the decision loop" decision "$(where "$ps_")"

# a reload while a tunnel is on the relay loop: it goes on under the configuration it began with
# (HalfClosedTimeout=1s, not the reload's 30s: relay loops never read the decision loop's config)
sed -i 's/^HalfClosedTimeout=1s$/HalfClosedTimeout=30s/' "$CONF/sandbox.conf"
grep -q '^HalfClosedTimeout=30s$' "$CONF/sandbox.conf" || fail "could not change HalfClosedTimeout="
hups=$(grep -c "reloaded configuration" "$SYSLOG")
kill -HUP "$PROXYD_PID"
for _ in $(seq 100); do [ "$(grep -c "reloaded configuration" "$SYSLOG")" -gt "$hups" ] && break; sleep 0.05; done
[ "$(grep -c "reloaded configuration" "$SYSLOG")" -gt "$hups" ] || fail "proxyd did not reload"
touch "$WORLD/go1"
wait "$KEPT" "$BUSY" "$SHORT"
for which in kept busy; do
    out=$(cat "$WORLD/$which.out")
    assert_match "the $which tunnel echoes 20 more round trips after the reload" 'rounds=60 ' "$out"
    t=$(sed -n 's/.*eof_after=\([0-9.]*\) .*/\1/p' <<<"$out")
    awk -v t="$t" 'BEGIN { exit !(t >= 0.9 && t < 4) }' ||
        fail "half-closed silent $which tunnel ended after ${t:-never}s, not HalfClosedTimeout=1s later"
    ok "  ... then half-closed and silent: closed after ${t}s, by the timeout it was decided under"
done
assert_match "short tunnel echoed and closed" 'rounds=1 ' "$(cat "$WORLD/short.out")"
for _ in $(seq 100); do
    [ "$(grep -c '"port":8095,.*"decision":"close"' "$WORLD/decisions.jsonl")" -ge 2 ] && break
    sleep 0.05
done
closes=$(grep '"port":8095,.*"decision":"close"' "$WORLD/decisions.jsonl")
assert_eq "two close records for the two busy tunnels, one of them handed back by the relay loop" 2 \
    "$(grep -c '"reason":"half_closed_idle"' <<<"$closes")"
assert_eq "  ... each with every byte both ways (60 x 64)" 2 \
    "$(grep -c '"bytes_up":3840,"bytes_down":3840' <<<"$closes")"

# --- bulk both ways on the relay loop (splice), checked end to end ---
# Both busy tunnels above are gone from the counts, so the next one is the decision loop's again.
client echo 8096 40 0 "$WORLD/go2" > "$WORLD/anchor.out" 2>&1 &
ANCHOR=$!
pa=$(wait_port "$WORLD/anchor.out") || exit 1
assert_eq "ended tunnels no longer count: the next busy one is the decision loop's" decision "$(where "$pa")"
client bulk 8096 32 "$WORLD/go2" > "$WORLD/bulk.out" 2>&1 &
BULK=$!
pb=$(wait_port "$WORLD/bulk.out") || exit 1
assert_eq "a bulk tunnel, half way, is on the relay loop" relay "$(where "$pb")"
touch "$WORLD/go2"
wait "$BULK" "$ANCHOR"
assert_match "32 MiB up and the same 32 MiB echoed down, in order" '^bulk ok 33554432$' \
    "$(grep -v '^port' "$WORLD/bulk.out")"
l=$(wait_log '"port":8096,' '"bytes_up":33556992') || exit 1
assert_match "  ... logged with its bytes (and 40 x 64 before them)" '"bytes_up":33556992,"bytes_down":33556992' "$l"

# --- the per-account cap: slots held by moved tunnels come back when they end ---
for i in 1 2 3; do
    client echo 8096 40 0 "$WORLD/go3" > "$WORLD/cap$i.out" 2>&1 &
    CAP[i]=$!
done
where_all=
for i in 1 2 3; do
    p=$(wait_port "$WORLD/cap$i.out") || exit 1
    where_all+="$(where "$p") "
done
assert_eq "three busy tunnels: one on the relay loop, two the decision loop's (the tie)" "1 2" \
    "$(grep -o relay <<<"$where_all" | wc -l) $(grep -o decision <<<"$where_all" | wc -l)"
out=$(client echo 8096 1 0 "$WORLD/go3" 2>&1)
assert_match "a fourth connection of the account is refused (-m 3)" '^status HTTP/1.1 429' "$out"
touch "$WORLD/go3"
wait "${CAP[@]}"
for i in 1 2 3; do assert_match "capped tunnel $i done" 'rounds=40 ' "$(cat "$WORLD/cap$i.out")"; done
for _ in $(seq 100); do
    [ "$(grep -c '"port":8096,.*"decision":"close"' "$WORLD/decisions.jsonl")" -ge 6 ] && break
    sleep 0.05
done
assert_eq "their close records are in" 6 "$(grep -c '"port":8096,.*"decision":"close"' "$WORLD/decisions.jsonl")"
for i in 1 2 3; do
    client echo 8096 40 0 "$WORLD/go4" > "$WORLD/again$i.out" 2>&1 &
    CAP[i]=$!
done
for i in 1 2 3; do wait_port "$WORLD/again$i.out" >/dev/null; done
touch "$WORLD/go4"
wait "${CAP[@]}"
for i in 1 2 3; do
    assert_match "after those three ended, connection $i of three is served again" 'rounds=40 ' \
        "$(cat "$WORLD/again$i.out")"
done

# --- SIGTERM while a tunnel sits on the relay loop: a clean exit, in bounded time (proxy_done) ---
client echo 8095 40 5 "$WORLD/go5" > "$WORLD/term1.out" 2>&1 &
T1=$!
wait_port "$WORLD/term1.out" >/dev/null
client echo 8095 40 5 "$WORLD/go5" > "$WORLD/term2.out" 2>&1 &
T2=$!
pb=$(wait_port "$WORLD/term2.out") || exit 1
assert_eq "a tunnel is on the relay loop at SIGTERM" relay "$(where "$pb")"
proxy_done
touch "$WORLD/go5"
wait "$T1" "$T2"
# ... and while busy tunnels are still being handed over (SIGTERM lands among the hand-overs at
# some point of their ramp; a relay loop that misses its stop request hangs proxy_done)
touch "$WORLD/go7"
for round in 1 2 3; do
    proxy_start -j 1
    for i in 1 2 3 4 5 6; do
        client echo 8096 $((20 + 15 * i)) 2000 "$WORLD/go7" > "$WORLD/ramp$i.out" 2>&1 &
        RAMP[i]=$!
    done
    sleep 0.$((2 * round))
    proxy_done
    wait "${RAMP[@]}" 2>/dev/null
done

# --- -j 0: no relay loops, busy tunnels stay where they were decided ---
proxy_start -j 0
assert_eq "-j 0: no relay loops" 0 "$(relays)"
for i in 1 2; do
    client echo 8096 40 5 "$WORLD/go6" > "$WORLD/none$i.out" 2>&1 &
    NONE[i]=$!
    p=$(wait_port "$WORLD/none$i.out") || exit 1
    assert_eq "without relay loops busy tunnel $i stays on the decision loop" decision "$(where "$p")"
done
touch "$WORLD/go6"
wait "${NONE[@]}"
for i in 1 2; do assert_match "  ... and works as before ($i)" 'rounds=45 ' "$(cat "$WORLD/none$i.out")"; done
proxy_done
