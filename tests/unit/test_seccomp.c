/* The seccomp filters of pam_sandbox built from real profiles (DESIGN.md §4.2-4.3, §7): each
 * check runs twice in forked children, once under the filters and once without (the baseline).
 * A denied syscall, called with harmless invalid arguments, must return the filter's errno under
 * the filters; without them it reaches the kernel and fails there (EFAULT/EBADF/EINVAL/...), which
 * shows that the errno came from the filter.  As root every baseline differs from the filter's
 * errno; as a normal user some root-only calls fail with EPERM in the kernel too, and only the
 * filtered side is checked for those. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common/config.h"
#include "pam_sandbox/sandbox.h"

#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif

/* One config per profile: a pointer into a config's profile array moves when another is added. */
static struct ps_config *cfgs[64];
static size_t n_cfgs;

static const struct ps_profile *profile(const char *body)
{
    struct ps_diags d = { 0 };
    assert_true(n_cfgs < sizeof cfgs / sizeof *cfgs);
    struct ps_config *cfg = cfgs[n_cfgs++] = ps_config_new_empty("/nonexistent");
    if (ps_config_parse_buffer(cfg, PS_FILE_PROFILE, "profiles/t.conf", body, strlen(body), &d) < 0) {
        ps_diags_print(&d, stderr);
        fail_msg("profile did not parse");
    }
    ps_diags_free(&d);
    assert_int_equal(cfg->n_profiles, 1);
    return &cfg->profiles[0];
}

#define BASE "[Match]\nUser=t\n"

struct call { long nr, a, b, c, d, e; };

/* Outcome of one call in a child: 0 success, >0 its errno, <0 minus the killing signal. */
static int run(const struct ps_profile *p, int (*fn)(const void *), const void *arg)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            _exit(250);
        if (p) {
            char err[512];
            scmp_filter_ctx c3, m;
            if (ps_seccomp_build(p, &c3, &m, err, sizeof err) < 0 ||
                ps_seccomp_load(c3, m, err, sizeof err) < 0) {
                fprintf(stderr, "%s\n", err);
                _exit(251);
            }
        }
        errno = 0;
        int r = fn(arg);
        _exit(r < 0 ? (errno ? errno : 252) : 0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st))
        return -WTERMSIG(st);
    assert_true(WEXITSTATUS(st) < 250);
    return WEXITSTATUS(st);
}

static int do_call(const void *arg)
{
    const struct call *c = arg;
    long r = syscall(c->nr, c->a, c->b, c->c, c->d, c->e, 0L);
    if (r >= 0 && (c->nr == SYS_socket || c->nr == SYS_memfd_create))
        close((int)r);
    return r < 0 ? -1 : 0;
}

static const char *ename(int e)
{
    static char bufs[4][32];      /* several per message */
    static unsigned k;
    char *b = bufs[k++ % 4];
    if (e == 0)
        return "success";
    if (e < 0)
        return sigabbrev_np(-e);
    snprintf(b, sizeof bufs[0], "%s", strerrorname_np(e) ?: "E?");
    return b;
}

/* Under p the call must give want; without a filter it must not (when that can be told). */
static void expect_denied(const struct ps_profile *p, const char *what, struct call c, int want)
{
    int got = run(p, do_call, &c), base = run(NULL, do_call, &c);
    if (got != want)
        fail_msg("%s: expected %s under the filter, got %s", what, ename(want), ename(got));
    if (base == want && !(want == EPERM && geteuid() != 0))
        fail_msg("%s: returns %s without the filter too: the test proves nothing", what, ename(base));
}

/* Under p the call must reach the kernel: same result as without a filter. */
static void expect_allowed(const struct ps_profile *p, const char *what, struct call c)
{
    int got = run(p, do_call, &c), base = run(NULL, do_call, &c);
    if (got != base)
        fail_msg("%s: %s under the filter but %s without", what, ename(got), ename(base));
}

#define CALL(nr, ...) ((struct call){ nr, __VA_ARGS__ })

