/* Identity of DNS clients; why UDP needs its own lookup is explained in dns_ident.h. */
#include "proxyd/dns_ident.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "common/sockdiag.h"

/* From linux/netfilter_ipv4.h and ip6_tables.h, which clash with <netinet/in.h>. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

struct owners {
    bool found;                 /* a socket that can send from the datagram's source address */
    uid_t uid;                  /* its owner */
    bool any;                   /* any socket on the port at all, and the owner of the first */
    uid_t any_uid;
    bool conflict;              /* sockets of two owners on the port */
};

/* Is the local address of a dumped socket (family fam, address a) one that can send from the
 * datagram's source address? */
static bool local_matches(int fam, const uint32_t a[4], const struct sockaddr_storage *peer)
{
    static const uint8_t zero[16];
    if (peer->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)peer;
        if (fam == AF_INET) return a[0] == 0 || a[0] == sin->sin_addr.s_addr;
        /* A dual-stack IPv6 socket sends IPv4 from :: or ::ffff:a.b.c.d. */
        static const uint8_t mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };
        return memcmp(a, zero, 16) == 0 ||
               (memcmp(a, mapped, 12) == 0 && a[3] == sin->sin_addr.s_addr);
    }
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)peer;
    return fam == AF_INET6 && (memcmp(a, zero, 16) == 0 || memcmp(a, &sin6->sin6_addr, 16) == 0);
}

/* Dump UDP sockets of family fam whose local port is port (host order), folding their owners. */
static int dump_udp(int fam, uint16_t port, const struct sockaddr_storage *peer, struct owners *o)
{
    struct {
        struct nlmsghdr nh;
        struct inet_diag_req_v2 req;
        struct rtattr rta;
        struct inet_diag_bc_op ops[4];
    } msg;
    memset(&msg, 0, sizeof msg);
    msg.nh.nlmsg_len = sizeof msg;
    msg.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.nh.nlmsg_seq = 1;
    msg.req.sdiag_family = (uint8_t)fam;
    msg.req.sdiag_protocol = IPPROTO_UDP;
    msg.req.idiag_states = ~0u;
    msg.rta.rta_type = INET_DIAG_REQ_BYTECODE;
    msg.rta.rta_len = RTA_LENGTH(sizeof msg.ops);
    /* sport >= port && sport <= port.  A port condition takes two op slots (the second carries the
     * port in .no); "no" jumps past the end (len + 4) mean reject. */
    msg.ops[0] = (struct inet_diag_bc_op){ INET_DIAG_BC_S_GE, 8, 16 + 4 };
    msg.ops[1] = (struct inet_diag_bc_op){ 0, 0, port };
    msg.ops[2] = (struct inet_diag_bc_op){ INET_DIAG_BC_S_LE, 8, 8 + 4 };
    msg.ops[3] = (struct inet_diag_bc_op){ 0, 0, port };

    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (s < 0) return -1;
    struct sockaddr_nl k = { .nl_family = AF_NETLINK };
    if (sendto(s, &msg, sizeof msg, 0, (struct sockaddr *)&k, sizeof k) < 0) goto fail;
    for (;;) {
        long buf[8192 / sizeof(long)];
        ssize_t n = recv(s, buf, sizeof buf, 0);
        if (n < 0) { if (errno == EINTR) continue; goto fail; }
        if (n == 0) { errno = EPROTO; goto fail; }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE) { close(s); return 0; }
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *err = NLMSG_DATA(h);
                errno = h->nlmsg_len >= NLMSG_LENGTH(sizeof *err) && err->error ? -err->error : EPROTO;
                goto fail;
            }
            if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
                continue;
            const struct inet_diag_msg *d = NLMSG_DATA(h);
            if (ntohs(d->id.idiag_sport) != port) continue;          /* the filter already did */
            /* Every owner of the port counts, whatever address its socket is bound to: a socket
             * bound to 127.0.0.2:P can send from 127.0.0.1:P (IP_PKTINFO's ipi_spec_dst picks the
             * source address, no privilege needed), so "only matching addresses" would let it
             * pass its queries off as those of an account bound to 127.0.0.1:P. */
            if (o->any && o->any_uid != d->idiag_uid) o->conflict = true;
            o->any = true;
            o->any_uid = d->idiag_uid;
            if (!local_matches(d->idiag_family, d->id.idiag_src, peer)) continue;
            o->found = true;
            o->uid = d->idiag_uid;
        }
    }
fail:;
    int e = errno;
    close(s);
    errno = e;
    return -1;
}

int dns_ident_udp(const struct sockaddr_storage *peer, uint32_t mark, uid_t *uid)
{
    struct owners o = { 0 };
    uint16_t port;
    if (peer->ss_family == AF_INET) port = ntohs(((const struct sockaddr_in *)peer)->sin_port);
    else if (peer->ss_family == AF_INET6) port = ntohs(((const struct sockaddr_in6 *)peer)->sin6_port);
    else { errno = EAFNOSUPPORT; return -1; }
    if (port == 0) { errno = ENOENT; return -1; }
    /* Both families, always: an IPv6 socket can send IPv4 datagrams, and an IPv4 one cannot send
     * IPv6 ones but still owns the port number. */
    if (dump_udp(AF_INET, port, peer, &o) < 0) return -1;
    if (dump_udp(AF_INET6, port, peer, &o) < 0) return -1;
    if (mark) {
        /* The sender's UID, stamped by the ruleset: it holds even when the socket is gone.  Any
         * socket of another owner on the port is still a conflict: a mark that some other rule
         * set must not hand out that owner's identity. */
        if ((o.any && o.any_uid != (uid_t)mark) || o.conflict) { errno = ENOTUNIQ; return -1; }
        *uid = (uid_t)mark;
        return 0;
    }
    if (!o.found) { errno = ENOENT; return -1; }
    if (o.conflict) { errno = ENOTUNIQ; return -1; }
    *uid = o.uid;
    return 0;
}

int dns_ident_tcp(int fd, const struct sockaddr_storage *peer, struct sockaddr_storage *orig_dst,
                  uid_t *uid)
{
    struct sockaddr_storage dst;
    socklen_t len = sizeof dst;
    int rc;
    memset(&dst, 0, sizeof dst);
    if (peer->ss_family == AF_INET)
        rc = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len);
    else
        rc = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len);
    /* No conntrack entry: the client connected to us directly, so our address is its destination. */
    if (rc < 0) {
        len = sizeof dst;
        if (getsockname(fd, (struct sockaddr *)&dst, &len) < 0) return -1;
    }
    if (orig_dst) *orig_dst = dst;
    uint64_t inode;
    return ps_sockdiag_lookup(IPPROTO_TCP, (const struct sockaddr *)peer, (const struct sockaddr *)&dst,
                              uid, &inode);
}
