/* The connect path (DESIGN.md §5.3): an allowed name is resolved by proxyd itself, every address
 * is classified, and only an address that passed is connected to — never a name the client put
 * anywhere.  With UpstreamProxy= the connection goes to that proxy and asks it, with CONNECT, for
 * the very address that passed (so the upstream proxy cannot re-resolve to something else). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "proxyd/core.h"
#include "proxyd/resolver.h"
#include "common/policy.h"

static socklen_t sa_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
}

static void try_next(struct pd_conn *c, int status, const char *why);
static void start_attempt(struct pd_conn *c);

/* UpstreamProxy= given by name: resolved with the same resolver (the admin's name, so no address
 * classification), remembered for its TTL. */
static struct {
    char name[PS_MAX_NAME + 1];
    struct sockaddr_storage addr;
    uint64_t expires;
} up_cache;

static void upstream_resolved(void *arg, int status, const struct sockaddr_storage *addrs, size_t n,
                              unsigned ttl)
{
    struct pd_conn *c = arg;
    c->rq = NULL;
    if (status != 0 || n == 0) {
        pd_conn_fail(c, 502, "upstream_proxy_unresolvable");
        return;
    }
    snprintf(up_cache.name, sizeof up_cache.name, "%s", c->who.conf->cfg->global.upstream_proxy_host);
    up_cache.addr = addrs[0];
    up_cache.expires = pd_now_ms() + (uint64_t)(ttl ? ttl : 30) * 1000u;
    start_attempt(c);
}

static bool use_upstream_proxy(const struct pd_conn *c, struct sockaddr_storage *out)
{
    const struct ps_global *g = &c->who.conf->cfg->global;
    if (!g->upstream_proxy_host)
        return false;
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *s4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, g->upstream_proxy_host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(g->upstream_proxy_port);
    } else if (inet_pton(AF_INET6, g->upstream_proxy_host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(g->upstream_proxy_port);
    } else if (strcmp(up_cache.name, g->upstream_proxy_host) == 0 && up_cache.expires > pd_now_ms()) {
        *out = up_cache.addr;
        if (out->ss_family == AF_INET6)
            s6->sin6_port = htons(g->upstream_proxy_port);
        else
            s4->sin_port = htons(g->upstream_proxy_port);
    } else {
        out->ss_family = AF_UNSPEC;          /* a name not resolved yet */
    }
    return true;
}

