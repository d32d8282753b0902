/* Asynchronous upstream resolution: c-ares driven by the proxyd loop, with a TTL cache.
 *
 * - c-ares tells us which sockets it wants watched (ARES_OPT_SOCK_STATE_CB); we register them with
 *   pd_loop_add and call ares_process_fd when they are ready.  One loop timer follows
 *   ares_timeout() for retransmissions.
 * - Callbacks are never called from inside resolver_lookup or from inside a c-ares call: answers
 *   go to a ready list that a zero-delay timer flushes, so a caller may start, cancel or free
 *   anything from its callback.
 * - One cache entry per name, also while it is being looked up, so concurrent lookups of a name
 *   share one upstream query.
 * - Only DNS is asked (no /etc/hosts, no search list): the name is always absolute, so what a
 *   profile allowed is exactly what gets resolved. */
#include "proxyd/resolver.h"

#include <ares.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "common/policy.h"

#define NBUCKETS 4096u
#define MAX_SOCKS 32

enum entry_state { ENTRY_PENDING, ENTRY_DONE };

struct resolver_query {
    struct resolver *r;
    struct entry *e;                     /* while waiting */
    resolver_cb cb;
    void *arg;
    struct resolver_query *prev, *next;  /* in e->waiters, or in r->ready */
    bool ready;
    int status;
    struct sockaddr_storage *addrs;
    size_t n;
    unsigned ttl;
};

struct entry {
    struct resolver *r;
    char *name;
    enum entry_state state;
    int status;
    struct sockaddr_storage *addrs;
    size_t n;
    unsigned ttl;
    uint64_t expires_ms;
    struct resolver_query *waiters;
    struct entry *hnext;
    struct entry *lru_prev, *lru_next;   /* DONE entries only, most recent first */
};

struct resolver {
    struct pd_loop *loop;
    ares_channel ch;
    bool channel_ok, destroying;
    struct pd_timer *timeout_timer, *flush_timer;
    struct { int fd; uint32_t events; } socks[MAX_SOCKS];
    size_t nsocks;
    struct entry *buckets[NBUCKETS];
    size_t nentries;
    struct entry *lru_head, *lru_tail;
    struct resolver_query *ready_head, *ready_tail;
    unsigned long n_upstream, n_cached;
};

static void rearm_timeout(struct resolver *r);

/* ---------- c-ares <-> loop ---------- */

static void on_sock_io(struct pd_loop *l, int fd, uint32_t events, void *arg)
{
    struct resolver *r = arg;
    ares_socket_t rfd = (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fd : ARES_SOCKET_BAD;
    ares_socket_t wfd = (events & (EPOLLOUT | EPOLLERR)) ? fd : ARES_SOCKET_BAD;
    ares_process_fd(r->ch, rfd, wfd);
    rearm_timeout(r);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct resolver *r = data;
    size_t i;
    for (i = 0; i < r->nsocks && r->socks[i].fd != fd; i++) {}
    uint32_t ev = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u);
    if (!ev) {
        if (i < r->nsocks) {
            pd_loop_del(r->loop, fd);
            r->socks[i] = r->socks[--r->nsocks];
        }
        return;
    }
    if (i < r->nsocks) {
        if (r->socks[i].events != ev && pd_loop_mod(r->loop, fd, ev) == 0) r->socks[i].events = ev;
        return;
    }
    /* c-ares opens at most a few sockets per server; running out means a bug, and the query then
     * simply times out. */
    if (r->nsocks == MAX_SOCKS || pd_loop_add(r->loop, fd, ev, on_sock_io, r) < 0) {
        syslog(LOG_ERR, "resolver: cannot watch c-ares socket %d", fd);
        return;
    }
    r->socks[r->nsocks].fd = fd;
    r->socks[r->nsocks].events = ev;
    r->nsocks++;
}

static void on_timeout(struct pd_loop *l, void *arg)
{
    struct resolver *r = arg;
    r->timeout_timer = NULL;
    ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm_timeout(r);
}

static void rearm_timeout(struct resolver *r)
{
    struct timeval tv, *tvp;
    if (r->destroying) return;
    if (r->timeout_timer) { pd_timer_cancel(r->loop, r->timeout_timer); r->timeout_timer = NULL; }
    tvp = ares_timeout(r->ch, NULL, &tv);
    if (!tvp) return;                                    /* nothing in flight */
    /* Rounded up: a timer due before c-ares' deadline would only spin until it. */
    uint64_t ms = (uint64_t)tvp->tv_sec * 1000u + ((uint64_t)tvp->tv_usec + 999u) / 1000u;
    r->timeout_timer = pd_timer_add(r->loop, ms, on_timeout, r);
}

/* ---------- cache ---------- */

static unsigned hash_name(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 16777619u; }
    return h & (NBUCKETS - 1);
}

