/* sandbox_probe: run inside a session by the pam_sandbox integration tests; prints one line per
 * check, "NAME RESULT", where RESULT is "ok" (the call succeeded), the errno name (EPERM,
 * EAFNOSUPPORT, ...), "killed:SIGNAL" or a value.  It asserts nothing itself: the test compares
 * the lines of a sandboxed session with those of an unconfined account.
 *
 * Every denied call is made with harmless arguments (bad descriptors, NULL pointers, impossible
 * sizes), so that a call the filter lets through fails in the kernel with EBADF/EFAULT/EINVAL
 * instead of doing anything; the namespace calls run in a throw-away child.
 *
 *   sandbox_probe [all]            every check below
 *   sandbox_probe forkbomb MAX SEC fork children (each sleeping) until fork fails or MAX, print
 *                                  "forkbomb N ERRNO", hold them SEC seconds, then exit */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif

/* In a sanitizer build: LeakSanitizer needs ptrace, which the session's filter denies. */
__attribute__((used)) const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "detect_leaks=0"; }

static const char *res(long r)
{
    static char buf[64];
    if (r >= 0)
        return "ok";
    const char *n = strerrorname_np(errno);
    snprintf(buf, sizeof buf, "%s", n ? n : "E?");
    return buf;
}

static void line(const char *name, const char *result)
{
    printf("%s %s\n", name, result);
    fflush(stdout);
}

static void sock(const char *name, long family, long type, long proto)
{
    long fd = syscall(SYS_socket, family, type, proto);
    line(name, res(fd));
    if (fd >= 0)
        close((int)fd);
}

