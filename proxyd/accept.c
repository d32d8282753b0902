/* Listeners: explicit (HTTP proxy) and transparent (where nftables redirects sandboxed TCP).
 * Bound while still root (any port), before the privilege drop. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>
#include "proxyd/core.h"
#include "proxyd/synth.h"
#include "common/policy.h"
#include "common/util.h"
#include "common/values.h"

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80          /* linux/netfilter_ipv4.h */
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80     /* linux/netfilter_ipv6/ip6_tables.h */
#endif
/* PS_MAX_LISTEN explicit addresses; a transparent one is PS_REDIRECT_PORTS sockets */
#define MAX_LISTENERS (PS_MAX_LISTEN + PS_MAX_RANGED_LISTEN * PS_REDIRECT_PORTS)

struct listener {
    int fd;
    enum pd_mode mode;
    struct sockaddr_storage addr;
    bool specific;                  /* not a wildcard address */
};
static struct listener *listeners[MAX_LISTENERS];
static size_t n_listeners;

static void on_accept(struct pd_loop *l, int fd, uint32_t ev, void *arg);

static int bind_one(const struct ps_sockaddr *a, enum pd_mode mode, bool announce)
{
    char s[80];
    pd_sockaddr_str((const struct sockaddr *)&a->ss, s, sizeof s, true);
    if (n_listeners >= MAX_LISTENERS) {
        syslog(LOG_ERR, "too many listeners");
        return -1;
    }
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        syslog(LOG_ERR, "listen %s: socket: %m", s);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (a->ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    /* accepted sockets inherit TCP_NODELAY from the listener */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* ... and TCP keepalive: a tunnel both sides keep open has no idle limit (an SSH session
     * through CONNECT may sit quiet for hours), so a client that vanished (a laptop gone, a host
     * down) is found by the kernel instead, and its connection and slot of the per-account cap
     * are given back.  No cost per connection. */
    pd_tcp_keepalive(fd);
    (void)pd_mark_listener(fd, s);
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, 4096) < 0) {
        syslog(LOG_ERR, "listen %s (%s): %m", s, mode == PD_MODE_EXPLICIT ? "explicit" : "transparent");
        close(fd);
        return -1;
    }
    struct listener *L = ps_xcalloc(1, sizeof *L);
    listeners[n_listeners++] = L;
    L->fd = fd;
    L->mode = mode;
    memcpy(&L->addr, &a->ss, a->len);
    static const struct in6_addr any6 = IN6ADDR_ANY_INIT;
    L->specific = a->ss.ss_family == AF_INET
                      ? ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr != htonl(INADDR_ANY)
                      : memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr, &any6, sizeof any6) != 0;
    if (pd_loop_add(pd->loop, fd, EPOLLIN, on_accept, L) < 0) {
        syslog(LOG_ERR, "listen %s: epoll: %m", s);
        return -1;
    }
    if (announce)
        syslog(LOG_INFO, "listening on %s (%s)", s, mode == PD_MODE_EXPLICIT ? "explicit" : "transparent");
    return 0;
}

void pd_tcp_keepalive(int fd)
{
    int one = 1, idle = 600, intvl = 60, cnt = 5;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

/* PS_PROXY_SOCKET_MARK on a listening socket, so that the ruleset's `listeners` chain lets the
 * traffic steered to it through (common/config.h); accepted sockets inherit it.  It needs
 * CAP_NET_ADMIN: without it (not started as root, a DNS listener added by a reload) the socket
 * works, but with the ruleset loaded nothing steered reaches it, which is the safe side. */
int pd_mark_listener(int fd, const char *what)
{
    unsigned mark = PS_PROXY_SOCKET_MARK;
    static bool ever_marked, said;     /* never started as root: one line for all listeners */
    if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) == 0) {
        ever_marked = true;
        return 0;
    }
    if (ever_marked || !said)
        syslog(LOG_ERR, "listen %s: cannot mark it as proxyd's (SO_MARK: %m): with the pam_sandbox "
               "ruleset loaded, traffic to it is refused until proxyd is started as root", what);
    said = true;
    return -1;
}