static void start_attempt(struct pd_conn *c)
{
    struct sockaddr_storage dst = { 0 }, proxy;
    memcpy(&dst, &c->cands[c->cand_i], sizeof c->cands[0]);
    set_port(&dst, c->port);
    pd_sockaddr_str((struct sockaddr *)&dst, c->addr_str, sizeof c->addr_str, false);
    /* Only public destinations are chained: an address that an IP rule opened in a private or
     * loopback range means one seen from this host, which the corporate proxy would reach in its
     * own network instead. */
    const struct ps_global *g = &c->who.conf->cfg->global;
    bool via_proxy = g->upstream_proxy_host &&         /* classified only when it matters */
                     ps_addr_classify((const struct sockaddr *)&dst, &g->synthetic_range) == PS_ADDR_PUBLIC &&
                     use_upstream_proxy(c, &proxy);
    c->via_proxy = via_proxy;
    if (via_proxy && proxy.ss_family == AF_UNSPEC) {
        c->addr_str[0] = '\0';
        c->st = CS_RESOLVING;
        pd_conn_update(c);
        c->rq = resolver_lookup(pd->resolver, c->who.conf->cfg->global.upstream_proxy_host,
                                upstream_resolved, c);
        if (!c->rq)
            pd_conn_fail(c, 502, "upstream_proxy_unresolvable");
        return;
    }
    const struct sockaddr_storage *target = via_proxy ? &proxy : &dst;
    int fd = socket(target->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        pd_conn_fail(c, 502, "socket_failed");
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->ufd = fd;
    c->ureg = c->upark = false;
    c->umask = 0;
    if (connect(fd, (const struct sockaddr *)target, sa_len(target)) < 0 && errno != EINPROGRESS) {
        try_next(c, 502, "upstream_connect_failed");
        return;
    }
    if (via_proxy) {
        /* queued now, written once connected */
        char line[300];
        int n = snprintf(line, sizeof line, "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n\r\n",
                         dst.ss_family == AF_INET6 ? "[" : "", c->addr_str,
                         dst.ss_family == AF_INET6 ? "]" : "", (unsigned)c->port,
                         dst.ss_family == AF_INET6 ? "[" : "", c->addr_str,
                         dst.ss_family == AF_INET6 ? "]" : "", (unsigned)c->port);
        struct pd_buf hs = { 0 };
        pd_buf_reserve(&hs, (size_t)n);
        memcpy(hs.p, line, (size_t)n);
        hs.len = (size_t)n;
        /* keep anything already queued for upstream (pipelined client bytes) after it */
        if (c->uout.len > c->uout.off) {
            pd_buf_reserve(&hs, c->uout.len - c->uout.off);
            memcpy(hs.p + hs.len, c->uout.p + c->uout.off, c->uout.len - c->uout.off);
            hs.len += c->uout.len - c->uout.off;
        }
        pd_buf_free(&c->uout);
        c->uout = hs;
        c->uin.len = c->uin.off = 0;
    }
    c->st = CS_CONNECTING;
    pd_conn_timer(c, PD_CONNECT_TIMEOUT_MS);
    pd_conn_update(c);
}

static void try_next(struct pd_conn *c, int status, const char *why)
{
    if (c->ufd >= 0) {
        pd_conn_drop_upstream(c);
    }
    /* through the upstream proxy one attempt stands for all addresses; directly, the next one */
    if (++c->cand_i < c->n_cands && !c->via_proxy) {
        start_attempt(c);
        return;
    }
    pd_conn_fail(c, status, why);
}

static void resolved(void *arg, int status, const struct sockaddr_storage *addrs, size_t n,
                     unsigned ttl)
{
    struct pd_conn *c = arg;
    (void)ttl;
    c->rq = NULL;
    if (status != 0 || n == 0) {
        pd_conn_fail(c, 502, status == RESOLVER_ENOTFOUND ? "name_not_found" : "resolve_failed");
        return;
    }
    const struct ps_cidr *syn = &c->who.conf->cfg->global.synthetic_range;
    const char *first_reason = NULL;
    c->n_cands = 0;
    for (size_t i = 0; i < n && c->n_cands < PD_MAX_CANDIDATES; i++) {
        const char *why = NULL;
        if (ps_addr_permitted((const struct sockaddr *)&addrs[i], syn, true, c->who.profile, c->port,
                              &why)) {
            memcpy(&c->cands[c->n_cands++], &addrs[i], addrs[i].ss_family == AF_INET6
                   ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
        } else if (!first_reason) {
            first_reason = why;
            pd_sockaddr_str((const struct sockaddr *)&addrs[i], c->addr_str, sizeof c->addr_str, false);
        }
    }
    if (c->n_cands == 0) {
        /* SSRF: an allowed name that points inside (loopback, private, metadata, ...). */
        pd_conn_deny(c, first_reason ? first_reason : "address_not_permitted", c->rule);
        return;
    }
    c->addr_str[0] = '\0';
    c->cand_i = 0;
    start_attempt(c);
}

void pd_connect_start(struct pd_conn *c)
{
    c->cand_i = 0;
    if (!c->host_is_name) {
        start_attempt(c);
        return;
    }
    c->st = CS_RESOLVING;
    pd_conn_update(c);
    c->rq = resolver_lookup(pd->resolver, c->host, resolved, c);
    if (!c->rq)
        pd_conn_fail(c, 502, "resolve_failed");
}

/* The upstream proxy's answer to our CONNECT: a 2xx head.  Bytes after it are the origin's, which
 * may speak first (an SSH banner, an SMTP greeting) and be read together with the head: they stay
 * in uin, and pd_tunnel_start() passes them on to the client after our own 200. */
static void handshake_read(struct pd_conn *c)
{
    pd_buf_reserve(&c->uin, 1024);
    ssize_t n = recv(c->ufd, c->uin.p + c->uin.len, c->uin.cap - c->uin.len, 0);
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN)
            return;
        try_next(c, 502, "upstream_proxy_closed");
        return;
    }
    c->uin.len += (size_t)n;
    struct http_response *r = malloc(sizeof(*r));
    struct http_error err;
    enum http_result res = r ? http_parse_response(c->uin.p, c->uin.len, r, &err) : HTTP_ERROR;
    if (res == HTTP_INCOMPLETE) {
        free(r);
        if (c->uin.len > HTTP_MAX_HEAD)
            try_next(c, 502, "upstream_proxy_bad_answer");
        return;
    }
    if (res == HTTP_ERROR || r->status / 100 != 2) {
        free(r);
        try_next(c, 502, "upstream_proxy_refused");
        return;
    }
    size_t head_len = r->head_len;
    free(r);
    if (head_len < c->uin.len) {
        memmove(c->uin.p, c->uin.p + head_len, c->uin.len - head_len);
        c->uin.len -= head_len;
    } else {
        pd_buf_free(&c->uin);
    }
    pd_conn_timer(c, 0);
    pd_conn_log(c, c->decision, c->reason, c->rule, false);
    if (c->who.mode == PD_MODE_EXPLICIT)
        pd_explicit_connected(c);
    else
        pd_tunnel_start(c);
}

void pd_connect_io(struct pd_conn *c, uint32_t ev)
{
    if (ev == 0) {                              /* timer */
        try_next(c, 504, "upstream_timeout");
        return;
    }
    if (c->st == CS_PROXY_HANDSHAKE) {
        handshake_read(c);
        return;
    }
    /* A failed non-blocking connect always reports EPOLLERR; writable without it is connected,
     * so SO_ERROR is read only on failure (one system call less per connection). */
    if (ev & (EPOLLERR | EPOLLHUP)) {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        try_next(c, soerr == ETIMEDOUT ? 504 : 502, "upstream_connect_failed");
        return;
    }
    if (c->via_proxy) {
        /* Write only the CONNECT head; pipelined client bytes stay queued until it succeeds. */
        const char *e = memmem(c->uout.p + c->uout.off, c->uout.len - c->uout.off, "\r\n\r\n", 4);
        size_t hl = e ? (size_t)(e + 4 - (c->uout.p + c->uout.off)) : 0;
        ssize_t n = send(c->ufd, c->uout.p + c->uout.off, hl, MSG_NOSIGNAL);
        if (n != (ssize_t)hl) {
            try_next(c, 502, "upstream_proxy_closed");
            return;
        }
        c->uout.off += hl;
        c->st = CS_PROXY_HANDSHAKE;
        pd_conn_update(c);
        return;
    }
    pd_conn_timer(c, 0);
    pd_conn_log(c, c->decision, c->reason, c->rule, false);
    if (c->who.mode == PD_MODE_EXPLICIT)
        pd_explicit_connected(c);
    else
        pd_tunnel_start(c);
}