static void test_default_denials_eperm(void **state)
{
    (void)state;
    const struct ps_profile *p = profile(BASE);
    struct { const char *n; struct call c; } t[] = {
        { "ptrace", CALL(SYS_ptrace, 12, -1, 0, 0, 0) },
        { "process_vm_readv", CALL(SYS_process_vm_readv, 0, 0, 1, 0, 1) },
        { "process_vm_writev", CALL(SYS_process_vm_writev, 0, 0, 1, 0, 1) },
        { "pidfd_getfd", CALL(SYS_pidfd_getfd, -1, 0, 0, 0, 0) },
        { "bpf", CALL(SYS_bpf, 0, 0, 128, 0, 0) },
        { "perf_event_open", CALL(SYS_perf_event_open, 0, 0, -1, -1, 0) },
        { "userfaultfd", CALL(SYS_userfaultfd, -1, 0, 0, 0, 0) },
        { "io_uring_setup", CALL(SYS_io_uring_setup, 1, 0, 0, 0, 0) },
        { "io_uring_enter", CALL(SYS_io_uring_enter, -1, 0, 0, 0, 0) },
        { "io_uring_register", CALL(SYS_io_uring_register, -1, 0, 0, 0, 0) },
        { "mount", CALL(SYS_mount, 0, 0, 0, 0, 0) },
        { "umount2", CALL(SYS_umount2, 0, -1, 0, 0, 0) },
        { "pivot_root", CALL(SYS_pivot_root, 0, 0, 0, 0, 0) },
        { "fsopen", CALL(SYS_fsopen, 0, 0, 0, 0, 0) },
        { "fsconfig", CALL(SYS_fsconfig, -1, 0, 0, 0, 0) },
        { "fsmount", CALL(SYS_fsmount, -1, 0, 0, 0, 0) },
        { "fspick", CALL(SYS_fspick, -1, 0, 0, 0, 0) },
        { "move_mount", CALL(SYS_move_mount, -1, 0, -1, 0, 0) },
        { "open_tree", CALL(SYS_open_tree, -1, 0, 0, 0, 0) },
        { "mount_setattr", CALL(SYS_mount_setattr, -1, 0, 0, 0, 0) },
        { "setns", CALL(SYS_setns, -1, 0, 0, 0, 0) },
        { "kexec_load", CALL(SYS_kexec_load, 0, 1000000, 0, 0, 0) },
        { "kexec_file_load", CALL(SYS_kexec_file_load, -1, -1, 0, 0, -1) },
        { "init_module", CALL(SYS_init_module, 0, 0, 0, 0, 0) },
        { "finit_module", CALL(SYS_finit_module, -1, 0, -1, 0, 0) },
        { "delete_module", CALL(SYS_delete_module, 0, 0, 0, 0, 0) },
        { "ioctl(TIOCSTI)", CALL(SYS_ioctl, -1, TIOCSTI, 0, 0, 0) },
        /* the kernel truncates the command to 32 bits: the filter must too */
        { "ioctl(TIOCSTI|1<<32)", CALL(SYS_ioctl, -1, (1L << 32) | TIOCSTI, 0, 0, 0) },
        { "ioctl(TIOCLINUX)", CALL(SYS_ioctl, -1, TIOCLINUX, 0, 0, 0) },
        { "request_key", CALL(SYS_request_key, 0, 0, 0, 0, 0) },
        /* multicast joins: reports the kernel sends with no socket owner (EBADF if they pass) */
        { "setsockopt(IP_ADD_MEMBERSHIP)", CALL(SYS_setsockopt, -1, IPPROTO_IP, IP_ADD_MEMBERSHIP, 0, 0) },
        { "setsockopt(IP_ADD_SOURCE_MEMBERSHIP)", CALL(SYS_setsockopt, -1, IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, 0, 0) },
        { "setsockopt(IP_MSFILTER)", CALL(SYS_setsockopt, -1, IPPROTO_IP, IP_MSFILTER, 0, 0) },
        { "setsockopt(MCAST_JOIN_SOURCE_GROUP, v4)", CALL(SYS_setsockopt, -1, IPPROTO_IP, MCAST_JOIN_SOURCE_GROUP, 0, 0) },
        { "setsockopt(IPV6_ADD_MEMBERSHIP)", CALL(SYS_setsockopt, -1, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, 0, 0) },
        { "setsockopt(IPV6_JOIN_ANYCAST)", CALL(SYS_setsockopt, -1, IPPROTO_IPV6, IPV6_JOIN_ANYCAST, 0, 0) },
        { "setsockopt(MCAST_JOIN_GROUP, v6)", CALL(SYS_setsockopt, -1, IPPROTO_IPV6, MCAST_JOIN_GROUP, 0, 0) },
        { "setsockopt(MCAST_MSFILTER, v6)", CALL(SYS_setsockopt, -1, IPPROTO_IPV6, MCAST_MSFILTER, 0, 0) },
        /* the kernel reads level and option as ints: garbage above them must not slip past */
        { "setsockopt(IP_ADD_MEMBERSHIP|1<<32)", CALL(SYS_setsockopt, -1, (1L << 32) | IPPROTO_IP, (1L << 32) | IP_ADD_MEMBERSHIP, 0, 0) },
        /* invalid extra flag bits: EINVAL if it reaches the kernel */
        { "unshare(CLONE_NEWUSER)", CALL(SYS_unshare, CLONE_NEWUSER | 0x2, 0, 0, 0, 0) },
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        expect_denied(p, t[i].n, t[i].c, EPERM);
}

static int do_clone_newuser(const void *arg)
{
    (void)arg;
    long r = syscall(SYS_clone, (long)(CLONE_NEWUSER | SIGCHLD), 0L, 0L, 0L, 0L);
    if (r == 0)
        _exit(0);
    if (r > 0)
        waitpid((pid_t)r, NULL, 0);
    return r < 0 ? -1 : 0;
}

static void test_clone_newuser_eperm(void **state)
{
    (void)state;
    const struct ps_profile *p = profile(BASE);
    assert_int_equal(run(p, do_clone_newuser, NULL), EPERM);
}

static void test_socket_families(void **state)
{
    (void)state;
    const struct ps_profile *proxy = profile(BASE), *block = profile(BASE "[Seccomp]\nNetwork=block\n");
    const int denied[] = { AF_PACKET, AF_BLUETOOTH, AF_VSOCK, AF_TIPC, AF_ALG, AF_CAN, AF_RDS, 44,
                           AF_KEY, AF_IRDA, AF_LLC, AF_SMC, AF_APPLETALK, AF_X25, 45, 200 };
    for (size_t i = 0; i < sizeof denied / sizeof *denied; i++) {
        char n[64];
        snprintf(n, sizeof n, "socket(%d)", denied[i]);
        /* type -1: EINVAL if the family exists and the call gets through */
        int g1 = run(proxy, do_call, &CALL(SYS_socket, denied[i], -1, 0, 0, 0));
        int g2 = run(block, do_call, &CALL(SYS_socket, denied[i], -1, 0, 0, 0));
        if (g1 != EAFNOSUPPORT || g2 != EAFNOSUPPORT)
            fail_msg("%s: %s (proxy) / %s (block), want EAFNOSUPPORT", n, ename(g1), ename(g2));
    }
    /* an int argument with garbage above it is still AF_PACKET to the kernel */
    expect_denied(proxy, "socket(AF_PACKET|1<<32)", CALL(SYS_socket, (1L << 32) | AF_PACKET, -1, 0, 0, 0),
                  EAFNOSUPPORT);
    expect_denied(proxy, "socketpair(AF_TIPC)", CALL(SYS_socketpair, AF_TIPC, SOCK_SEQPACKET, 0, 0, 0),
                  EAFNOSUPPORT);
    expect_allowed(proxy, "socketpair(AF_UNIX, NULL)", CALL(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, 0, 0));
    expect_allowed(proxy, "socket(AF_UNIX)", CALL(SYS_socket, AF_UNIX, SOCK_STREAM, 0, 0, 0));
    expect_allowed(proxy, "socket(AF_INET)", CALL(SYS_socket, AF_INET, SOCK_STREAM, 0, 0, 0));
    expect_allowed(proxy, "socket(AF_INET6)", CALL(SYS_socket, AF_INET6, SOCK_DGRAM, 0, 0, 0));
    /* AF_INET with SOCK_PACKET is an AF_PACKET socket to the kernel: the filter's EAFNOSUPPORT,
     * not the kernel's success (root) or EPERM (no CAP_NET_RAW); with the type's flags, and with
     * garbage in the upper half of the type, which the kernel does not read */
    expect_denied(proxy, "socket(AF_INET, SOCK_PACKET)", CALL(SYS_socket, AF_INET, SOCK_PACKET, 0, 0, 0),
                  EAFNOSUPPORT);
    expect_denied(proxy, "socket(AF_INET, SOCK_PACKET|SOCK_NONBLOCK|SOCK_CLOEXEC)",
                  CALL(SYS_socket, AF_INET, SOCK_PACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, 0, 0), EAFNOSUPPORT);
    expect_denied(proxy, "socket(AF_INET, SOCK_PACKET|1<<32)",
                  CALL(SYS_socket, AF_INET, (1L << 32) | SOCK_PACKET, 0, 0, 0), EAFNOSUPPORT);
    expect_allowed(proxy, "socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC)",
                   CALL(SYS_socket, AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, 0, 0));
    /* a raw socket: EPERM, as the kernel answers an account without CAP_NET_RAW (the tests run
     * as root, where the kernel would say yes) */
    expect_denied(proxy, "socket(AF_INET, SOCK_RAW, IPPROTO_TCP)", CALL(SYS_socket, AF_INET, SOCK_RAW, IPPROTO_TCP, 0, 0),
                  EPERM);
    expect_denied(proxy, "socket(AF_INET6, SOCK_RAW, IPPROTO_TCP)", CALL(SYS_socket, AF_INET6, SOCK_RAW, IPPROTO_TCP, 0, 0),
                  EPERM);
    /* Other types and protocols of AF_INET and AF_INET6 are refused before the kernel looks a
     * module up for them.  On a kernel without the module the kernel's own answer would be the
     * same errno, so each is asked with a flag bit the kernel refuses first (EINVAL): the filter's
     * answer shows that it decided on the type or protocol alone. */
    const long bad_flag = 0x40000000;
    const int fams[] = { AF_INET, AF_INET6 };
    for (size_t f = 0; f < 2; f++) {
        char n[96];
        const int types[] = { 0, SOCK_RDM, SOCK_SEQPACKET, SOCK_DCCP, 7, 8, 9 };
        for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
            snprintf(n, sizeof n, "socket(%s, type %d|bad flag)", fams[f] == AF_INET ? "AF_INET" : "AF_INET6", types[t]);
            expect_denied(proxy, n, CALL(SYS_socket, fams[f], types[t] | bad_flag, 0, 0, 0), ESOCKTNOSUPPORT);
        }
        /* every protocol up to 300, an upper half of garbage, and IPPROTO_MPTCP (262) */
        for (long pr = 0; pr <= 300; pr++) {
            bool ok = pr == 0 || pr == IPPROTO_ICMP || pr == IPPROTO_TCP || pr == IPPROTO_UDP || pr == IPPROTO_ICMPV6;
            snprintf(n, sizeof n, "socket(%s, SOCK_STREAM|bad flag, %ld)", fams[f] == AF_INET ? "AF_INET" : "AF_INET6", pr);
            struct call c = CALL(SYS_socket, fams[f], SOCK_STREAM | bad_flag, pr, 0, 0);
            if (ok)
                expect_allowed(proxy, n, c);
            else
                expect_denied(proxy, n, c, EPROTONOSUPPORT);
        }
        snprintf(n, sizeof n, "socket(%s, SOCK_STREAM|bad flag, IPPROTO_TCP|1<<32)", fams[f] == AF_INET ? "AF_INET" : "AF_INET6");
        expect_denied(proxy, n, CALL(SYS_socket, fams[f], SOCK_STREAM | bad_flag, (1L << 32) | IPPROTO_TCP, 0, 0),
                      EPROTONOSUPPORT);
    }
    expect_denied(proxy, "socket(AF_INET6, SOCK_PACKET)", CALL(SYS_socket, AF_INET6, SOCK_PACKET | bad_flag, 0, 0, 0),
                  ESOCKTNOSUPPORT);
    /* what sessions use still reaches the kernel: TCP, UDP, the ICMP ping sockets */
    expect_allowed(proxy, "socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)", CALL(SYS_socket, AF_INET, SOCK_STREAM, IPPROTO_TCP, 0, 0));
    expect_allowed(proxy, "socket(AF_INET6, SOCK_DGRAM, IPPROTO_UDP)", CALL(SYS_socket, AF_INET6, SOCK_DGRAM, IPPROTO_UDP, 0, 0));
    expect_allowed(proxy, "socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)", CALL(SYS_socket, AF_INET, SOCK_DGRAM, IPPROTO_ICMP, 0, 0));
    expect_allowed(proxy, "socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6)",
                   CALL(SYS_socket, AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6, 0, 0));
    expect_denied(block, "Network=block socket(AF_INET)", CALL(SYS_socket, AF_INET, SOCK_STREAM, 0, 0, 0),
                  EAFNOSUPPORT);
    expect_denied(block, "Network=block socket(AF_INET6)", CALL(SYS_socket, AF_INET6, SOCK_STREAM, 0, 0, 0),
                  EAFNOSUPPORT);
    expect_allowed(block, "Network=block socket(AF_UNIX)", CALL(SYS_socket, AF_UNIX, SOCK_STREAM, 0, 0, 0));
}

