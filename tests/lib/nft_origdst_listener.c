/* Test listener for the egress tests (t_egress_*.sh), standing where proxyd would: on the
 * transparent and DNS ports.  For each TCP connection it prints the pre-NAT destination
 * (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST) and the owner UID that ps_sockdiag_lookup finds for the
 * exact 4-tuple, then answers "ok\n" and closes.  For each UDP datagram it prints the sender (and
 * its owner when the kernel can find it) and answers "dns-ok".
 *   nft_origdst_listener [nomark] PROTO ADDR PORT [PROTO ADDR PORT ...]     (PROTO: tcp | udp)
 * Its sockets carry proxyd's socket mark (PS_PROXY_SOCKET_MARK; run as root), unless "nomark":
 * then it is a port squatter, which the ruleset must keep steered traffic from.
 * Prints "ready" once every socket is bound, then one line per event, flushed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/config.h"
#include "common/sockdiag.h"

/* From linux/netfilter_ipv4.h and linux/netfilter_ipv6/ip6_tables.h (they clash with netinet). */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

static void fmt(const struct sockaddr_storage *ss, char *buf, size_t n)
{
    char a[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s->sin_addr, a, sizeof a);
        snprintf(buf, n, "%s:%u", a, ntohs(s->sin_port));
    } else {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof a);
        snprintf(buf, n, "[%s]:%u", a, ntohs(s->sin6_port));
    }
}

static int with_mark = 1;

static int open_one(const char *proto, const char *addr, const char *port, int *is_tcp)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    int fam = strchr(addr, ':') ? AF_INET6 : AF_INET;
    if (fam == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&ss;
        s->sin_family = AF_INET;
        s->sin_port = htons((uint16_t)atoi(port));
        if (inet_pton(AF_INET, addr, &s->sin_addr) != 1) return -1;
        len = sizeof *s;
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
        s->sin6_family = AF_INET6;
        s->sin6_port = htons((uint16_t)atoi(port));
        if (inet_pton(AF_INET6, addr, &s->sin6_addr) != 1) return -1;
        len = sizeof *s;
    }
    *is_tcp = strcmp(proto, "tcp") == 0;
    int fd = socket(fam, (*is_tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fam == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    /* stands in for proxyd: its sockets carry proxyd's mark, or the ruleset refuses traffic to
     * them (chain listeners); "nomark" as the first argument leaves it off (a squatter) */
    unsigned mark = PS_PROXY_SOCKET_MARK;
    if (with_mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0) {
        fprintf(stderr, "SO_MARK: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || (*is_tcp && listen(fd, 64) < 0)) {
        fprintf(stderr, "bind %s %s %s: %s\n", proto, addr, port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void on_tcp(int lfd)
{
    struct sockaddr_storage peer, orig;
    socklen_t plen = sizeof peer, olen = sizeof orig;
    int c = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
    if (c < 0) return;
    memset(&orig, 0, sizeof orig);
    int rc = peer.ss_family == AF_INET ? getsockopt(c, SOL_IP, SO_ORIGINAL_DST, &orig, &olen)
                                       : getsockopt(c, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &orig, &olen);
    if (rc < 0) {                 /* not redirected: our own address is the destination */
        olen = sizeof orig;
        getsockname(c, (struct sockaddr *)&orig, &olen);
    }
    char p[80], o[80], u[32] = "?";
    fmt(&peer, p, sizeof p);
    fmt(&orig, o, sizeof o);
    uid_t uid;
    uint64_t ino;
    if (ps_sockdiag_lookup(IPPROTO_TCP, (struct sockaddr *)&peer, (struct sockaddr *)&orig, &uid, &ino) == 0)
        snprintf(u, sizeof u, "%u", (unsigned)uid);
    printf("tcp peer=%s orig=%s uid=%s redirected=%s\n", p, o, u, rc == 0 ? "yes" : "no");
    fflush(stdout);
    (void)!write(c, "ok\n", 3);
    close(c);
}

static void on_udp(int fd)
{
    struct sockaddr_storage peer, me;
    socklen_t plen = sizeof peer, mlen = sizeof me;
    char buf[512];
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &plen);
    if (n < 0) return;
    getsockname(fd, (struct sockaddr *)&me, &mlen);
    char p[80], u[32] = "?";
    fmt(&peer, p, sizeof p);
    uid_t uid;
    uint64_t ino;
    if (ps_sockdiag_lookup(IPPROTO_UDP, (struct sockaddr *)&peer, (struct sockaddr *)&me, &uid, &ino) == 0)
        snprintf(u, sizeof u, "%u", (unsigned)uid);
    printf("udp peer=%s bytes=%zd uid=%s\n", p, n, u);
    fflush(stdout);
    sendto(fd, "dns-ok", 6, 0, (struct sockaddr *)&peer, plen);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "nomark") == 0) {
        with_mark = 0;
        argv++;
        argc--;
    }
    if (argc < 4 || (argc - 1) % 3) {
        fprintf(stderr, "usage: %s PROTO ADDR PORT [...]\n", argv[0]);
        return 2;
    }
    size_t n = (size_t)(argc - 1) / 3;
    struct pollfd *pf = calloc(n, sizeof *pf);
    int *tcp = calloc(n, sizeof *tcp);
    if (!pf || !tcp) return 1;
    for (size_t i = 0; i < n; i++) {
        pf[i].fd = open_one(argv[1 + 3 * i], argv[2 + 3 * i], argv[3 + 3 * i], &tcp[i]);
        pf[i].events = POLLIN;
        if (pf[i].fd < 0) return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        if (poll(pf, n, -1) < 0 && errno != EINTR) return 1;
        for (size_t i = 0; i < n; i++)
            if (pf[i].revents & POLLIN)
                (tcp[i] ? on_tcp : on_udp)(pf[i].fd);
    }
}