static struct entry *find_entry(struct resolver *r, const char *name)
{
    for (struct entry *e = r->buckets[hash_name(name)]; e; e = e->hnext)
        if (strcmp(e->name, name) == 0) return e;
    return NULL;
}

static void lru_unlink(struct resolver *r, struct entry *e)
{
    if (e->lru_prev) e->lru_prev->lru_next = e->lru_next;
    else if (r->lru_head == e) r->lru_head = e->lru_next;
    if (e->lru_next) e->lru_next->lru_prev = e->lru_prev;
    else if (r->lru_tail == e) r->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push(struct resolver *r, struct entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = r->lru_head;
    if (r->lru_head) r->lru_head->lru_prev = e; else r->lru_tail = e;
    r->lru_head = e;
}

static void free_entry(struct resolver *r, struct entry *e)
{
    for (struct entry **pp = &r->buckets[hash_name(e->name)]; *pp; pp = &(*pp)->hnext)
        if (*pp == e) { *pp = e->hnext; break; }
    lru_unlink(r, e);
    free(e->name);
    free(e->addrs);
    free(e);
    r->nentries--;
}

/* ---------- delivery ---------- */

static void ready_unlink(struct resolver *r, struct resolver_query *q)
{
    if (q->prev) q->prev->next = q->next; else r->ready_head = q->next;
    if (q->next) q->next->prev = q->prev; else r->ready_tail = q->prev;
    q->prev = q->next = NULL;
}

static void on_flush(struct pd_loop *l, void *arg)
{
    struct resolver *r = arg;
    r->flush_timer = NULL;
    /* Serve only what was ready when the timer fired: a callback that starts a cached lookup
     * gets its answer on the next turn of the loop, not in an unbounded loop here.  Popping the
     * head each time keeps resolver_cancel() from a callback safe. */
    size_t n = 0;
    for (struct resolver_query *q = r->ready_head; q; q = q->next) n++;
    while (n-- > 0 && r->ready_head) {
        struct resolver_query *q = r->ready_head;
        ready_unlink(r, q);
        q->cb(q->arg, q->status, q->addrs, q->n, q->ttl);
        free(q->addrs);
        free(q);
    }
}

static void make_ready(struct resolver *r, struct resolver_query *q, const struct entry *e,
                       uint64_t now)
{
    q->status = e->status;
    q->n = 0;
    q->addrs = NULL;
    if (e->status == 0 && e->n) {
        q->addrs = malloc(e->n * sizeof *q->addrs);
        if (q->addrs) { memcpy(q->addrs, e->addrs, e->n * sizeof *q->addrs); q->n = e->n; }
        else q->status = RESOLVER_ENOMEM;
    }
    q->ttl = e->expires_ms > now ? (unsigned)((e->expires_ms - now + 999) / 1000) : 0;
    q->e = NULL;
    q->ready = true;
    q->next = NULL;
    q->prev = r->ready_tail;
    if (r->ready_tail) r->ready_tail->next = q; else r->ready_head = q;
    r->ready_tail = q;
    if (!r->flush_timer && !r->destroying) r->flush_timer = pd_timer_add(r->loop, 0, on_flush, r);
}

static int map_status(int st)
{
    switch (st) {
    case ARES_SUCCESS: return 0;
    case ARES_ENOTFOUND: return RESOLVER_ENOTFOUND;
    case ARES_ENODATA: return RESOLVER_ENODATA;
    case ARES_ENOMEM: return RESOLVER_ENOMEM;
    case ARES_EBADNAME: return RESOLVER_EINVAL;
    default: return RESOLVER_EFAIL;
    }
}

/* Store an answer in e and hand it to every waiter. */
static void complete_entry(struct resolver *r, struct entry *e, int status,
                           struct sockaddr_storage *addrs, size_t n, unsigned ttl)
{
    uint64_t now = pd_now_ms();
    free(e->addrs);
    e->addrs = addrs;
    e->n = n;
    e->status = status;
    if (status == 0) e->ttl = ttl > RESOLVER_MAX_TTL ? RESOLVER_MAX_TTL : ttl;
    else if (status == RESOLVER_ENOTFOUND || status == RESOLVER_ENODATA) e->ttl = RESOLVER_NEG_TTL;
    else e->ttl = 0;                                     /* failures are not remembered */
    e->expires_ms = now + (uint64_t)e->ttl * 1000u;
    e->state = ENTRY_DONE;
    lru_push(r, e);
    while (e->waiters) {
        struct resolver_query *q = e->waiters;
        e->waiters = q->next;
        make_ready(r, q, e, now);
    }
}

static void on_ares_answer(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    struct entry *e = arg;
    struct resolver *r = e->r;
    (void)timeouts;
    if (status == ARES_EDESTRUCTION || r->destroying) {
        if (res) ares_freeaddrinfo(res);
        return;                                          /* resolver_free cleans up */
    }
    int st = map_status(status);
    struct sockaddr_storage *addrs = NULL;
    size_t n = 0;
    unsigned ttl = RESOLVER_MAX_TTL;
    if (st == 0 && res) {
        size_t cnt = 0;
        for (struct ares_addrinfo_node *a = res->nodes; a; a = a->ai_next) cnt++;
        addrs = cnt ? calloc(cnt, sizeof *addrs) : NULL;
        for (struct ares_addrinfo_node *a = res->nodes; addrs && a; a = a->ai_next) {
            if (a->ai_family == AF_INET && a->ai_addrlen >= sizeof(struct sockaddr_in)) {
                struct sockaddr_in *sin = (struct sockaddr_in *)&addrs[n];
                memcpy(sin, a->ai_addr, sizeof *sin);
                sin->sin_port = 0;
            } else if (a->ai_family == AF_INET6 && a->ai_addrlen >= sizeof(struct sockaddr_in6)) {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&addrs[n];
                memcpy(sin6, a->ai_addr, sizeof *sin6);
                sin6->sin6_port = 0;
            } else continue;
            if (a->ai_ttl >= 0 && (unsigned)a->ai_ttl < ttl) ttl = (unsigned)a->ai_ttl;
            n++;
        }
        if (cnt && !addrs) st = RESOLVER_ENOMEM;
        else if (n == 0) st = RESOLVER_ENODATA;
    }
    if (res) ares_freeaddrinfo(res);
    if (st != 0) { free(addrs); addrs = NULL; n = 0; }
    complete_entry(r, e, st, addrs, n, ttl);
}

/* ---------- public ---------- */

static int set_servers(struct resolver *r, const struct ps_config *cfg)
{
    const struct ps_global *g = &cfg->global;
    if (g->n_resolvers == 0) return 0;                   /* c-ares read /etc/resolv.conf */
    struct ares_addr_port_node *nodes = calloc(g->n_resolvers, sizeof *nodes);
    if (!nodes) return -1;
    for (size_t i = 0; i < g->n_resolvers; i++) {
        const struct sockaddr_storage *ss = &g->resolvers[i].ss;
        int port = 53;
        nodes[i].family = ss->ss_family;
        if (ss->ss_family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
            nodes[i].addr.addr4 = sin->sin_addr;
            if (sin->sin_port) port = ntohs(sin->sin_port);
        } else {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
            memcpy(&nodes[i].addr.addr6, &sin6->sin6_addr, 16);
            if (sin6->sin6_port) port = ntohs(sin6->sin6_port);
        }
        nodes[i].udp_port = nodes[i].tcp_port = port;
        nodes[i].next = i + 1 < g->n_resolvers ? &nodes[i + 1] : NULL;
    }
    int rc = ares_set_servers_ports(r->ch, nodes);
    free(nodes);
    if (rc != ARES_SUCCESS) {
        syslog(LOG_ERR, "resolver: setting Resolver= servers: %s", ares_strerror(rc));
        return -1;
    }
    return 0;
}

struct resolver *resolver_new(struct pd_loop *l, const struct ps_config *cfg)
{
    static bool lib_init;
    if (!lib_init) {
        if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) return NULL;
        lib_init = true;
    }
    struct resolver *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->loop = l;
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.flags = ARES_FLAG_NOSEARCH;                        /* allowed names are absolute */
    o.lookups = (char *)"b";                              /* DNS only, never /etc/hosts */
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = r;
    o.timeout = 2000;                                     /* ms per try (ARES_OPT_TIMEOUTMS) */
    o.tries = 2;
    int mask = ARES_OPT_FLAGS | ARES_OPT_LOOKUPS | ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
               ARES_OPT_TRIES;
    int rc = ares_init_options(&r->ch, &o, mask);
    if (rc != ARES_SUCCESS) {
        syslog(LOG_ERR, "resolver: ares_init_options: %s", ares_strerror(rc));
        free(r);
        return NULL;
    }
    r->channel_ok = true;
    if (set_servers(r, cfg) < 0) { resolver_free(r); return NULL; }
    return r;
}

