/* Owner of a local TCP/UDP socket by its exact 4-tuple (DESIGN.md §5.2), with one netlink
 * SOCK_DIAG_BY_FAMILY request (no dump): the kernel looks the socket up in its hash tables, so the
 * cost does not grow with the number of sockets, and no privilege is needed.
 *
 * The kernel's two exact lookups read the request's addresses differently:
 *  - TCP (inet_diag_find_one_icsk): idiag_src/sport are the socket's LOCAL address, idiag_dst/dport
 *    the remote one — the natural reading;
 *  - UDP (udp_dump_one): "src and dst are swapped for historical reasons" (the kernel's comment):
 *    the lookup is done as for a received datagram, so idiag_src must be the REMOTE address.
 * Either lookup may fall back to a socket that matches less than the full tuple (a listener, an
 * unconnected UDP socket): answer_is_client() says which answers are believed. */
#include "common/sockdiag.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

/* One endpoint as inet_diag wants it: family, 16 address bytes (IPv4 in the first 4), port in
 * network order. */
struct endpoint {
    int family;
    uint32_t addr[4];
    uint16_t port;
};

static int endpoint_from(const struct sockaddr *sa, struct endpoint *e)
{
    memset(e, 0, sizeof *e);
    if (!sa) {
        errno = EINVAL;
        return -1;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        e->family = AF_INET;
        memcpy(e->addr, &sin->sin_addr, 4);
        e->port = sin->sin_port;
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        e->family = AF_INET6;
        memcpy(e->addr, &sin6->sin6_addr, 16);
        e->port = sin6->sin6_port;
        return 0;
    }
    errno = EAFNOSUPPORT;
    return -1;
}

/* Is (addr, port) of an answer from a socket of family `family` the endpoint e?  Equal, or the
 * IPv4-mapped form held by a dual-stack IPv6 socket; a wildcard address only when allowed. */
static bool endpoint_matches(int family, const uint32_t addr[4], uint16_t port,
                             const struct endpoint *e, bool wildcard_ok)
{
    static const uint32_t zero[4];
    if (port != e->port)
        return false;
    if (memcmp(addr, zero, sizeof zero) == 0)
        return wildcard_ok;
    if (e->family == AF_INET) {
        if (family == AF_INET)
            return addr[0] == e->addr[0];
        const uint32_t mapped_prefix[3] = { 0, 0, htonl(0xffff) };
        return memcmp(addr, mapped_prefix, sizeof mapped_prefix) == 0 && addr[3] == e->addr[0];
    }
    if (family == AF_INET) {
        /* e is an IPv4-mapped IPv6 address (an AF_INET6 socket connected to ::ffff:a.b.c.d), and
         * the kernel answered with the IPv4 socket at the other end. */
        const uint32_t mapped_prefix[3] = { 0, 0, htonl(0xffff) };
        return memcmp(e->addr, mapped_prefix, sizeof mapped_prefix) == 0 && addr[0] == e->addr[3];
    }
    return memcmp(addr, e->addr, 16) == 0;
}

/* Is the answer the client's own socket?  Both lookups fall back to less than the full tuple:
 *  - UDP: an unconnected socket bound to the port (maybe to the wildcard address) is what owns a
 *    datagram's source address, so a local match is enough;
 *  - TCP: the kernel falls back to a LISTENING socket on the client's port when no connection has
 *    the tuple (a rewritten source port, a remote client choosing its port): that listener's owner
 *    says nothing about who connects.  Only a connection is believed, with both ends equal to the
 *    tuple asked for, and one that still has an owner: a TIME_WAIT or orphaned socket (inode 0,
 *    uid 0) is reported as not found rather than as root. */
static bool answer_is_client(int proto, const struct inet_diag_msg *m, const struct endpoint *client,
                             const struct endpoint *server)
{
    if (proto == IPPROTO_UDP)
        return endpoint_matches(m->idiag_family, m->id.idiag_src, m->id.idiag_sport, client, true);
    enum { TCP_TIME_WAIT_ = 6, TCP_CLOSE_ = 7, TCP_LISTEN_ = 10, TCP_NEW_SYN_RECV_ = 12 };
    if (m->idiag_state == TCP_LISTEN_ || m->idiag_state == TCP_TIME_WAIT_ ||
        m->idiag_state == TCP_CLOSE_ || m->idiag_state == TCP_NEW_SYN_RECV_ || m->idiag_inode == 0)
        return false;
    return endpoint_matches(m->idiag_family, m->id.idiag_src, m->id.idiag_sport, client, false) &&
           endpoint_matches(m->idiag_family, m->id.idiag_dst, m->id.idiag_dport, server, false);
}

