/* Asynchronous upstream name resolution for proxyd (c-ares on the proxyd loop), cached per TTL.
 * Used by the connect path (names allowed by policy) and by policy DNS.  Never called for a name
 * that policy denied. */
#ifndef PD_RESOLVER_H
#define PD_RESOLVER_H

#include <stddef.h>
#include <sys/socket.h>
#include "proxyd.h"

struct resolver *resolver_new(struct pd_loop *l, const struct ps_config *cfg);
/* Lookups still pending are dropped without their callbacks. */
void resolver_free(struct resolver *r);

/* status 0: addrs[0..n) (IPv4 and IPv6, port 0); otherwise a negative error and n == 0.
 * ttl: seconds the answer may be cached. */
typedef void (*resolver_cb)(void *arg, int status, const struct sockaddr_storage *addrs, size_t n,
                            unsigned ttl);
/* Starts a lookup; the callback runs later from the loop (never re-entrantly), unless cancelled. */
struct resolver_query *resolver_lookup(struct resolver *r, const char *name, resolver_cb cb, void *arg);
void resolver_cancel(struct resolver *r, struct resolver_query *q);

/* Added by the DNS part (may be used by anyone): */
/* Negative statuses a callback can receive. */
enum {
    RESOLVER_ENOTFOUND = -1,   /* NXDOMAIN: the name does not exist (cached RESOLVER_NEG_TTL s) */
    RESOLVER_ENODATA = -2,     /* the name exists but has no A/AAAA (cached RESOLVER_NEG_TTL s) */
    RESOLVER_EFAIL = -3,       /* SERVFAIL, REFUSED, timeout, unreachable server: not cached */
    RESOLVER_EINVAL = -4,      /* not a valid DNS name */
    RESOLVER_ENOMEM = -5,      /* out of memory, or the cache is full of pending lookups */
};
#define RESOLVER_NEG_TTL 30u      /* getaddrinfo hides the SOA minimum, so a fixed negative TTL */
#define RESOLVER_MAX_TTL 3600u    /* longer TTLs are clamped: a stale address is worse than a query */
#define RESOLVER_CACHE_MAX 4096u  /* names remembered; the least recently used answer goes first */
const char *resolver_strerror(int status);
/* Point the resolver at the servers of a new config (Resolver=, else /etc/resolv.conf) without
 * dropping lookups in flight or the cache.  0 or -1. */
int resolver_reconfigure(struct resolver *r, const struct ps_config *cfg);
/* Counters, for tests and status: upstream lookups started, answers served from the cache, names
 * remembered now (never more than RESOLVER_CACHE_MAX).  Any pointer may be NULL. */
void resolver_stats(const struct resolver *r, unsigned long *upstream, unsigned long *cached,
                    size_t *entries);

#endif