static void sockets(void)
{
    sock("socket.AF_UNIX", AF_UNIX, SOCK_STREAM, 0);
    sock("socket.AF_INET", AF_INET, SOCK_STREAM, 0);
    sock("socket.AF_INET6", AF_INET6, SOCK_STREAM, 0);
    sock("socket.AF_INET.udp", AF_INET, SOCK_DGRAM, 0);
    sock("socket.AF_PACKET", AF_PACKET, SOCK_RAW, 0);
    sock("socket.AF_BLUETOOTH", AF_BLUETOOTH, SOCK_STREAM, 0);
    sock("socket.AF_VSOCK", AF_VSOCK, SOCK_STREAM, 0);
    sock("socket.AF_TIPC", AF_TIPC, SOCK_RDM, 0);
    sock("socket.AF_ALG", AF_ALG, SOCK_SEQPACKET, 0);
    sock("socket.AF_CAN", AF_CAN, SOCK_RAW, 1);
    sock("socket.AF_RDS", AF_RDS, SOCK_SEQPACKET, 0);
    sock("socket.AF_XDP", AF_XDP, SOCK_RAW, 0);
    sock("socket.AF_KEY", AF_KEY, SOCK_RAW, 2);
    sock("socket.AF_UNSPEC", AF_UNSPEC, SOCK_STREAM, 0);
    /* the kernel reads an int: AF_PACKET with garbage in the upper half is still AF_PACKET */
    sock("socket.AF_PACKET.highbits", (1L << 32) | AF_PACKET, SOCK_RAW, 0);
    /* the kernel makes this an AF_PACKET socket (EPERM without CAP_NET_RAW if nothing stops it) */
    sock("socket.AF_INET.SOCK_PACKET", AF_INET, SOCK_PACKET, 0);
    sock("socket.AF_INET.SOCK_PACKET.flags", AF_INET, SOCK_PACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sock("netlink.ROUTE", AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    sock("netlink.AUDIT", AF_NETLINK, SOCK_RAW, NETLINK_AUDIT);
    sock("netlink.SOCK_DIAG", AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG);
    sock("netlink.NETFILTER", AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
    sock("netlink.KOBJECT_UEVENT", AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT);
    sock("netlink.GENERIC", AF_NETLINK, SOCK_RAW, NETLINK_GENERIC);
    sock("netlink.XFRM", AF_NETLINK, SOCK_RAW, NETLINK_XFRM);
    sock("netlink.AUDIT.highbits", AF_NETLINK, SOCK_RAW, (1L << 32) | NETLINK_AUDIT);
    int sv[2];
    long r = syscall(SYS_socketpair, AF_TIPC, SOCK_SEQPACKET, 0, sv);
    line("socketpair.AF_TIPC", res(r));
    r = syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, sv);
    line("socketpair.AF_UNIX", res(r));
    if (r == 0) {
        close(sv[0]);
        close(sv[1]);
    }
}

/* §4.2, each with arguments that make it fail harmlessly if it gets through. */
static void syscalls(void)
{
    struct { const char *name; long nr, a, b, c, d, e; } t[] = {
        { "sys.ptrace", SYS_ptrace, 12 /* PTRACE_GETREGS */, -1, 0, 0, 0 },
        { "sys.process_vm_readv", SYS_process_vm_readv, 0, 0, 1, 0, 1 },
        { "sys.process_vm_writev", SYS_process_vm_writev, 0, 0, 1, 0, 1 },
        { "sys.pidfd_getfd", SYS_pidfd_getfd, -1, 0, 0, 0, 0 },
        { "sys.bpf", SYS_bpf, 0 /* BPF_MAP_CREATE */, 0, 128, 0, 0 },
        { "sys.perf_event_open", SYS_perf_event_open, 0, 0, -1, -1, 0 },
        { "sys.userfaultfd", SYS_userfaultfd, -1, 0, 0, 0, 0 },
        { "sys.io_uring_setup", SYS_io_uring_setup, 1, 0, 0, 0, 0 },
        { "sys.io_uring_enter", SYS_io_uring_enter, -1, 0, 0, 0, 0 },
        { "sys.io_uring_register", SYS_io_uring_register, -1, 0, 0, 0, 0 },
        { "sys.mount", SYS_mount, 0, 0, 0, 0, 0 },
        { "sys.umount2", SYS_umount2, 0, -1, 0, 0, 0 },
        { "sys.pivot_root", SYS_pivot_root, 0, 0, 0, 0, 0 },
        { "sys.fsopen", SYS_fsopen, 0, 0, 0, 0, 0 },
        { "sys.fsconfig", SYS_fsconfig, -1, 0, 0, 0, 0 },
        { "sys.fsmount", SYS_fsmount, -1, 0, 0, 0, 0 },
        { "sys.fspick", SYS_fspick, -1, 0, 0, 0, 0 },
        { "sys.move_mount", SYS_move_mount, -1, 0, -1, 0, 0 },
        { "sys.open_tree", SYS_open_tree, -1, 0, 0, 0, 0 },
        { "sys.mount_setattr", SYS_mount_setattr, -1, 0, 0, 0, 0 },
        { "sys.setns", SYS_setns, -1, 0, 0, 0, 0 },
        { "sys.kexec_load", SYS_kexec_load, 0, 1000000, 0, 0, 0 },
        { "sys.kexec_file_load", SYS_kexec_file_load, -1, -1, 0, 0, -1 },
        { "sys.init_module", SYS_init_module, 0, 0, 0, 0, 0 },
        { "sys.finit_module", SYS_finit_module, -1, 0, -1, 0, 0 },
        { "sys.delete_module", SYS_delete_module, 0, 0, 0, 0, 0 },
        { "ioctl.TIOCSTI", SYS_ioctl, -1, TIOCSTI, 0, 0, 0 },
        { "ioctl.TIOCSTI.highbits", SYS_ioctl, -1, (1L << 32) | TIOCSTI, 0, 0, 0 },
        { "ioctl.TIOCLINUX", SYS_ioctl, -1, TIOCLINUX, 0, 0, 0 },
        { "ioctl.TCGETS", SYS_ioctl, -1, TCGETS, 0, 0, 0 },          /* allowed: EBADF */
        { "sys.clone3", SYS_clone3, 0, 0, 0, 0, 0 },                  /* size 0: EINVAL if let through */
        { "sys.keyctl", SYS_keyctl, 11 /* KEYCTL_READ */, -1, 0, 0, 0 },
        { "sys.memfd_create", SYS_memfd_create, 0, 0, 0, 0, 0 },
        { "sys.seccomp", SYS_seccomp, 1 /* SET_MODE_FILTER */, 0, 0, 0, 0 },
        { "sys.fchown", SYS_fchown, -1, 0, 0, 0, 0 },
        { "sys.read", SYS_read, -1, 0, 0, 0, 0 },
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        errno = 0;
        long r = syscall(t[i].nr, t[i].a, t[i].b, t[i].c, t[i].d, t[i].e, 0L);
        line(t[i].name, res(r));
    }
}

/* The result of fn in a child, which exits with 0 on success or the errno. */
static void in_child(const char *name, int (*fn)(void))
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn() < 0 ? errno : 0);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0) {
        line(name, "fork-failed");
        return;
    }
    if (WIFSIGNALED(st)) {
        char b[64];
        snprintf(b, sizeof b, "killed:%s", sigabbrev_np(WTERMSIG(st)) ?: "?");
        line(name, b);
        return;
    }
    errno = WEXITSTATUS(st);
    line(name, res(errno ? -1 : 0));
}