int resolver_reconfigure(struct resolver *r, const struct ps_config *cfg)
{
    if (cfg->global.n_resolvers) return set_servers(r, cfg);
    /* Back to /etc/resolv.conf: a throwaway channel reads it, and we copy its servers. */
    ares_channel tmp;
    struct ares_options o;
    memset(&o, 0, sizeof o);
    if (ares_init_options(&tmp, &o, 0) != ARES_SUCCESS) return -1;
    struct ares_addr_port_node *servers = NULL;
    int rc = ares_get_servers_ports(tmp, &servers);
    if (rc == ARES_SUCCESS) rc = ares_set_servers_ports(r->ch, servers);
    if (servers) ares_free_data(servers);
    ares_destroy(tmp);
    return rc == ARES_SUCCESS ? 0 : -1;
}

void resolver_free(struct resolver *r)
{
    if (!r) return;
    r->destroying = true;
    if (r->channel_ok) ares_destroy(r->ch);              /* answers EDESTRUCTION: ignored */
    for (size_t i = 0; i < r->nsocks; i++) pd_loop_del(r->loop, r->socks[i].fd);
    if (r->timeout_timer) pd_timer_cancel(r->loop, r->timeout_timer);
    if (r->flush_timer) pd_timer_cancel(r->loop, r->flush_timer);
    while (r->ready_head) {
        struct resolver_query *q = r->ready_head;
        ready_unlink(r, q);
        free(q->addrs);
        free(q);
    }
    for (size_t b = 0; b < NBUCKETS; b++)
        while (r->buckets[b]) {
            struct entry *e = r->buckets[b];
            while (e->waiters) { struct resolver_query *q = e->waiters; e->waiters = q->next; free(q); }
            free_entry(r, e);
        }
    free(r);
}