static void netlink_case(const struct ps_profile *p, int proto, bool kept)
{
    char n[64];
    snprintf(n, sizeof n, "netlink protocol %d", proto);
    struct call c = CALL(SYS_socket, AF_NETLINK, SOCK_RAW, proto, 0, 0);
    if (kept)
        expect_allowed(p, n, c);
    else
        expect_denied(p, n, c, EAFNOSUPPORT);
}

static void test_netlink_protocols(void **state)
{
    (void)state;
    const struct ps_profile *def = profile(BASE), *both = profile(BASE "[Seccomp]\nAllowNetlink=route audit\n"),
                            *none = profile(BASE "[Seccomp]\nAllowNetlink=\n"),
                            *blk = profile(BASE "[Seccomp]\nNetwork=block\n");
    const int others[] = { NETLINK_SOCK_DIAG, NETLINK_NETFILTER, NETLINK_KOBJECT_UEVENT,
                           NETLINK_GENERIC, NETLINK_XFRM, NETLINK_SELINUX, NETLINK_CONNECTOR };
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        netlink_case(def, others[i], false);
        netlink_case(both, others[i], false);
        netlink_case(blk, others[i], false);
    }
    netlink_case(def, NETLINK_AUDIT, true);
    netlink_case(def, NETLINK_ROUTE, false);
    netlink_case(blk, NETLINK_AUDIT, true);
    netlink_case(both, NETLINK_AUDIT, true);
    netlink_case(both, NETLINK_ROUTE, true);
    netlink_case(none, NETLINK_AUDIT, false);
    netlink_case(none, NETLINK_ROUTE, false);
    /* the protocol is an int: garbage above NETLINK_AUDIT must not pass as NETLINK_AUDIT */
    expect_denied(def, "netlink AUDIT|1<<32", CALL(SYS_socket, AF_NETLINK, SOCK_RAW, (1L << 32) | NETLINK_AUDIT, 0, 0),
                  EAFNOSUPPORT);
}

