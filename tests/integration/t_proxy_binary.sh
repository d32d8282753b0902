#!/usr/bin/env bash
# binary= rules (DESIGN.md §5.2): proxyd finds the executable that owns the client's socket (by
# its inode, through a helper that keeps only CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH while the
# proxy keeps nothing), allows the named binary, refuses another one, and refuses when processes
# with different executables share the socket.  Explicit and transparent.  UIDs 59540-59549.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/proxy_world.sh"

world_add_user bnbox 59541
proxy_world
CURL=$(readlink -f "$(command -v curl)")
PY=$(readlink -f /usr/bin/python3)   # the system one: a user can read and run it
proxy_profile 10-box.conf "[Match]
User=bnbox
[Network]
Allow=203.0.113.10:8080 binary=$CURL
Allow=203.0.113.10:80
Allow=[2001:db8::10]:80 binary=$PY"
proxy_start
proxy_nft 59541

helper=$(pgrep -P "$PROXYD_PID" | head -n 1)
[ -n "$helper" ] || fail "no binary helper process"
assert_match "helper keeps only CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH" 'CapEff:[[:space:]]+0000000000080004' "$(cat /proc/$helper/status)"
assert_match "helper bounding set likewise" 'CapBnd:[[:space:]]+0000000000080004' "$(cat /proc/$helper/status)"
assert_match "proxy itself: no capabilities" 'CapEff:[[:space:]]+0000000000000000' "$(cat /proc/$PROXYD_PID/status)"

pyget() { as bnbox "$PY" -c '
import sys, urllib.request
h = urllib.request.ProxyHandler({"http": sys.argv[2]} if sys.argv[2] else {})
try:
    print(urllib.request.build_opener(h).open(sys.argv[1], timeout=5).read().decode().strip())
except urllib.error.HTTPError as e:
    print(e.code, e.headers.get("X-Sandbox-Deny"))
except Exception as e:
    print("error", type(e).__name__)' "$1" "${2:-}"; }

# explicit
assert_eq "curl (named binary) allowed" "hello from origin" "$(pcurl bnbox http://203.0.113.10:8080/hello)"
l=$(proxy_log_last '"port":8080' '"decision":"allow"')
assert_match "allow logged with the binary" "\"binary\":\"$CURL\"" "$l"
assert_eq "python (another binary) refused" "403 binary_mismatch" "$(pyget http://203.0.113.10:8080/hello http://127.0.0.1:3128)"
l=$(proxy_log_last '"port":8080' '"decision":"deny"')
assert_match "denial logged with the binary" "\"reason\":\"binary_mismatch\".*\"binary\":\"$PY\"" "$l"
assert_eq "python on a rule without binary=" "hello from origin" "$(pyget http://203.0.113.10/hello http://127.0.0.1:3128)"

# transparent
assert_eq "curl transparent allowed" "hello from origin" "$(tcurl bnbox http://203.0.113.10:8080/hello)"
out=$(pyget http://203.0.113.10:8080/hello)
assert_match "python transparent refused (reset)" "^error (URLError|ConnectionResetError)" "$out"
l=$(proxy_log_last '"mode":"transparent"' '"port":8080' '"decision":"deny"')
assert_match "transparent denial names the binary" "\"reason\":\"binary_mismatch\".*\"binary\":\"$PY\"" "$l"

# ambiguous: python connects, then shares the socket with a child running another executable
out=$(as bnbox "$PY" -c '
import socket, subprocess, time
s = socket.create_connection(("127.0.0.1", 3128))
child = subprocess.Popen(["sleep", "20"], pass_fds=[s.fileno()])
time.sleep(0.2)
s.sendall(b"CONNECT 203.0.113.10:8080 HTTP/1.1\r\nHost: x\r\n\r\n")
d = s.recv(4096).decode("latin-1")
child.kill()
print(d.split("\r\n")[0], [l for l in d.split("\r\n") if l.startswith("X-Sandbox-Deny")])')
assert_eq "shared socket, different executables: refused" "HTTP/1.1 403 Forbidden ['X-Sandbox-Deny: binary_ambiguous']" "$out"

# The attack: the allowed program makes one request on a kept-alive connection, then hands the
# socket to another program (here perl, inheriting it) and lets go of it.  The second request is
# judged by its own owner, not by the first one's.
out=$(as bnbox "$PY" -c '
import socket, subprocess
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(b"GET http://[2001:db8::10]/hello HTTP/1.1\r\nHost: [2001:db8::10]\r\n\r\n")
d = b""
while b"hello from origin\n" not in d:
    x = s.recv(4096)
    if not x: break
    d += x
print("python:", d.split(b"\r\n")[0].decode(), "hello from origin" in d.decode())
child = subprocess.Popen(["perl", "-e", r"""
open(my $s, "+<&=", $ARGV[0]) or die "fd: $!";
select((select($s), $| = 1)[0]);
sleep 1;                                   # python has let go of the socket by then
print $s "GET http://[2001:db8::10]/hello HTTP/1.1\r\nHost: [2001:db8::10]\r\n\r\n";
my $l = <$s>; $l =~ s/\r?\n//; print "perl: $l";
while (<$s>) { last if /^\r?$/; print " $1" if /^X-Sandbox-Deny: (\S+)/ }
print "\n";
""", str(s.fileno())], pass_fds=[s.fileno()])
s.close()
child.wait()')
assert_match "the allowed program on a kept-alive connection" '^python: HTTP/1.1 200 OK True' "$out"
assert_match "the next request, from the program the socket went to, is refused" \
    'perl: HTTP/1.1 403 Forbidden binary_mismatch' "$out"
l=$(proxy_log_last '"host":"2001:db8::10"' '"decision":"deny"')
assert_match "judged as perl's, logged" "\"reason\":\"binary_mismatch\".*\"binary\":\"$(readlink -f "$(command -v perl)")\"" "$l"

# sandboxctl denials turns the binary_mismatch into the rule that would permit it: that port,
# for that program
out=$("$PS_BUILD/sandboxctl" -c "$CONF" denials bnbox)
assert_match "denials suggests Allow= with binary= of the program" \
    "Allow=203.0.113.10:8080 binary=$PY    # \[Network\] of profiles/10-box.conf" "$out"

# The program's path is the user's to choose: a directory named with a newline and a rule, or a
# terminal escape, must neither reach root's terminal raw nor become a line to paste.
t=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
printf '{"time":"%s","account":"bnbox\\u001b]2;owned\\u0007","uid":59541,"profile":"10-box","mode":"explicit","host":"203.0.113.10","port":8080,"address":"203.0.113.10","decision":"deny","reason":"binary_mismatch","rule":"default","binary":"/tmp/x\\n        Allow=evil.example:443 binary=/bin/sh"}\n' "$t" > "$WORLD/crafted.jsonl"
printf '{"time":"%s","account":"bnbox","uid":59541,"profile":null,"mode":"dns","host":null,"port":0,"address":null,"decision":"suppressed","reason":"deny_rate_limit","rule":null,"binary":null,"count":500}\n' "$t" >> "$WORLD/crafted.jsonl"
out=$("$PS_BUILD/sandboxctl" -c "$CONF" denials --log "$WORLD/crafted.jsonl")
assert_match "denials over proxyd's rate limit are counted" '^500 more denials were not logged' "$out"
assert_no_match "no raw escape or bell on the terminal" $'[\x1b\x07]' "$out"
assert_match "shown escaped" 'bnbox\\x1b\]2;owned\\x07' "$out"
assert_no_match "no forged rule line" '^ +Allow=evil' "$out"
assert_match "no rule suggested for such a path" 'no rule suggested' "$out"
proxy_done
