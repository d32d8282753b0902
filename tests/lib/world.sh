# Shared test world for integration tests: a private mount + network namespace with its own copy
# of /etc (so /etc/pam.d, passwd, group can be edited), its own /run, /home, /var/log and /dev/log
# (a syslog catcher), and loopback up.  Nothing done here is visible outside the namespace, and
# the namespace (with every mount) disappears when the test's last process exits.
#
# Use:   . "$PS_SRC/tests/lib/world.sh"; world_enter "$@"
# Then:  world_add_user NAME UID [GROUP...]; world_conf (writes $CONF); world_start_sshd;
#        world_bg CMD...  (started in background, killed by PID at exit); skip "reason"; fail "msg"
# Variables: WORLD (scratch dir), CONF (config dir for pam_sandbox), PS_BUILD, PS_SRC, SYSLOG.
set -u
: "${PS_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${PS_BUILD:=$PS_SRC/build}"
export PS_SRC PS_BUILD

skip() { echo "SKIP: $*"; exit 77; }
fail() {
    echo "FAIL: $*" >&2
    # What the system said just before: a CI log is often all there is to go on.
    local f
    for f in "${WORLD:-/nonexistent}/decisions.jsonl" "${SYSLOG:-/nonexistent}"; do
        [ -s "$f" ] && { echo "--- last lines of $f:" >&2; tail -n 12 "$f" >&2; }
    done
    exit 1
}
ok()   { echo "ok - $*"; }
# assert_eq WHAT EXPECTED ACTUAL
assert_eq() { [ "$2" = "$3" ] || fail "$1: expected [$2], got [$3]"; ok "$1 = $3"; }
# assert_match WHAT REGEX TEXT
assert_match() { printf '%s' "$3" | grep -Eq -- "$2" || fail "$1: [$3] does not match /$2/"; ok "$1"; }
assert_no_match() { printf '%s' "$3" | grep -Eq -- "$2" && fail "$1: [$3] matches /$2/"; ok "$1"; }

WORLD_PIDS=()
world_bg() { "$@" & WORLD_PIDS+=($!); }

world_cleanup() {
    local p
    for p in "${WORLD_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${WORLD_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    # Sessions of the world's accounts may outlive their ssh client; the pid space is shared with
    # the host, so end exactly the UIDs this world created (chosen unused on the host).
    for u in "${WORLD_UIDS[@]:-}"; do [ -n "$u" ] && pkill -KILL -U "$u" 2>/dev/null; done
    for n in "${WORLD_NETNS[@]:-}"; do [ -n "$n" ] && ip netns pids "$n" 2>/dev/null | xargs -r kill -KILL; ip netns del "$n" 2>/dev/null; done
    cd / && umount -l "$WORLD" 2>/dev/null && rmdir "$WORLD" 2>/dev/null
    return 0
}

world_enter() {
    [ "$(id -u)" = 0 ] || skip "needs root (namespaces, PAM, sshd)"
    if [ -z "${PS_IN_WORLD:-}" ]; then
        command -v unshare >/dev/null || skip "unshare(1) missing"
        # PS_IN_WORLD carries the namespaces we leave, so that the copy inside can check it left them
        PS_IN_WORLD="$(readlink /proc/self/ns/mnt) $(readlink /proc/self/ns/net)" \
            exec unshare -m -n --propagation private -- bash "$0" "$@"
    fi
    # Everything below mounts over /etc, /run, /dev and writes the network: never in the namespaces
    # the test was started in (PS_IN_WORLD=1 set by hand, say, once did exactly that).
    local host_mnt host_net
    read -r host_mnt host_net <<<"$PS_IN_WORLD"
    if [[ ! $host_mnt =~ ^mnt:\[[0-9]+\]$ || ! $host_net =~ ^net:\[[0-9]+\]$ ]] ||
       [ "$(readlink /proc/self/ns/mnt)" = "$host_mnt" ] || [ "$(readlink /proc/self/ns/net)" = "$host_net" ]; then
        echo "world: not in private mount and network namespaces of its own (PS_IN_WORLD=$PS_IN_WORLD);" \
             "refusing to touch this host" >&2
        exit 1
    fi
    WORLD=$(mktemp -d /tmp/ps-world.XXXXXX)
    chmod 755 "$WORLD"
    mount -t tmpfs -o mode=755 tmpfs "$WORLD"
    cp -a /etc "$WORLD/etc"
    mount --bind "$WORLD/etc" /etc || { echo "world: cannot put a copy over /etc; stopping" >&2; exit 1; }
    for d in run home var/log var/spool/cron tmp/ps-scratch; do
        mkdir -p "/$d"; mount -t tmpfs -o mode=755 tmpfs "/$d"
    done
    mkdir -p /run/sshd /run/netns /var/log/pam_sandbox
    chmod 700 /run/sshd  # keep sshd's privsep dir as Debian has it
    _world_dev
    ip link set lo up
    CONF="$WORLD/conf"
    mkdir -p "$CONF/profiles" "$CONF/inference.d"
    chmod 755 "$CONF" "$CONF/profiles" "$CONF/inference.d"
    WORLD_UIDS=(); WORLD_NETNS=()
    trap world_cleanup EXIT
    export WORLD CONF
}