static int do_fork(const void *arg)
{
    (void)arg;
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    return p < 0 ? -1 : (waitpid(p, NULL, 0), 0);
}
static void *thr(void *a) { return a; }
static int do_thread(const void *arg)
{
    (void)arg;
    pthread_t t;
    int e = pthread_create(&t, NULL, thr, NULL);
    if (e)
        return errno = e, -1;
    return pthread_join(t, NULL), 0;
}

static void test_clone3_enosys_fork_works(void **state)
{
    (void)state;
    const struct ps_profile *p = profile(BASE);
    expect_denied(p, "clone3(NULL, 0)", CALL(SYS_clone3, 0, 0, 0, 0, 0), ENOSYS);
    assert_int_equal(run(p, do_fork, NULL), 0);
    assert_int_equal(run(p, do_thread, NULL), 0);
}

/* Allowed on purpose (§4.2): they reach the kernel and fail there with the harmless arguments. */
static void test_allowed_reach_kernel(void **state)
{
    (void)state;
    const struct ps_profile *p = profile(BASE);
    struct { const char *n; struct call c; int want; } t[] = {
        { "read(-1)", CALL(SYS_read, -1, 0, 0, 0, 0), EBADF },
        { "ioctl(TCGETS)", CALL(SYS_ioctl, -1, TCGETS, 0, 0, 0), EBADF },
        { "memfd_create(NULL)", CALL(SYS_memfd_create, 0, 0, 0, 0, 0), EFAULT },
        { "seccomp(SET_MODE_FILTER, NULL)", CALL(SYS_seccomp, 1, 0, 0, 0, 0), EFAULT },
        { "fchown(-1)", CALL(SYS_fchown, -1, 0, 0, 0, 0), EBADF },
        { "setgroups(1, NULL)", CALL(SYS_setgroups, 1, 0, 0, 0, 0), geteuid() ? EPERM : EFAULT },
        { "capset(NULL)", CALL(SYS_capset, 0, 0, 0, 0, 0), EFAULT },
        { "keyctl(KEYCTL_READ)", CALL(SYS_keyctl, 11, -1, 0, 0, 0), ENOKEY },
        { "unshare(CLONE_FILES)", CALL(SYS_unshare, CLONE_FILES, 0, 0, 0, 0), 0 },
        /* other socket options, and the same numbers at other levels, reach the kernel */
        { "setsockopt(IP_TOS)", CALL(SYS_setsockopt, -1, IPPROTO_IP, IP_TOS, 0, 0), EBADF },
        { "setsockopt(IP_MULTICAST_TTL)", CALL(SYS_setsockopt, -1, IPPROTO_IP, IP_MULTICAST_TTL, 0, 0), EBADF },
        { "setsockopt(SOL_SOCKET, 35)", CALL(SYS_setsockopt, -1, SOL_SOCKET, 35, 0, 0), EBADF },
        { "setsockopt(TCP, 42)", CALL(SYS_setsockopt, -1, IPPROTO_TCP, 42, 0, 0), EBADF },
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        int got = run(p, do_call, &t[i].c);
        if (got != t[i].want)
            fail_msg("%s: %s, want %s", t[i].n, ename(got), ename(t[i].want));
    }
}

