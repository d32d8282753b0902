/* Step 7 of open_session: the two seccomp filters (DESIGN.md §4.2-4.3).
 *
 * Filter 1 makes clone3() fail with ENOSYS.  Its flags live in memory that BPF cannot read, so it
 * could create a user namespace past any rule on its arguments; glibc falls back to clone() on
 * ENOSYS only (fork, pthread_create and posix_spawn keep working).  It is a separate filter
 * installed first because, among filters returning an errno, the kernel takes the data of the most
 * recently installed one: an EPERM for clone3 in the main filter would defeat the fallback.
 *
 * Filter 2 (default allow, native architecture only):
 *   - socket(): a family allow-list, everything else EAFNOSUPPORT (the answer of a kernel without
 *     that family, which libpam and sshd handle; EPERM breaks logins, §9.2); AF_NETLINK only with
 *     the protocols of AllowNetlink=; AF_INET not with SOCK_PACKET (an AF_PACKET socket under
 *     another name); socketpair() only AF_UNIX.
 *   - EPERM for the §4.2 list, unshare()/clone() with CLONE_NEWUSER, ioctl(TIOCSTI/TIOCLINUX),
 *     and DenySyscalls=; AllowSyscalls= lifts entries of the default list.
 *   - libseccomp's default bad-architecture action (kill) stays and no other ABI is added: an i386
 *     process would reach socket() through socketcall(), whose family BPF cannot see.
 *
 * Comparisons are unsigned and on all 64 bits.  Where the kernel reads only an int (the socket
 * family, the netlink protocol), a value with garbage in the upper half is above every allowed
 * value and so denied; for ioctl(), whose command the kernel truncates to 32 bits, the rule masks
 * the upper half so that TIOCSTI|(1<<32) is still TIOCSTI. */
#include <errno.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include "pam_sandbox/sandbox.h"

/* Denied with EPERM unless AllowSyscalls= lifts them (§4.2; the reasons are in pam_sandbox(8)). */
static const char *const default_denied[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
    "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
    "open_tree", "mount_setattr", "setns",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    /* request_key("dns_resolver", name): the kernel runs its upcall as root, and root's lookups
     * are not steered, so the name would be resolved outside policy DNS (and read back) */
    "request_key",
};

/* Multicast group membership: the IGMP/MLD reports that joining and leaving make the kernel send
 * carry group and source addresses the user chose, and have no socket owner that nftables could
 * match (DESIGN §9.9): a covert channel off the host.  setsockopt() options, per level. */
static const unsigned mcast_ip_opts[] = {
    35, 36, 37, 38, 39, 40, 41,          /* IP_ADD_MEMBERSHIP .. IP_MSFILTER */
    42, 43, 44, 45, 46, 47, 48,          /* MCAST_JOIN_GROUP .. MCAST_MSFILTER */
};
static const unsigned mcast_ipv6_opts[] = {
    20, 21,                              /* IPV6_ADD_MEMBERSHIP, IPV6_DROP_MEMBERSHIP */
    27, 28,                              /* IPV6_JOIN_ANYCAST, IPV6_LEAVE_ANYCAST (solicited-node MLD) */
    42, 43, 44, 45, 46, 47, 48,          /* MCAST_* */
};

struct builder {
    const struct ps_profile *p;
    char *err;
    size_t errlen;
};

static bool in_list(const int *v, size_t n, int nr)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == nr)
            return true;
    return false;
}

static bool lifted(const struct builder *b, int nr)
{
    return in_list(b->p->allow_syscalls, b->p->n_allow_syscalls, nr);
}

/* Denied as a whole by DenySyscalls=: no conditional rule is needed (or allowed) beside it. */
static bool denied_whole(const struct builder *b, int nr)
{
    return in_list(b->p->deny_syscalls, b->p->n_deny_syscalls, nr);
}

static int fail(struct builder *b, const char *what, int nr, int rc)
{
    char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    snprintf(b->err, b->errlen, "seccomp: %s for %s: %s", what, name ? name : "?", strerror(-rc));
    free(name);
    return -1;
}

static int resolve(struct builder *b, const char *name)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        snprintf(b->err, b->errlen, "seccomp: system call %s unknown to libseccomp", name);
    return nr;
}

