/* NFLOG reader for the egress tests: binds NFLOG group GROUP in the current network namespace
 * (where `log group` messages of table inet pam_sandbox go; the kernel log of a non-initial
 * namespace stays silent unless the host sets net.netfilter.nf_log_all_netns) and prints one line
 * per logged packet: the prefix, the owner UID the kernel attached, the protocol and destination.
 *   nft_nflog_reader GROUP      -> "ready", then  prefix="..." uid=N proto=P dst=ADDR  per packet
 * Raw nfnetlink, no libnetfilter_log: a few attributes are all we need. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ALIGNED(n) NLMSG_ALIGN(n)

static size_t put_attr(char *buf, size_t off, uint16_t type, const void *data, uint16_t len)
{
    struct nlattr *a = (struct nlattr *)(buf + off);
    a->nla_type = type;
    a->nla_len = (uint16_t)(NLA_HDRLEN + len);
    memcpy(buf + off + NLA_HDRLEN, data, len);
    return off + NLA_ALIGN(a->nla_len);
}

/* (The kernel attaches NFULA_UID whenever the packet has a full socket; no flag asks for it.) */

/* One NFULNL_MSG_CONFIG request for group with the given attributes already in attrs. */
static int config(int fd, uint16_t group, const char *attrs, size_t alen)
{
    char buf[256];
    memset(buf, 0, sizeof buf);
    struct nlmsghdr *nh = (struct nlmsghdr *)buf;
    nh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
    nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    nh->nlmsg_seq = 1;
    struct nfgenmsg *g = NLMSG_DATA(nh);
    g->nfgen_family = AF_UNSPEC;
    g->version = NFNETLINK_V0;
    g->res_id = htons(group);
    size_t off = NLMSG_HDRLEN + ALIGNED(sizeof *g);
    memcpy(buf + off, attrs, alen);
    nh->nlmsg_len = (uint32_t)(off + alen);
    if (send(fd, buf, nh->nlmsg_len, 0) < 0)
        return -1;
    char ack[512];
    ssize_t n = recv(fd, ack, sizeof ack, 0);
    if (n < (ssize_t)NLMSG_HDRLEN) return -1;
    struct nlmsghdr *r = (struct nlmsghdr *)ack;
    if (r->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(r);
        if (e->error) { errno = -e->error; return -1; }
    }
    return 0;
}

static void print_packet(const struct nlmsghdr *nh)
{
    const char *prefix = "";
    long uid = -1;
    const uint8_t *payload = NULL;
    size_t plen = 0;
    size_t off = NLMSG_HDRLEN + ALIGNED(sizeof(struct nfgenmsg));
    while (off + NLA_HDRLEN <= nh->nlmsg_len) {
        const struct nlattr *a = (const struct nlattr *)((const char *)nh + off);
        if (a->nla_len < NLA_HDRLEN || off + a->nla_len > nh->nlmsg_len) break;
        const void *d = (const char *)a + NLA_HDRLEN;
        size_t dl = a->nla_len - NLA_HDRLEN;
        switch (a->nla_type & NLA_TYPE_MASK) {
        case NFULA_PREFIX: prefix = d; break;
        case NFULA_UID: if (dl >= 4) { uint32_t v; memcpy(&v, d, 4); uid = ntohl(v); } break;
        case NFULA_PAYLOAD: payload = d; plen = dl; break;
        default: break;
        }
        off += NLA_ALIGN(a->nla_len);
    }
    char dst[INET6_ADDRSTRLEN] = "?";
    int proto = -1;
    if (payload && plen >= 20 && (payload[0] >> 4) == 4) {
        proto = payload[9];
        inet_ntop(AF_INET, payload + 16, dst, sizeof dst);
    } else if (payload && plen >= 40 && (payload[0] >> 4) == 6) {
        proto = payload[6];
        inet_ntop(AF_INET6, payload + 24, dst, sizeof dst);
    }
    printf("prefix=\"%s\" uid=%ld proto=%d dst=%s\n", prefix, uid, proto, dst);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s GROUP\n", argv[0]);
        return 2;
    }
    uint16_t group = (uint16_t)atoi(argv[1]);
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("netlink");
        return 1;
    }
    char attrs[128];
    size_t n;
    struct nfulnl_msg_config_cmd cmd = { NFULNL_CFG_CMD_BIND };
    n = put_attr(attrs, 0, NFULA_CFG_CMD, &cmd, sizeof cmd);
    if (config(fd, group, attrs, n) < 0) { perror("bind group"); return 1; }
    struct nfulnl_msg_config_mode mode = { .copy_range = htonl(64), .copy_mode = NFULNL_COPY_PACKET };
    uint32_t qthresh = htonl(1);
    n = put_attr(attrs, 0, NFULA_CFG_MODE, &mode, sizeof mode);
    n = put_attr(attrs, n, NFULA_CFG_QTHRESH, &qthresh, sizeof qthresh);
    if (config(fd, group, attrs, n) < 0) { perror("configure group"); return 1; }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        char buf[65536];
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r < 0) { if (errno == EINTR || errno == ENOBUFS) continue; perror("recv"); return 1; }
        for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)r); nh = NLMSG_NEXT(nh, r))
            if (nh->nlmsg_type == ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET))
                print_packet(nh);
    }
}
