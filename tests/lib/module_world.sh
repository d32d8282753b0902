# Helpers for the pam_sandbox module's integration tests (tests/integration/t_module_*.sh), on top
# of tests/lib/world.sh.  Source after world_enter.
#
# mod_setup            check the built pieces, copy the probe where every account can run it,
#                      write sandbox.conf, put the module into the world's common-session and
#                      common-session-noninteractive (as pam-auth-update would), and a service
#                      "ps-noninteractive" that mimics Debian's cron/sudo stack
# mod_profile NAME     profile $CONF/profiles/NAME.conf from stdin (root-owned, 0644)
# mod_apply            load the real nftables ruleset for $CONF into the world's netns
# mod_run USER CMD...  a session through the ps-noninteractive stack (sandbox_pam_run), CMD as USER
# probe_val FILE NAME  the RESULT of line "NAME RESULT" in a probe output
# assert_probe FILE NAME WANT

MOD_SO="$PS_BUILD/pam_sandbox.so"
PROBE=/tmp/ps-scratch/sandbox_probe
PAM_RUN="$PS_BUILD/tests/sandbox_pam_run"

mod_setup() {
    [ -f "$MOD_SO" ] || skip "$MOD_SO not built"
    # A sanitizer build of the module needs the sanitizer runtimes loaded first by every PAM
    # application that loads it: tests start those through "$SAN_ENV" (empty otherwise).  Not
    # exported to everything: pkill in world_cleanup hangs with libasan preloaded.  No leak check:
    # LeakSanitizer needs ptrace, which the filter denies.
    SAN_ENV=(env)
    if [ "${PS_SAN:-0}" = 1 ]; then
        SAN_ENV=(env "LD_PRELOAD=$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
                 ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1)
    fi
    [ -x "$PS_BUILD/tests/sandbox_probe" ] || skip "sandbox_probe not built"
    [ -x "$PAM_RUN" ] || skip "sandbox_pam_run not built"
    install -m 755 "$PS_BUILD/tests/sandbox_probe" "$PROBE"
    world_conf
    local line="session required $MOD_SO conf=$CONF${MOD_ARGS:+ $MOD_ARGS}"
    echo "$line" >> /etc/pam.d/common-session
    echo "$line" >> /etc/pam.d/common-session-noninteractive
    # Debian's cron stack (auth/account for setcred, pam_loginuid, pam_env, the noninteractive
    # session, pam_limits after it) plus sudo's pam_keyinit: all stock modules.
    cat > /etc/pam.d/ps-noninteractive <<EOP
@include common-auth
@include common-account
session required pam_loginuid.so
session optional pam_keyinit.so force revoke
session required pam_env.so readenv=1
session required pam_env.so readenv=1 envfile=/etc/default/locale
@include common-session-noninteractive
session required pam_limits.so
EOP
}

mod_profile() {
    cat > "$CONF/profiles/$1.conf"
    chmod 644 "$CONF/profiles/$1.conf"
}

# The real ruleset, from the real loader, in this world's network namespace.  Without it the
# module refuses sandboxed logins (the table is missing), which t_module_* check too.
mod_apply() {
    if [ -x "$PS_BUILD/sandboxctl" ] && "$PS_BUILD/sandboxctl" -c "$CONF" apply >"$WORLD/apply.log" 2>&1; then
        nft list table inet pam_sandbox >/dev/null || fail "sandboxctl apply left no table"
        return 0
    fi
    if strings "$MOD_SO" | grep -q 'built with nft_pending.c'; then
        echo "NOTE: netfilter/ not built yet: module built with nft_pending.c, no ruleset loaded"
        return 0
    fi
    cat "$WORLD/apply.log" 2>/dev/null
    fail "sandboxctl -c $CONF apply failed"
}

mod_run() {
    local u=$1; shift
    "${SAN_ENV[@]}" "$PAM_RUN" ps-noninteractive "$u" "$@"
}

probe_val() { awk -v n="$2" '$1 == n { sub(/^[^ ]+ /, ""); print; exit }' "$1"; }
assert_probe() { assert_eq "$(basename "$1") $2" "$3" "$(probe_val "$1" "$2")"; }

