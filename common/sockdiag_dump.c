/* Every bound TCP listener or UDP socket of this network namespace, with its socket mark, from one
 * NETLINK_SOCK_DIAG dump (sandboxctl doctor: are proxyd's ports held by proxyd's sockets?).  The
 * kernel reports a socket's mark only to a caller with CAP_NET_ADMIN; without it has_mark is
 * false. */
#include "common/sockdiag.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

static void fill(const struct inet_diag_msg *m, size_t attrs_len, int proto, struct ps_bound_socket *s)
{
    memset(s, 0, sizeof *s);
    s->family = m->idiag_family;
    s->proto = proto;
    memcpy(s->addr, m->id.idiag_src, m->idiag_family == AF_INET ? 4 : 16);
    s->port = ntohs(m->id.idiag_sport);
    s->uid = m->idiag_uid;
    s->inode = m->idiag_inode;
    const struct rtattr *a = (const struct rtattr *)(m + 1);
    size_t len = attrs_len;
    for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == INET_DIAG_MARK && RTA_PAYLOAD(a) >= sizeof(uint32_t)) {
            memcpy(&s->mark, RTA_DATA(a), sizeof s->mark);
            s->has_mark = true;
        }
    }
}

int ps_sockdiag_dump_bound(int family, int proto, ps_bound_cb cb, void *arg)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -1;
    struct {
        struct nlmsghdr nh;
        struct inet_diag_req_v2 req;
    } msg = {
        .nh = { .nlmsg_len = sizeof msg, .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
        /* TCP: listeners; UDP: every state (a bound, unconnected socket reports TCP_CLOSE) */
        .req = { .sdiag_family = (uint8_t)family, .sdiag_protocol = (uint8_t)proto,
                 .idiag_states = proto == IPPROTO_TCP ? 1u << TCP_LISTEN : ~0u },
    };
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    if (sendto(fd, &msg, sizeof msg, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    static char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        size_t len = (size_t)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_type == NLMSG_DONE) {
                close(fd);
                return 0;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *err = NLMSG_DATA(h);
                close(fd);
                errno = err->error ? -err->error : EIO;
                return -1;
            }
            if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
                continue;
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            struct ps_bound_socket s;
            fill(m, h->nlmsg_len - NLMSG_LENGTH(sizeof *m), proto, &s);
            cb(arg, &s);
        }
    }
}
