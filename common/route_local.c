/* Is an address this host's own?  Asked of the kernel's routing (RTM_GETROUTE, as "ip route get"
 * does): the route to one of this host's addresses is of type RTN_LOCAL, whichever interface holds
 * it and whenever it was added.  For the one question a socket lookup cannot answer: no socket
 * found for a connection may mean a remote peer, or a local one that sock_diag does not find (a
 * socket bound to a device, for one). */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "common/policy.h"

int ps_route_is_local(const struct sockaddr *dst)
{
    struct {
        struct nlmsghdr nh;
        struct rtmsg rt;
        char attrs[64];
    } req;
    memset(&req, 0, sizeof req);
    size_t alen;
    const void *addr;
    if (dst->sa_family == AF_INET) {
        addr = &((const struct sockaddr_in *)dst)->sin_addr;
        alen = 4;
    } else if (dst->sa_family == AF_INET6) {
        addr = &((const struct sockaddr_in6 *)dst)->sin6_addr;
        alen = 16;
    } else {
        errno = EAFNOSUPPORT;
        return -1;
    }
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof req.rt);
    req.nh.nlmsg_type = RTM_GETROUTE;
    req.nh.nlmsg_flags = NLM_F_REQUEST;
    req.nh.nlmsg_seq = 1;
    req.rt.rtm_family = (unsigned char)dst->sa_family;
    req.rt.rtm_dst_len = (unsigned char)(alen * 8);
    struct rtattr *a = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
    a->rta_type = RTA_DST;
    a->rta_len = (unsigned short)RTA_LENGTH(alen);
    memcpy(RTA_DATA(a), addr, alen);
    req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(a->rta_len);

    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -1;
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    int result = -1;
    if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
        goto out;
    long buf[2048 / sizeof(long)];
    ssize_t n;
    do
        n = recv(fd, buf, sizeof buf, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        goto out;
    errno = 0;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == NLMSG_ERROR) {
            const struct nlmsgerr *e = NLMSG_DATA(h);
            /* no route at all: not this host's (connect() would have failed anyway) */
            if (h->nlmsg_len >= NLMSG_LENGTH(sizeof *e) && (e->error == -ENETUNREACH ||
                                                             e->error == -EHOSTUNREACH)) {
                result = 0;
            } else {
                errno = h->nlmsg_len >= NLMSG_LENGTH(sizeof *e) && e->error ? -e->error : EPROTO;
            }
            break;
        }
        if (h->nlmsg_type == RTM_NEWROUTE && h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct rtmsg))) {
            const struct rtmsg *rt = NLMSG_DATA(h);
            result = rt->rtm_type == RTN_LOCAL;
            break;
        }
    }
    if (result < 0 && errno == 0)
        errno = EPROTO;
out:;
    int e = errno;
    close(fd);
    errno = e;
    return result;
}