/* AF_INET and AF_INET6: stream and datagram sockets of TCP, UDP and ICMP (the ping sockets),
 * nothing else.  Other protocols (SCTP, DCCP, UDP-Lite, L2TP, MPTCP) and types would get no packet
 * past the ruleset's final drop, but asking for one makes the kernel load and run its code (a
 * module each, loaded on demand for any account): kernel code behind many local privilege
 * escalations, none of which a session needs.  Answered as by a kernel without them; a raw socket
 * as by the kernel to an account without CAP_NET_RAW, which a session never has anyway.
 * The type's low 4 bits are the type (the rest are flags); the protocol is compared on all 64
 * bits, so garbage in the upper half is above every allowed value and denied. */
static int inet_protocol_rules(struct builder *b, scmp_filter_ctx ctx, int sock)
{
    static const struct { uint64_t mask, val; } bad_types[] = {
        { 0xf, 0 },                       /* no type: the kernel would look a module up for it */
        { 0xc, 4 },                       /* 4..7: SOCK_RDM, SOCK_SEQPACKET, SOCK_DCCP, 7 */
        { 0xe, 8 },                       /* 8, 9 */
    };
    /* allowed protocols: 0 (the type's default), 1 ICMP, 6 TCP, 17 UDP, 58 ICMPv6; the rest of
     * 2..58 as aligned blocks (a rule compares an argument once), above 58 at once */
    static const struct { uint64_t mask, val; } bad_protos[] = {
        { ~1ull, 2 }, { ~1ull, 4 }, { ~0ull, 7 }, { ~7ull, 8 }, { ~0ull, 16 }, { ~1ull, 18 },
        { ~3ull, 20 }, { ~7ull, 24 }, { ~15ull, 32 }, { ~7ull, 48 }, { ~1ull, 56 },
    };
    const int fams[] = { AF_INET, AF_INET6 };
    int rc;
    for (size_t f = 0; f < 2; f++) {
        const scmp_datum_t fam = (scmp_datum_t)fams[f];
        for (size_t i = 0; i < sizeof bad_types / sizeof *bad_types; i++)
            if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ESOCKTNOSUPPORT), sock, 2, SCMP_A0(SCMP_CMP_EQ, fam),
                                       SCMP_A1(SCMP_CMP_MASKED_EQ, bad_types[i].mask, bad_types[i].val))) < 0)
                return fail(b, "socket type rule", sock, rc);
        /* SOCK_PACKET (10) is an AF_PACKET socket for AF_INET (family_rules); for AF_INET6 a type
         * the kernel would look a module up for */
        if (fams[f] == AF_INET6 &&
            (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ESOCKTNOSUPPORT), sock, 2, SCMP_A0(SCMP_CMP_EQ, fam),
                                   SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_PACKET))) < 0)
            return fail(b, "socket type rule", sock, rc);
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), sock, 2, SCMP_A0(SCMP_CMP_EQ, fam),
                                   SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW))) < 0)
            return fail(b, "raw socket rule", sock, rc);
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPROTONOSUPPORT), sock, 2, SCMP_A0(SCMP_CMP_EQ, fam),
                                   SCMP_A2(SCMP_CMP_GT, 58))) < 0)
            return fail(b, "protocol rule", sock, rc);
        for (size_t i = 0; i < sizeof bad_protos / sizeof *bad_protos; i++)
            if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPROTONOSUPPORT), sock, 2, SCMP_A0(SCMP_CMP_EQ, fam),
                                       SCMP_A2(SCMP_CMP_MASKED_EQ, bad_protos[i].mask, bad_protos[i].val))) < 0)
                return fail(b, "protocol rule", sock, rc);
    }
    return 0;
}

