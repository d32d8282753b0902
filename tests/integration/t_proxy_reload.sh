#!/usr/bin/env bash
# Configuration lifecycle of the real sandbox-proxyd: -t checks a config (FILE:LINE errors, exit
# 1); the pid file is root's and not held open; SIGHUP (to the pid in it, as sandboxctl apply sends it) applies a valid new config
# to new connections while an open tunnel keeps working; an invalid one is rejected with the error
# logged and the old config kept; SIGTERM stops it with status 0.  With a root-only secret in the
# config, the privileged helper judges a reload: invalid is rejected with the real errors; valid
# is applied in place (same process, open tunnels kept) with the secrets the helper handed over,
# a rotated key included; a secret that cannot be handed over makes proxyd exit 75 to be
# restarted (never a stale policy).  UIDs 59530-59539.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/proxy_world.sh"

world_add_user rlbox 59531
proxy_world allowed.test=A:203.0.113.10 later.test=A:203.0.113.10
profile_v1="[Match]
User=rlbox
[Network]
Allow=allowed.test:80"
proxy_profile 10-box.conf "$profile_v1"

# -t: valid, then invalid (a typo in a security file is an error, with its place)
out=$("$PS_BUILD/sandbox-proxyd" -t -c "$CONF" 2>&1); rc=$?
assert_eq "-t on a valid config" 0 "$rc"
assert_match "-t says OK" 'configuration OK' "$out"
cp -a "$CONF" "$WORLD/bad"
printf '[Match]\nUser=rlbox\n[Network]\nAlow=later.test:80\n' > "$WORLD/bad/profiles/10-box.conf"
out=$("$PS_BUILD/sandbox-proxyd" -t -c "$WORLD/bad" 2>&1); rc=$?
assert_eq "-t on an invalid config" 1 "$rc"
assert_match "-t names FILE:LINE" '10-box.conf:4: ' "$out"