/* One netlink socket, opened on first use and kept: proxyd asks once per connection, and a socket
 * per question was a third of the syscalls of a short tunnel.  Exchanges are synchronous, and each
 * carries its own sequence number, so an answer left over from a failed exchange is skipped. */
static int diag_fd = -1;
static uint32_t diag_seq;

static void diag_reset(void)
{
    if (diag_fd >= 0)
        close(diag_fd);
    diag_fd = -1;
}

/* Send req and read the single answer (or error) into *out.  0, or -1 with errno. */
static int sockdiag_exchange(const struct inet_diag_req_v2 *req, struct inet_diag_msg *out)
{
    struct {
        struct nlmsghdr nh;
        struct inet_diag_req_v2 req;
    } msg;
    memset(&msg, 0, sizeof msg);
    msg.nh.nlmsg_len = sizeof msg;
    msg.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nh.nlmsg_flags = NLM_F_REQUEST;
    msg.nh.nlmsg_seq = ++diag_seq ? diag_seq : ++diag_seq;
    msg.req = *req;

    if (diag_fd < 0)
        diag_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (diag_fd < 0)
        return -1;
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    if (sendto(diag_fd, &msg, sizeof msg, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
        int e = errno;
        diag_reset();
        errno = e;
        return -1;
    }
    for (;;) {
        long buf[8192 / sizeof(long)];
        ssize_t n = recv(diag_fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EPROTO;
            diag_reset();                  /* a socket in an unknown state is not reused */
            errno = e;
            return -1;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != msg.nh.nlmsg_seq)
                continue;                  /* left over from an earlier exchange */
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                errno = (h->nlmsg_len >= NLMSG_LENGTH(sizeof *e) && e->error) ? -e->error : EPROTO;
                return -1;
            }
            if (h->nlmsg_type == NLMSG_DONE) {
                errno = ENOENT;
                return -1;
            }
            if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
                h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
                memcpy(out, NLMSG_DATA(h), sizeof *out);
                return 0;
            }
        }
    }
}

/* A lookup of the one socket whose own end is local and whose peer is remote, in any state: the
 * kernel answers with that socket, or with the listener that would take such a connection. */
static void exact_request(struct inet_diag_req_v2 *req, int proto, const struct endpoint *local,
                          const struct endpoint *remote)
{
    memset(req, 0, sizeof *req);
    req->sdiag_family = (uint8_t)local->family;
    req->sdiag_protocol = (uint8_t)proto;
    req->idiag_states = ~0u;
    req->id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
    req->id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    memcpy(req->id.idiag_src, local->addr, sizeof req->id.idiag_src);
    req->id.idiag_sport = local->port;
    memcpy(req->id.idiag_dst, remote->addr, sizeof req->id.idiag_dst);
    req->id.idiag_dport = remote->port;
}

int ps_sockdiag_lookup(int proto, const struct sockaddr *src, const struct sockaddr *dst,
                       uid_t *uid, uint64_t *inode)
{
    struct endpoint client, server;
    if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
        errno = EPROTONOSUPPORT;
        return -1;
    }
    if (endpoint_from(src, &client) < 0 || endpoint_from(dst, &server) < 0)
        return -1;
    if (client.family != server.family || client.port == 0) {
        errno = EINVAL;
        return -1;
    }

    struct inet_diag_req_v2 req;
    exact_request(&req, proto, proto == IPPROTO_TCP ? &client : &server,
                  proto == IPPROTO_TCP ? &server : &client);
    struct inet_diag_msg m;
    if (sockdiag_exchange(&req, &m) < 0)
        return -1;
    /* The kernel answered with *a* socket; make sure it is the client's. */
    if (!answer_is_client(proto, &m, &client, &server)) {
        errno = ENOENT;
        return -1;
    }
    if (uid)
        *uid = m.idiag_uid;
    if (inode)
        *inode = m.idiag_inode;
    return 0;
}

int ps_sockdiag_tcp_find(const struct sockaddr *local, const struct sockaddr *remote,
                         struct ps_sockdiag_answer *a)
{
    struct endpoint l, r;
    if (endpoint_from(local, &l) < 0 || endpoint_from(remote, &r) < 0)
        return -1;
    if (l.family != r.family) {
        errno = EINVAL;
        return -1;
    }
    struct inet_diag_req_v2 req;
    exact_request(&req, IPPROTO_TCP, &l, &r);
    struct inet_diag_msg m;
    if (sockdiag_exchange(&req, &m) < 0)
        return -1;
    a->state = m.idiag_state;
    a->uid = m.idiag_uid;
    a->inode = m.idiag_inode;
    a->exact = endpoint_matches(m.idiag_family, m.id.idiag_src, m.id.idiag_sport, &l, false) &&
               endpoint_matches(m.idiag_family, m.id.idiag_dst, m.id.idiag_dport, &r, false);
    return 0;
}