static int family_rules(struct builder *b, scmp_filter_ctx ctx)
{
    const struct ps_profile *p = b->p;
    bool allowed[AF_NETLINK + 1] = { false };
    allowed[AF_UNIX] = true;
    if (p->network != PS_NET_BLOCK)
        allowed[AF_INET] = allowed[AF_INET6] = true;
    if (p->allow_netlink)
        allowed[AF_NETLINK] = true;
    int max = 0, rc;
    for (int f = 0; f <= AF_NETLINK; f++)
        if (allowed[f])
            max = f;

    const int sock = SCMP_SYS(socket);
    if (denied_whole(b, sock))
        return 0;
    const uint32_t act = SCMP_ACT_ERRNO(PS_ERRNO_FAMILY);
    if ((rc = seccomp_rule_add(ctx, act, sock, 1, SCMP_A0(SCMP_CMP_GT, (scmp_datum_t)max))) < 0)
        return fail(b, "family rule", sock, rc);
    for (int f = 0; f < max; f++)
        if (!allowed[f] &&
            (rc = seccomp_rule_add(ctx, act, sock, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)f))) < 0)
            return fail(b, "family rule", sock, rc);
    /* socket(AF_INET, SOCK_PACKET): the kernel turns it into an AF_PACKET socket after this filter
     * has seen AF_INET.  The type's low 4 bits are the type (the rest SOCK_NONBLOCK/SOCK_CLOEXEC,
     * or EINVAL); the kernel reads an int, so the upper half does not matter. */
    if (allowed[AF_INET] &&
        (rc = seccomp_rule_add(ctx, act, sock, 2, SCMP_A0(SCMP_CMP_EQ, AF_INET),
                               SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_PACKET))) < 0)
        return fail(b, "SOCK_PACKET rule", sock, rc);

    if (allowed[AF_INET] && (rc = inet_protocol_rules(b, ctx, sock)) < 0)
        return rc;

    if (allowed[AF_NETLINK]) {
        bool keep[NETLINK_AUDIT + 1] = { false };
        keep[NETLINK_ROUTE] = p->allow_netlink & PS_NETLINK_ROUTE;
        keep[NETLINK_AUDIT] = p->allow_netlink & PS_NETLINK_AUDIT;
        int maxk = 0;
        for (int q = 0; q <= NETLINK_AUDIT; q++)
            if (keep[q])
                maxk = q;
        if ((rc = seccomp_rule_add(ctx, act, sock, 2, SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
                                   SCMP_A2(SCMP_CMP_GT, (scmp_datum_t)maxk))) < 0)
            return fail(b, "netlink rule", sock, rc);
        for (int q = 0; q < maxk; q++)
            if (!keep[q] && (rc = seccomp_rule_add(ctx, act, sock, 2, SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
                                                   SCMP_A2(SCMP_CMP_EQ, (scmp_datum_t)q))) < 0)
                return fail(b, "netlink rule", sock, rc);
    }

    /* socketpair(): only AF_UNIX has a use; AF_TIPC, for one, implements it. */
    const int pair = SCMP_SYS(socketpair);
    if (!denied_whole(b, pair) &&
        ((rc = seccomp_rule_add(ctx, act, pair, 1, SCMP_A0(SCMP_CMP_GT, AF_UNIX))) < 0 ||
         (rc = seccomp_rule_add(ctx, act, pair, 1, SCMP_A0(SCMP_CMP_EQ, AF_UNSPEC))) < 0))
        return fail(b, "family rule", pair, rc);
    return 0;
}

static int syscall_rules(struct builder *b, scmp_filter_ctx ctx)
{
    const uint32_t eperm = SCMP_ACT_ERRNO(PS_ERRNO_SYSCALL);
    int rc;
    for (size_t i = 0; i < sizeof default_denied / sizeof *default_denied; i++) {
        int nr = resolve(b, default_denied[i]);
        if (nr == __NR_SCMP_ERROR)
            return -1;
        if (lifted(b, nr) || denied_whole(b, nr))
            continue;
        if ((rc = seccomp_rule_add(ctx, eperm, nr, 0)) < 0)
            return fail(b, "deny rule", nr, rc);
    }
    /* New user namespaces: the door to most of the kernel's CAP_SYS_ADMIN-in-userns surface. */
    const int ns_calls[] = { SCMP_SYS(unshare), SCMP_SYS(clone) };
    for (size_t i = 0; i < 2; i++) {
        if (lifted(b, ns_calls[i]) || denied_whole(b, ns_calls[i]))
            continue;
        if ((rc = seccomp_rule_add(ctx, eperm, ns_calls[i], 1,
                                   SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))) < 0)
            return fail(b, "CLONE_NEWUSER rule", ns_calls[i], rc);
    }
    /* Terminal injection: TIOCSTI pushes input into a terminal the user may share with root
     * (su -), TIOCLINUX can do the same through the console selection. */
    const int ioc = SCMP_SYS(ioctl);
    if (!lifted(b, ioc) && !denied_whole(b, ioc)) {
        const unsigned long cmds[] = { TIOCSTI, TIOCLINUX };
        for (size_t i = 0; i < 2; i++)
            if ((rc = seccomp_rule_add(ctx, eperm, ioc, 1,
                                       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, cmds[i]))) < 0)
                return fail(b, "ioctl rule", ioc, rc);
    }
    /* Multicast joins (see mcast_ip_opts).  The kernel reads level and option as ints: the upper
     * halves are masked off, as for ioctl(). */
    const int sso = SCMP_SYS(setsockopt);
    if (!lifted(b, sso) && !denied_whole(b, sso)) {
        const struct { unsigned level; const unsigned *opts; size_t n; } lv[] = {
            { IPPROTO_IP, mcast_ip_opts, sizeof mcast_ip_opts / sizeof *mcast_ip_opts },
            { IPPROTO_IPV6, mcast_ipv6_opts, sizeof mcast_ipv6_opts / sizeof *mcast_ipv6_opts },
        };
        for (size_t l = 0; l < 2; l++)
            for (size_t i = 0; i < lv[l].n; i++)
                if ((rc = seccomp_rule_add(ctx, eperm, sso, 2,
                                           SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, lv[l].level),
                                           SCMP_A2(SCMP_CMP_MASKED_EQ, 0xffffffffu, lv[l].opts[i]))) < 0)
                    return fail(b, "setsockopt rule", sso, rc);
    }
    /* DenySyscalls=.  clone3 is already ENOSYS in the first filter; an EPERM here would take
     * precedence and break glibc's fallback to clone(). */
    for (size_t i = 0; i < b->p->n_deny_syscalls; i++) {
        int nr = b->p->deny_syscalls[i];
        if (nr == SCMP_SYS(clone3))
            continue;
        if ((rc = seccomp_rule_add(ctx, eperm, nr, 0)) < 0)
            return fail(b, "DenySyscalls= rule", nr, rc);
    }
    return 0;
}