proxy_start
pidf=/run/pam_sandbox/proxyd.pid
assert_eq "pid file" "$PROXYD_PID" "$(cat $pidf)"
# root signals that pid: the unprivileged daemon must hold no way to rewrite the file
for f in /proc/$PROXYD_PID/fd/*; do [ "$(readlink "$f")" = "$pidf" ] && fail "proxyd keeps the pid file open"; done
ok "pid file not held open by the daemon"
[ "$(stat -c %U $pidf)" = root ] || fail "pid file not owned by root"
ok "pid file owned by root"
code=$(pcurl rlbox -o /dev/null -w '%{http_code}' http://later.test/hello)
assert_eq "later.test denied under v1" 403 "$code"

# A tunnel opened under v1 (to allowed.test), held across the reloads.
SCR=/tmp/ps-scratch/rl; mkdir -p $SCR; chmod 1777 $SCR
mkfifo "$WORLD/hold"
as rlbox python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(b"CONNECT allowed.test:80 HTTP/1.1\r\nHost: allowed.test:80\r\n\r\n")
print(s.recv(4096).split(b"\r\n")[0].decode(), flush=True)
sys.stdin.readline()
s.sendall(b"GET /hello HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
d = b""
while b"hello from origin" not in d:
    x = s.recv(4096)
    if not x: break
    d += x
print("tunnel:", d.split(b"\r\n\r\n", 1)[-1].decode().strip(), flush=True)
' < "$WORLD/hold" > "$SCR/tunnel.out" 2>&1 &
TPID=$!
exec 9> "$WORLD/hold"
for _ in $(seq 50); do [ -s "$SCR/tunnel.out" ] && break; sleep 0.1; done
assert_eq "tunnel open under v1" "HTTP/1.1 200 Connection established" "$(head -n 1 "$SCR/tunnel.out")"

# A kept-alive plain-HTTP connection opened under v1: each request on it is judged by the
# configuration in force when that request arrives.
mkfifo "$WORLD/hold_ka"
as rlbox timeout 30 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", 3128))
def get(host):
    s.sendall(b"GET http://%s/hello HTTP/1.1\r\nHost: %s\r\n\r\n" % (host, host))
    d = b""
    while b"\r\n\r\n" not in d:
        x = s.recv(4096)
        if not x: sys.exit("connection closed")
        d += x
    h, _, b = d.partition(b"\r\n\r\n")
    n = int([l.split(b":")[1] for l in h.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(b) < n: b += s.recv(4096)
    print(host.decode(), h.split(b"\r\n")[0].decode(), flush=True)
get(b"allowed.test")
sys.stdin.readline()
get(b"later.test")
get(b"allowed.test")
' < "$WORLD/hold_ka" > "$SCR/ka.out" 2>&1 &
KPID=$!
exec 8> "$WORLD/hold_ka"
for _ in $(seq 50); do [ -s "$SCR/ka.out" ] && break; sleep 0.1; done
assert_eq "kept-alive connection: allowed.test under v1" "allowed.test HTTP/1.1 200 OK" "$(head -n 1 "$SCR/ka.out")"

# --- valid reload: later.test allowed, allowed.test no longer ---
proxy_profile 10-box.conf "[Match]
User=rlbox
[Network]
Allow=later.test:80"
kill -HUP "$(cat $pidf)"
for _ in $(seq 50); do grep -q 'reloaded configuration' "$SYSLOG" && break; sleep 0.1; done
assert_match "reload logged" 'reloaded configuration' "$(cat "$SYSLOG")"
assert_eq "later.test allowed after reload" "hello from origin" "$(pcurl rlbox http://later.test/hello)"
l=$(proxy_log_last '"host":"later.test"' '"decision":"allow"')
assert_match "decided by the new rule" '"rule":"[^"]*10-box.conf:4"' "$l"
code=$(pcurl rlbox -o /dev/null -w '%{http_code}' http://allowed.test/hello)
assert_eq "allowed.test denied for new connections" 403 "$code"
echo go >&8; exec 8>&-
wait $KPID
assert_eq "the kept-alive connection's next requests follow the new profile" "allowed.test HTTP/1.1 200 OK
later.test HTTP/1.1 200 OK
allowed.test HTTP/1.1 403 Forbidden" "$(cat "$SCR/ka.out")"

# --- invalid reload: rejected, error logged with its place, old (v2) config stays ---
printf '[Match]\nUser=rlbox\n[Network]\nAllow=later.test:80\nAllow=evil.test:99999\n' > "$CONF/profiles/10-box.conf"
kill -HUP "$PROXYD_PID"
for _ in $(seq 50); do grep -q 'old one stays in force' "$SYSLOG" && break; sleep 0.1; done
assert_match "invalid config rejected" 'the new configuration is invalid; the old one stays in force' "$(cat "$SYSLOG")"
assert_match "error logged with FILE:LINE" 'config: [^ ]*10-box.conf:5: ' "$(cat "$SYSLOG")"
kill -0 "$PROXYD_PID" || fail "proxyd died on an invalid reload"
assert_eq "old config still in force" "hello from origin" "$(pcurl rlbox http://later.test/hello)"

# The tunnel opened under v1 still works (its snapshot stays alive until it closes).
echo go >&9; exec 9>&-
wait $TPID
assert_eq "tunnel from before the reloads still relays" "tunnel: hello from origin" "$(tail -n 1 "$SCR/tunnel.out")"

# --- SIGTERM: clean stop ---
proxy_done

# --- root-only files (an APIKeyFile=, mode 0600): the unprivileged daemon cannot read them on
# SIGHUP; the privileged helper judges the new configuration instead ---
mkdir -p "$CONF/secrets"; chmod 755 "$CONF/secrets"
echo "sk-test-not-a-real-key" > "$CONF/secrets/api.key"; chmod 600 "$CONF/secrets/api.key"
cat > "$CONF/inference.d/local.conf" <<EOB
[Backend]
URL=http://203.0.113.10:8080/v1
API=openai
APIKeyFile=$CONF/secrets/api.key
Models=m1
EOB
chmod 644 "$CONF/inference.d/local.conf"
: > "$SYSLOG"
proxy_profile 10-box.conf "[Match]
User=rlbox
[Network]
Allow=later.test:80"
proxy_start
assert_eq "started as root with a root-only key file" "hello from origin" "$(pcurl rlbox http://later.test/hello)"
# invalid: the errors reported are the real ones (from the helper), not "Permission denied"
printf '[Match]\nUser=rlbox\n[Network]\nAllow=later.test:80\nAllow=evil.test:99999\n' > "$CONF/profiles/10-box.conf"
kill -HUP "$PROXYD_PID"
for _ in $(seq 50); do grep -q 'old one stays in force' "$SYSLOG" && break; sleep 0.1; done
assert_match "helper reports the real error" 'config: [^ ]*10-box.conf:5: ' "$(cat "$SYSLOG")"
assert_no_match "no permission error reported as the verdict" 'config: .*Permission denied' "$(cat "$SYSLOG")"
kill -0 "$PROXYD_PID" || fail "proxyd died on an invalid reload"
assert_eq "old config still in force" "hello from origin" "$(pcurl rlbox http://later.test/hello)"
# valid: applied in place by the same process, with the secrets the helper read for it
proxy_profile 10-box.conf "$profile_v1"
: > "$SYSLOG"
kill -HUP "$PROXYD_PID"
for _ in $(seq 50); do grep -q 'reloaded configuration' "$SYSLOG" && break; sleep 0.1; done
assert_match "valid config with root-only secrets: reloaded in place" 'reloaded configuration' "$(cat "$SYSLOG")"
kill -0 "$PROXYD_PID" 2>/dev/null || fail "proxyd exited on a valid reload"
assert_no_match "no restart, no unreadable key" 'status 75|inference.local: .*Permission denied' "$(cat "$SYSLOG")"
code=$(pcurl rlbox -o /dev/null -w '%{http_code}' http://later.test/hello)
assert_eq "the new policy is in force" 403 "$code"
assert_eq "  ... both ways" "hello from origin" "$(pcurl rlbox http://allowed.test/hello)"
# A secret the helper cannot hand over (here: larger than any key, 20 KB): never keep the replaced
# policy; exit 75 so that the service manager starts proxyd again, as root.
head -c 20000 /dev/zero | tr '\0' k > "$CONF/secrets/api.key"
kill -HUP "$PROXYD_PID"
wait "$PROXYD_PID"; rc=$?
assert_eq "a secret that cannot be handed over: exit 75 (restart)" 75 "$rc"
assert_match "restart reason logged" 'could not be handed over' "$(cat "$SYSLOG")"
assert_match "  ... naming the file" "reload: $CONF/secrets/api.key: longer than" "$(cat "$SYSLOG")"
PROXYD_PID=
proxy_start
assert_eq "after the restart the policy is served" "hello from origin" "$(pcurl rlbox http://allowed.test/hello)"
proxy_done