static void test_allow_and_deny_syscalls(void **state)
{
    (void)state;
    const struct ps_profile *p = profile(BASE "[Seccomp]\nAllowSyscalls=ptrace\nDenySyscalls=chroot getcwd\n");
    expect_allowed(p, "ptrace lifted by AllowSyscalls=", CALL(SYS_ptrace, 12, -1, 0, 0, 0));
    expect_denied(p, "chroot(NULL) by DenySyscalls=", CALL(SYS_chroot, 0, 0, 0, 0, 0), EPERM);
    expect_denied(p, "getcwd(NULL,0) by DenySyscalls=", CALL(SYS_getcwd, 0, 0, 0, 0, 0), EPERM);
    /* lifting one entry leaves the others in force */
    expect_denied(p, "process_vm_readv", CALL(SYS_process_vm_readv, 0, 0, 1, 0, 1), EPERM);
    /* DenySyscalls= of a syscall that also has conditional rules denies it whole */
    const struct ps_profile *q = profile(BASE "[Seccomp]\nDenySyscalls=socket clone3\n");
    expect_denied(q, "socket(AF_UNIX) by DenySyscalls=", CALL(SYS_socket, AF_UNIX, -1, 0, 0, 0), EPERM);
    expect_denied(q, "clone3 stays ENOSYS", CALL(SYS_clone3, 0, 0, 0, 0, 0), ENOSYS);
    assert_int_equal(run(q, do_fork, NULL), 0);
}