# The checks every confined session must pass, given the probe's output of that session and the
# network mode of its profile (proxy|block) and kept netlink protocols ("audit", "", "route audit").
check_confined_probe() {
    local f=$1 net=$2 keep=$3 fam p
    assert_probe "$f" status.NoNewPrivs 1
    assert_probe "$f" status.CapBnd 0000000000000000
    assert_probe "$f" status.CapAmb 0000000000000000
    assert_probe "$f" status.Seccomp 2
    for fam in AF_PACKET AF_BLUETOOTH AF_VSOCK AF_TIPC AF_ALG AF_CAN AF_RDS AF_XDP AF_KEY AF_PACKET.highbits; do
        assert_probe "$f" "socket.$fam" EAFNOSUPPORT
    done
    assert_probe "$f" socketpair.AF_TIPC EAFNOSUPPORT
    # an AF_PACKET socket under AF_INET: the filter's errno, not the kernel's EPERM
    assert_probe "$f" socket.AF_INET.SOCK_PACKET EAFNOSUPPORT
    assert_probe "$f" socket.AF_INET.SOCK_PACKET.flags EAFNOSUPPORT
    assert_probe "$f" socket.AF_UNIX ok
    if [ "$net" = block ]; then
        assert_probe "$f" socket.AF_INET EAFNOSUPPORT
        assert_probe "$f" socket.AF_INET6 EAFNOSUPPORT
    else
        assert_probe "$f" socket.AF_INET ok
        assert_probe "$f" socket.AF_INET6 ok
    fi
    for p in SOCK_DIAG NETFILTER KOBJECT_UEVENT GENERIC XFRM AUDIT.highbits; do
        assert_probe "$f" "netlink.$p" EAFNOSUPPORT
    done
    case " $keep " in *" audit "*) assert_probe "$f" netlink.AUDIT ok;; *) assert_probe "$f" netlink.AUDIT EAFNOSUPPORT;; esac
    case " $keep " in *" route "*) assert_probe "$f" netlink.ROUTE ok;; *) assert_probe "$f" netlink.ROUTE EAFNOSUPPORT;; esac
    for s in ptrace process_vm_readv process_vm_writev pidfd_getfd bpf perf_event_open userfaultfd \
             io_uring_setup io_uring_enter io_uring_register mount umount2 pivot_root fsopen fsconfig \
             fsmount fspick move_mount open_tree mount_setattr setns kexec_load kexec_file_load \
             init_module finit_module delete_module; do
        assert_probe "$f" "sys.$s" EPERM
    done
    assert_probe "$f" ioctl.TIOCSTI EPERM
    assert_probe "$f" ioctl.TIOCSTI.highbits EPERM
    assert_probe "$f" ioctl.TIOCLINUX EPERM
    assert_probe "$f" ioctl.TCGETS EBADF
    assert_probe "$f" unshare.CLONE_NEWUSER EPERM
    assert_probe "$f" clone.CLONE_NEWUSER EPERM
    assert_probe "$f" sys.clone3 ENOSYS
    assert_probe "$f" fork ok
    assert_probe "$f" pthread_create ok
    assert_probe "$f" abi.i386_int80 killed:SYS
    assert_probe "$f" abi.x32 killed:SYS
    # deliberately allowed (pam_sandbox(8)): they reach the kernel
    assert_probe "$f" sys.keyctl ENOKEY
    assert_probe "$f" sys.memfd_create EFAULT
    assert_probe "$f" sys.seccomp EFAULT
}

# An account no profile matches: none of it (its own limits, no filter, the kernel's answers).
check_unconfined_probe() {
    local f=$1
    assert_probe "$f" status.NoNewPrivs 0
    assert_probe "$f" status.Seccomp 0
    assert_probe "$f" socket.AF_TIPC EAFNOSUPPORT   # the kernel has no TIPC: same either way
    assert_probe "$f" socket.AF_VSOCK ok
    assert_probe "$f" socket.AF_INET.SOCK_PACKET EPERM    # the kernel: no CAP_NET_RAW
    assert_probe "$f" netlink.SOCK_DIAG ok
    assert_probe "$f" sys.clone3 EINVAL
    assert_probe "$f" ioctl.TIOCSTI EBADF
    assert_probe "$f" unshare.CLONE_NEWUSER ok
    assert_probe "$f" abi.i386_int80 ok
}