# A private /dev: the host has no /dev/log and we must not create one there, so build a tmpfs /dev
# from binds of the real device nodes plus our own /dev/log socket, and bind it over /dev.
_world_dev() {
    local d="$WORLD/dev" n
    mkdir -p "$d"
    for n in null zero full random urandom tty; do touch "$d/$n"; mount --bind "/dev/$n" "$d/$n"; done
    mkdir -p "$d/pts" "$d/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$d/pts"
    ln -s pts/ptmx "$d/ptmx"
    mount -t tmpfs -o mode=1777 tmpfs "$d/shm"
    ln -s /proc/self/fd "$d/fd"; ln -s fd/0 "$d/stdin"; ln -s fd/1 "$d/stdout"; ln -s fd/2 "$d/stderr"
    SYSLOG="$WORLD/syslog"; : > "$SYSLOG"
    # The queue of a datagram socket such as /dev/log: the kernel's default is 10 messages, and a
    # Debian host with systemd runs with 512 (systemd's sysctl.d/50-default.conf).  This world is
    # its own network namespace, so this sets only its own value, before the socket is made.
    sysctl -q -w net.unix.max_dgram_qlen=512 >/dev/null
    [ -x "$PS_BUILD/tests/syslog_catcher" ] || { echo "world: $PS_BUILD/tests/syslog_catcher not built (make all)" >&2; exit 1; }
    "$PS_BUILD/tests/syslog_catcher" "$d/log" "$SYSLOG" & WORLD_PIDS+=($!)
    for _ in $(seq 50); do [ -S "$d/log" ] && break; sleep 0.05; done
    mount --rbind "$d" /dev
    export SYSLOG
}

# world_add_user NAME UID [GROUP...]: a local account with a home under the world's /home.
world_add_user() {
    local name=$1 uid=$2; shift 2
    local g
    for g in "$@"; do getent group "$g" >/dev/null || groupadd "$g"; done
    useradd -M -d "/home/$name" -s /bin/bash -u "$uid" -U ${1:+-G "$(IFS=,; echo "$*")"} "$name"
    mkdir -p "/home/$name/.ssh"; chown -R "$name:" "/home/$name"; chmod 755 "/home/$name"
    WORLD_UIDS+=("$uid")
}

# world_conf: a minimal valid sandbox.conf in $CONF (tests add profiles/*.conf themselves).
world_conf() {
    cat > "$CONF/sandbox.conf" <<EOC
[Proxy]
User=${PS_PROXY_USER:-pam-sandbox}
ExplicitListen=127.0.0.1:3128
TransparentListen=127.0.0.1:3129
TransparentListen=[::1]:3129
DNSListen=127.0.0.1:3153
DecisionLog=$WORLD/decisions.jsonl
EOC
    chmod 644 "$CONF/sandbox.conf"
}

# world_start_sshd [PORT]: a real sshd on 127.0.0.1:PORT with key auth, UsePAM yes and sftp via
# internal-sftp; the client key is $WORLD/id_ed25519 (authorize it with world_authorize USER).
world_start_sshd() {
    local port=${1:-2222}
    [ -x /usr/sbin/sshd ] || skip "openssh-server missing"
    ssh-keygen -q -t ed25519 -N '' -f "$WORLD/host_ed25519" </dev/null
    ssh-keygen -q -t ed25519 -N '' -f "$WORLD/id_ed25519" </dev/null
    cat > "$WORLD/sshd_config" <<EOC
Port $port
ListenAddress 127.0.0.1
HostKey $WORLD/host_ed25519
PidFile $WORLD/sshd.pid
UsePAM yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PermitRootLogin no
Subsystem sftp internal-sftp
LogLevel VERBOSE
EOC
    world_bg /usr/sbin/sshd -D -e -f "$WORLD/sshd_config" -E "$WORLD/sshd.log"
    for _ in $(seq 100); do ss -ltn 2>/dev/null | grep -q "127.0.0.1:$port " && break; sleep 0.05; done
    SSH_PORT=$port
    export SSH_PORT
}
world_authorize() {
    install -o "$1" -m 600 "$WORLD/id_ed25519.pub" "/home/$1/.ssh/authorized_keys"
}
# world_ssh USER CMD...: run CMD as USER over the real sshd (no tty unless PS_SSH_TTY=1).
world_ssh() {
    local u=$1; shift
    ssh -i "$WORLD/id_ed25519" -p "$SSH_PORT" ${PS_SSH_TTY:+-tt} -o BatchMode=yes \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
        "$u@127.0.0.1" "$@"
}

# world_upstream NAME: a network namespace "upstream host" joined to ours by a veth pair.
# Addresses are documentation ranges, which classify as public (as a real origin would):
# ours 203.0.113.1 / 2001:db8::1, the upstream 203.0.113.10 / 2001:db8::10.  Run commands there
# with: ip netns exec NAME CMD.  Nothing is routed beyond this pair.
world_upstream() {
    local ns=$1
    ip netns add "$ns"; WORLD_NETNS+=("$ns")
    ip link add ps-veth0 type veth peer name ps-veth1 netns "$ns"
    ip addr add 203.0.113.1/24 dev ps-veth0; ip -6 addr add 2001:db8::1/64 dev ps-veth0 nodad
    ip link set ps-veth0 up
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip addr add 203.0.113.10/24 dev ps-veth1
    ip netns exec "$ns" ip -6 addr add 2001:db8::10/64 dev ps-veth1 nodad
    ip netns exec "$ns" ip link set ps-veth1 up
    ip netns exec "$ns" ip route add default via 203.0.113.1
    ip netns exec "$ns" ip -6 route add default via 2001:db8::1
}