int pd_listeners_open(const struct ps_config *cfg)
{
    const struct ps_global *g = &cfg->global;
    for (size_t i = 0; i < g->n_explicit_listen; i++)
        if (bind_one(&g->explicit_listen[i], PD_MODE_EXPLICIT, true) < 0)
            return -1;
    /* each transparent address is a range of ports: the why is at PS_REDIRECT_PORTS */
    for (size_t i = 0; i < g->n_transparent_listen; i++) {
        struct ps_sockaddr a = g->transparent_listen[i];
        unsigned first = ps_sockaddr_port(&a);
        for (unsigned k = 0; k < PS_REDIRECT_PORTS; k++) {
            ps_sockaddr_set_port(&a, (uint16_t)(first + k));   /* first + 15 <= 65535: config_global.c */
            if (bind_one(&a, PD_MODE_TRANSPARENT, false) < 0)
                return -1;
        }
        pd_log_listen_range(&g->transparent_listen[i], "transparent");
    }
    return 0;
}

void pd_log_listen_range(const struct ps_sockaddr *a, const char *what)
{
    char s[80];
    pd_sockaddr_str((const struct sockaddr *)&a->ss, s, sizeof s, true);
    syslog(LOG_INFO, "listening on %s-%u (%s)", s, ps_sockaddr_port(a) + PS_REDIRECT_PORTS - 1, what);
}

void pd_listeners_close(void)
{
    for (size_t i = 0; i < n_listeners; i++) {
        pd_loop_del(pd->loop, listeners[i]->fd);
        close(listeners[i]->fd);
        free(listeners[i]);
        listeners[i] = NULL;
    }
    n_listeners = 0;
}

/* TCP_NODELAY on an accepted socket.  Linux copies it from the listener (set in bind_one); that
 * is checked once, on the first connection, and the per-connection setsockopt is skipped from then
 * on (one system call less per connection) unless this kernel turns out not to. */
static void ensure_nodelay(int fd)
{
    static int inherited = -1;             /* unknown yet */
    int one = 1, v = 0;
    socklen_t vl = sizeof v;
    if (inherited < 0)
        inherited = getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &vl) == 0 && v != 0;
    if (!inherited)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int original_dst(int fd, struct sockaddr_storage *out)
{
    socklen_t len = sizeof(*out);
    memset(out, 0, sizeof(*out));
    struct sockaddr_storage local;
    socklen_t ll = sizeof local;
    if (getsockname(fd, (struct sockaddr *)&local, &ll) < 0)
        return -1;
    if (local.ss_family == AF_INET6)
        return getsockopt(fd, IPPROTO_IPV6, IP6T_SO_ORIGINAL_DST, out, &len);
    return getsockopt(fd, IPPROTO_IP, SO_ORIGINAL_DST, out, &len);
}

static bool is_own_listener(const struct sockaddr_storage *a)
{
    for (size_t i = 0; i < n_listeners; i++) {
        const struct sockaddr_storage *b = &listeners[i]->addr;
        if (a->ss_family != b->ss_family)
            continue;
        if (a->ss_family == AF_INET &&
            memcmp(&((const struct sockaddr_in *)a)->sin_addr, &((const struct sockaddr_in *)b)->sin_addr, 4) == 0 &&
            ((const struct sockaddr_in *)a)->sin_port == ((const struct sockaddr_in *)b)->sin_port)
            return true;
        if (a->ss_family == AF_INET6 &&
            memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0 &&
            ((const struct sockaddr_in6 *)a)->sin6_port == ((const struct sockaddr_in6 *)b)->sin6_port)
            return true;
    }
    return false;
}

