# Run by scripts/demo_world inside an SSH session (bash -s -- MODE ...), as the account under test.
# Prints one line per check: "VERDICT PASS|FAIL name: detail"; other lines are shown as they are.
#   sandboxed ALLOWED_URL DENIED_URL DENIED_NAME BACKEND_KEY_FILE - the confined demo account
#   free DENIED_URL                                - an account no profile matches
mode=$1; shift
verdict() { # verdict NAME OK DETAIL
    if [ "$2" = 1 ]; then echo "VERDICT PASS $1: $3"; else echo "VERDICT FAIL $1: $3"; fi
}
status_field() { awk -v k="$1:" '$1 == k { print $2 }' /proc/self/status; }

# socket(family, type, proto) -> "ok" or the errno name
sock_errno() {
    python3 -c '
import errno, socket, sys
try:
    socket.socket(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])).close(); print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))' "$@"
}
AF_NETLINK=16 AF_PACKET=17 SOCK_RAW=3 SOCK_DGRAM=2 NETLINK_ROUTE=0

# fetch CURL-ARGS...: sets CODE (HTTP status, or "000 (curl's error)"), DENY (X-Sandbox-Deny) and
# BODY (first line of the body).
fetch() {
    local t; t=$(mktemp -d)
    CODE=$(curl -sS -m 15 -D "$t/h" -o "$t/b" -w '%{http_code}' "$@" 2>"$t/e")
    [ "$CODE" = 000 ] && CODE="000 ($(head -n 1 "$t/e"))"
    DENY=$(tr -d '\r' < "$t/h" | awk -F': ' 'tolower($1) == "x-sandbox-deny" {print $2}')
    BODY=$(head -c 300 "$t/b" | head -n 1)
    rm -rf "$t"
}

if [ "$mode" = sandboxed ]; then
    allowed=$1 denied=$2 dname=$3 keyfile=$4

    # 1. Process limit: fork until the kernel refuses; count this account's processes then.
    hard=$(ulimit -Hu)
    read -r forked err total < <(python3 -c '
import errno, os, signal, time
kids, err, total = [], "none", -1
try:
    for _ in range(100000):
        pid = os.fork()
        if pid == 0:
            time.sleep(60); os._exit(0)
        kids.append(pid)
except OSError as e:
    err = errno.errorcode.get(e.errno, str(e.errno))
try:
    uid, total = os.getuid(), 0
    for p in os.listdir("/proc"):
        try:
            total += p.isdigit() and os.stat("/proc/" + p).st_uid == uid
        except OSError:
            pass                      # a process that ended while we looked
finally:
    for k in kids: os.kill(k, signal.SIGKILL)
    for k in kids: os.waitpid(k, 0)
print(len(kids), err, total)')
    ok=0; [ "$hard" = 512 ] && [ "$err" = EAGAIN ] && [ "$total" -le 512 ] && ok=1
    verdict "process limit" $ok "hard RLIMIT_NPROC $hard; fork bomb stopped by $err after $forked forks, $total processes of this account"

    # 2. Kernel socket families.
    nl=$(sock_errno $AF_NETLINK $SOCK_RAW $NETLINK_ROUTE); pk=$(sock_errno $AF_PACKET $SOCK_RAW 0)
    pkd=$(sock_errno $AF_PACKET $SOCK_DGRAM 0)
    # route netlink is kept by the example profile (AllowNetlink=audit route): prove a protocol
    # the profile does not keep is refused instead (NETLINK_SOCK_DIAG = 4).
    diag=$(sock_errno $AF_NETLINK $SOCK_RAW 4)
    ok=0; [ "$pk" = EAFNOSUPPORT ] && [ "$pkd" = EAFNOSUPPORT ] && [ "$diag" = EAFNOSUPPORT ] && ok=1
    verdict "packet/netlink sockets" $ok "AF_PACKET raw: $pk, AF_PACKET dgram: $pkd, AF_NETLINK sock_diag: $diag (route netlink, kept by the profile: $nl)"

    # 3. no_new_privs, seccomp, capability bounding set.
    nnp=$(status_field NoNewPrivs); sc=$(status_field Seccomp); bnd=$(status_field CapBnd)
    ok=0; [ "$nnp" = 1 ] && [ "$sc" = 2 ] && [ "$bnd" = 0000000000000000 ] && ok=1
    verdict "no_new_privs" $ok "NoNewPrivs=$nnp Seccomp=$sc CapBnd=$bnd"

    # 4. An allowed site, through the proxy the module put into the environment, and transparently.
    fetch "$allowed"; code=$CODE
    fetch --noproxy '*' "$allowed"; tcode=$CODE
    ok=0; [ "$code" = 200 ] && [ "$tcode" = 200 ] && ok=1
    verdict "allowed site" $ok "$allowed: HTTP $code via HTTP_PROXY=${HTTP_PROXY:-unset}, HTTP $tcode without it (transparent)"

    # 5. A denied site: 403 with the reason in X-Sandbox-Deny.
    fetch "$denied"
    ok=0; [ "$CODE" = 403 ] && [ -n "$DENY" ] && ok=1
    verdict "denied site" $ok "$denied: HTTP $CODE, X-Sandbox-Deny: ${DENY:-missing}"

    # 6. A denied name: policy DNS answers REFUSED (and asks nobody upstream).
    st=$(dig +time=3 +tries=1 "$dname" A 2>&1 | sed -n 's/.*status: \([A-Z]*\).*/\1/p')
    ok=0; [ "$st" = REFUSED ] && ok=1
    verdict "denied name" $ok "dig $dname: status ${st:-no answer}"

    # 7. inference.local: answered on 443 (TLS from the local CA, trusted via the session's
    #    CURL_CA_BUNDLE), denied on any other port.
    fetch https://inference.local/v1/chat/completions -H 'content-type: application/json' \
        -d '{"model":"fast","messages":[{"role":"user","content":"hello"}]}'
    code=$CODE body=$BODY
    fetch http://inference.local:8080/v1/models
    # The backend answered 200 only to the admin's key (it checks it); the session never holds it.
    keyerr=$(cat "$keyfile" 2>&1 >/dev/null | sed 's/.*: //')
    ok=0; [ "$code" = 200 ] && [ "$CODE" = 403 ] && [ -n "$keyerr" ] && ok=1
    verdict "inference.local" $ok "443: HTTP $code ${body:0:90}...; port 8080: HTTP $CODE, X-Sandbox-Deny: ${DENY:-missing}; session key OPENAI_API_KEY=${OPENAI_API_KEY:-unset}, the backend key file: ${keyerr:-READABLE}"
else
    denied=$1
    hard=$(ulimit -Hu); nnp=$(status_field NoNewPrivs); nl=$(sock_errno $AF_NETLINK $SOCK_RAW 4)
    fetch "$denied"; code=$CODE
    ok=0; [ "$hard" != 512 ] && [ "$nnp" = 0 ] && [ "$nl" = ok ] && [ "$code" = 200 ] && \
        [ -z "${HTTP_PROXY:-}" ] && ok=1
    verdict "non-sandboxed account" $ok "hard RLIMIT_NPROC $hard, NoNewPrivs=$nnp, sock_diag netlink: $nl, HTTP_PROXY=${HTTP_PROXY:-unset}, $denied: HTTP $code"
fi