static scmp_filter_ctx new_ctx(struct builder *b, uint32_t def)
{
    scmp_filter_ctx ctx = seccomp_init(def);
    if (!ctx) {
        snprintf(b->err, b->errlen, "seccomp_init failed");
        return NULL;
    }
    /* no_new_privs is step 6, driven by the profile, not a side effect of loading; TSYNC puts the
     * filter on every thread of a threaded PAM application, or fails. */
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc < 0) {
        snprintf(b->err, b->errlen, "seccomp_attr_set: %s", strerror(-rc));
        seccomp_release(ctx);
        return NULL;
    }
    return ctx;
}

int ps_seccomp_build(const struct ps_profile *p, scmp_filter_ctx *clone3_filter,
                     scmp_filter_ctx *main_filter, char *err, size_t errlen)
{
    struct builder b = { .p = p, .err = err, .errlen = errlen };
    *clone3_filter = *main_filter = NULL;
    scmp_filter_ctx c3 = new_ctx(&b, SCMP_ACT_ALLOW), m = NULL;
    if (!c3)
        return -1;
    int rc, nr = SCMP_SYS(clone3);
    if (!lifted(&b, nr) && (rc = seccomp_rule_add(c3, SCMP_ACT_ERRNO(PS_ERRNO_CLONE3), nr, 0)) < 0) {
        fail(&b, "ENOSYS rule", nr, rc);
        goto bad;
    }
    if (!(m = new_ctx(&b, SCMP_ACT_ALLOW)))
        goto bad;
    if (family_rules(&b, m) < 0 || syscall_rules(&b, m) < 0)
        goto bad;
    *clone3_filter = c3;
    *main_filter = m;
    return 0;
bad:
    seccomp_release(c3);
    if (m)
        seccomp_release(m);
    return -1;
}

int ps_seccomp_load(scmp_filter_ctx clone3_filter, scmp_filter_ctx main_filter, char *err,
                    size_t errlen)
{
    int rc = seccomp_load(clone3_filter);
    if (rc < 0) {
        snprintf(err, errlen, "seccomp_load(clone3 filter): %s", strerror(-rc));
        return -1;
    }
    rc = seccomp_load(main_filter);
    if (rc < 0) {
        snprintf(err, errlen, "seccomp_load(main filter): %s", strerror(-rc));
        return -1;
    }
    return 0;
}

int ps_seccomp_install(const struct ps_profile *p, char *err, size_t errlen)
{
    scmp_filter_ctx c3, m;
    if (ps_seccomp_build(p, &c3, &m, err, errlen) < 0)
        return -1;
    int r = ps_seccomp_load(c3, m, err, errlen);
    seccomp_release(c3);
    seccomp_release(m);
    return r;
}