/* Make room for one more entry: drop an expired or the least recently used finished one. */
static bool make_room(struct resolver *r)
{
    if (r->nentries < RESOLVER_CACHE_MAX) return true;
    if (!r->lru_tail) return false;                      /* everything is in flight */
    free_entry(r, r->lru_tail);
    return true;
}

static void start_query(struct resolver *r, struct entry *e)
{
    char fqdn[PS_MAX_NAME + 2];
    struct ares_addrinfo_hints h;
    memset(&h, 0, sizeof h);
    h.ai_family = AF_UNSPEC;
    h.ai_flags = ARES_AI_NOSORT;
    snprintf(fqdn, sizeof fqdn, "%s.", e->name);
    e->state = ENTRY_PENDING;
    lru_unlink(r, e);
    r->n_upstream++;
    /* May answer synchronously (e.g. an IP literal): on_ares_answer only queues the waiters. */
    ares_getaddrinfo(r->ch, fqdn, NULL, &h, on_ares_answer, e);
    rearm_timeout(r);
}

struct resolver_query *resolver_lookup(struct resolver *r, const char *name, resolver_cb cb, void *arg)
{
    char norm[PS_MAX_NAME + 1];
    struct resolver_query *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    uint64_t now = pd_now_ms();
    if (ps_name_normalize(name, norm) < 0 || norm[0] == '\0') {
        struct entry bad = { .status = RESOLVER_EINVAL };
        make_ready(r, q, &bad, now);
        return q;
    }
    struct entry *e = find_entry(r, norm);
    if (e && e->state == ENTRY_DONE && e->expires_ms > now) {
        r->n_cached++;
        lru_unlink(r, e);
        lru_push(r, e);
        make_ready(r, q, e, now);
        return q;
    }
    if (!e) {
        if (!make_room(r) || !(e = calloc(1, sizeof *e)) || !(e->name = strdup(norm))) {
            if (e) free(e);
            struct entry busy = { .status = RESOLVER_ENOMEM };
            make_ready(r, q, &busy, now);
            return q;
        }
        e->r = r;
        unsigned b = hash_name(norm);
        e->hnext = r->buckets[b];
        r->buckets[b] = e;
        r->nentries++;
        e->state = ENTRY_DONE;                           /* so start_query sees a fresh entry */
    }
    q->e = e;
    q->next = e->waiters;
    if (e->waiters) e->waiters->prev = q;
    e->waiters = q;
    if (e->state == ENTRY_DONE) start_query(r, e);       /* new, or expired */
    return q;
}

void resolver_cancel(struct resolver *r, struct resolver_query *q)
{
    if (!q) return;
    if (q->ready) {
        ready_unlink(r, q);
        free(q->addrs);
    } else if (q->e) {
        if (q->prev) q->prev->next = q->next; else q->e->waiters = q->next;
        if (q->next) q->next->prev = q->prev;
    }
    free(q);
}

const char *resolver_strerror(int status)
{
    switch (status) {
    case 0: return "ok";
    case RESOLVER_ENOTFOUND: return "NXDOMAIN";
    case RESOLVER_ENODATA: return "no address";
    case RESOLVER_EFAIL: return "upstream DNS failure";
    case RESOLVER_EINVAL: return "invalid name";
    case RESOLVER_ENOMEM: return "out of memory";
    default: return "unknown resolver error";
    }
}

void resolver_stats(const struct resolver *r, unsigned long *upstream, unsigned long *cached,
                    size_t *entries)
{
    if (upstream) *upstream = r->n_upstream;
    if (cached) *cached = r->n_cached;
    if (entries) *entries = r->nentries;
}