static int do_unshare_user(void) { return unshare(CLONE_NEWUSER); }
static int do_clone_user(void)
{
    long r = syscall(SYS_clone, (long)(CLONE_NEWUSER | SIGCHLD), 0L, 0L, 0L, 0L);
    if (r == 0)
        _exit(0);
    if (r > 0)
        waitpid((pid_t)r, NULL, 0);
    return r < 0 ? -1 : 0;
}
/* i386 getpid through int 0x80: another ABI, which the filter kills rather than interprets. */
static int do_int80(void)
{
#if defined(__x86_64__)
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
    return r < 0 ? (errno = (int)-r, -1) : 0;
#else
    errno = ENOSYS;
    return -1;
#endif
}
/* x32 getpid: same architecture number as x86_64, told apart by a bit in the syscall number. */
static int do_x32(void) { return syscall(__X32_SYSCALL_BIT | SYS_getpid) < 0 ? -1 : 0; }
static int do_fork(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    return p < 0 ? -1 : (waitpid(p, NULL, 0), 0);
}
static void *thread_fn(void *a) { return a; }
static int do_thread(void)
{
    pthread_t t;
    int e = pthread_create(&t, NULL, thread_fn, NULL);
    if (e) {
        errno = e;
        return -1;
    }
    pthread_join(t, NULL);
    return 0;
}
static int do_tiocsti_tty(void)
{
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY);
    if (fd < 0)
        return -1;
    char c = '\n';       /* only if the filter lets it through: an empty line on our own tty */
    int r = ioctl(fd, TIOCSTI, &c);
    close(fd);
    return r;
}

static void status_lines(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char b[256];
    while (f && fgets(b, sizeof b, f)) {
        if (!strncmp(b, "NoNewPrivs:", 11) || !strncmp(b, "CapBnd:", 7) ||
            !strncmp(b, "CapAmb:", 7) || !strncmp(b, "CapInh:", 7) || !strncmp(b, "Seccomp:", 8) ||
            !strncmp(b, "Seccomp_filters:", 16)) {
            char *c = strchr(b, ':');
            *c = 0;
            c++;
            c += strspn(c, " \t");
            c[strcspn(c, "\n")] = 0;
            char n[300];
            snprintf(n, sizeof n, "status.%s", b);
            line(n, c);
        }
    }
    if (f)
        fclose(f);
    struct rlimit rl;
    char v[96];
    getrlimit(RLIMIT_NPROC, &rl);
    snprintf(v, sizeof v, "%lld:%lld", (long long)rl.rlim_cur, (long long)rl.rlim_max);
    line("rlimit.NPROC", v);
    getrlimit(RLIMIT_CORE, &rl);
    snprintf(v, sizeof v, "%lld:%lld", (long long)rl.rlim_cur, (long long)rl.rlim_max);
    line("rlimit.CORE", v);
}

static int forkbomb(long max, int hold)
{
    long n = 0;
    int err = 0;
    setpgid(0, 0);
    for (; n < max; n++) {
        pid_t p = fork();
        if (p == 0) {
            sleep((unsigned)hold + 5);
            _exit(0);
        }
        if (p < 0) {
            err = errno;
            break;
        }
    }
    printf("forkbomb %ld %s\n", n, err ? strerrorname_np(err) : "none");
    fflush(stdout);
    sleep((unsigned)hold);
    kill(0, SIGKILL);     /* our own process group: the children */
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "forkbomb") == 0)
        return forkbomb(argc > 2 ? atol(argv[2]) : 100, argc > 3 ? atoi(argv[3]) : 1);
    status_lines();
    sockets();
    syscalls();
    in_child("unshare.CLONE_NEWUSER", do_unshare_user);
    in_child("clone.CLONE_NEWUSER", do_clone_user);
    in_child("fork", do_fork);
    in_child("pthread_create", do_thread);
    in_child("tiocsti.tty", do_tiocsti_tty);
    in_child("abi.i386_int80", do_int80);
    in_child("abi.x32", do_x32);
    return 0;
}