static int do_int80(const void *arg)
{
    (void)arg;
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");   /* i386 getpid */
    return r < 0 ? (errno = (int)-r, -1) : 0;
}

static void test_other_abis_killed(void **state)
{
    (void)state;
    const struct ps_profile *p = profile(BASE);
    int base = run(NULL, do_int80, NULL), got = run(p, do_int80, NULL);
    if (got != -SIGSYS)
        fail_msg("i386 int 0x80 under the filter: %s, want killed by SIGSYS", ename(got));
    if (base == -SIGSYS)
        fail_msg("i386 int 0x80 is killed without the filter too");
    struct call x32 = CALL(__X32_SYSCALL_BIT | SYS_getpid, 0, 0, 0, 0, 0);
    got = run(p, do_call, &x32);
    if (got != -SIGSYS)
        fail_msg("x32 getpid under the filter: %s, want killed by SIGSYS", ename(got));
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_cfgs; i++)
        ps_config_free(cfgs[i]);
    n_cfgs = 0;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_denials_eperm),
        cmocka_unit_test(test_clone_newuser_eperm),
        cmocka_unit_test(test_socket_families),
        cmocka_unit_test(test_netlink_protocols),
        cmocka_unit_test(test_clone3_enosys_fork_works),
        cmocka_unit_test(test_allowed_reach_kernel),
        cmocka_unit_test(test_allow_and_deny_syscalls),
        cmocka_unit_test(test_other_abis_killed),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