/* A transparent connection: its real destination decides, never SNI or Host (nothing is read). */
static void transparent_start(struct pd_conn *c)
{
    struct sockaddr_storage *od = &c->who.orig_dst;
    if (original_dst(c->cfd, od) < 0 || is_own_listener(od)) {
        /* no NAT record: someone connected to the transparent port directly */
        c->id_err = "no_original_destination";
        pd_conn_log(c, "deny", c->id_err, "default", false);
        pd_conn_reset(c);
        return;
    }
    pd_identify(c, (struct sockaddr *)od);
    uint16_t port = ntohs(od->ss_family == AF_INET6 ? ((struct sockaddr_in6 *)od)->sin6_port
                                                    : ((struct sockaddr_in *)od)->sin_port);
    c->port = port;
    memcpy(&c->cands[0], od, od->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    c->host_is_name = false;
    pd_sockaddr_str((struct sockaddr *)od, c->host, sizeof c->host, false);
    const struct ps_cidr *syn = &c->who.conf->cfg->global.synthetic_range;
    if (od->ss_family == AF_INET && ps_cidr_contains(syn, (struct sockaddr *)od)) {
        /* A synthetic address stands for the name policy DNS handed out for it. */
        char name[PS_MAX_NAME + 1];
        if (pd->synth && c->who.profile &&
            synth_lookup(pd->synth, c->who.uid, ((struct sockaddr_in *)od)->sin_addr, name)) {
            snprintf(c->host, sizeof c->host, "%s", name);
            c->host_is_name = true;
        }
        /* else: unknown synthetic address, ps_policy_decide_addr denies it */
    }
    c->st = CS_RESOLVING;
    pd_conn_decide(c);
}

static void resume_listener(struct pd_loop *l, void *arg)
{
    struct listener *L = arg;
    if (pd_loop_add(l, L->fd, EPOLLIN, on_accept, L) < 0)
        syslog(LOG_ERR, "listener: epoll: %m");
}

static void on_accept(struct pd_loop *l, int lfd, uint32_t ev, void *arg)
{
    struct listener *L = arg;
    (void)l;
    (void)ev;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage peer;
        socklen_t pl = sizeof peer;
        int fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors or memory: the pending connection stays queued and the
                 * listener stays readable, so without a pause level-triggered epoll would spin.
                 * Retry in 100 ms; say so at most once a second, not once per listener and try. */
                static uint64_t last_said;
                uint64_t now = pd_now_ms();
                if (now - last_said >= 1000) {
                    syslog(LOG_ERR, "accept: %m (pausing the listeners that hit it for 100 ms)");
                    last_said = now;
                }
                pd_loop_del(pd->loop, lfd);
                pd_timer_add(pd->loop, 100, resume_listener, L);
            }
            return;
        }
        ensure_nodelay(fd);
        struct pd_conn *c = pd_conn_new(fd, L->mode);
        c->who.peer = peer;
        if (L->mode == PD_MODE_TRANSPARENT) {
            transparent_start(c);
            continue;
        }
        struct sockaddr_storage local;
        socklen_t ll = sizeof local;
        if (L->specific) {
            local = L->addr;                /* bound to one address: that is the local end */
        } else if (getsockname(fd, (struct sockaddr *)&local, &ll) < 0) {
            pd_conn_free(c);
            continue;
        }
        c->who.orig_dst = local;
        pd_identify(c, (struct sockaddr *)&local);   /* failure answers 403 once we have the request */
        /* The per-account cap counts a connection from its accept, not from its first request:
         * otherwise connections that never send one would hold descriptors outside the cap. */
        if (c->id_ok && pd_account_acquire(c->who.uid))
            c->counted = true;
        c->st = CS_READ_HEAD;
        pd_conn_timer(c, PD_HEAD_TIMEOUT_MS);
        pd_conn_update(c);
        /* A local client's request is already queued when its connection is accepted (in the
         * bench, every time): read it now rather than one turn of the event loop later. */
        bool over_cap = c->id_ok && !c->counted;
        /* Over the cap, or not a sandboxed account (which no cap counts): a request already here
         * is answered 429 or 403 by pd_conn_decide (its host is logged); without one, now, rather
         * than hold a descriptor for the head, uncounted, up to the head timeout.  An account
         * that is not sandboxed stays so for the connection (pd_ident_refresh only narrows). */
        if (pd_explicit_read(c)) {
            if (!c->id_ok)
                pd_conn_deny(c, c->id_err ? c->id_err : "client_not_found", "default");
            else if (over_cap)
                pd_conn_over_cap(c);
        }
    }
}
