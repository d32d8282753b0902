/* Asynchronous upstream name resolution for proxyd (c-ares on the proxyd loop), cached per TTL.
 * Used by the connect path (names allowed by policy) and by policy DNS.  Never called for a name
 * that policy denied. */
#ifndef PD_RESOLVER_H
#define PD_RESOLVER_H

#include <stddef.h>
#include <sys/socket.h>
#include "proxyd.h"

struct resolver *resolver_new(struct pd_loop *l, const struct ps_config *cfg);
void resolver_free(struct resolver *r);

/* status 0: addrs[0..n) (IPv4 and IPv6, port 0); otherwise a negative error and n == 0.
 * ttl: seconds the answer may be cached. */
typedef void (*resolver_cb)(void *arg, int status, const struct sockaddr_storage *addrs, size_t n,
                            unsigned ttl);
/* Starts a lookup; the callback runs later from the loop (never re-entrantly), unless cancelled. */
struct resolver_query *resolver_lookup(struct resolver *r, const char *name, resolver_cb cb, void *arg);
void resolver_cancel(struct resolver *r, struct resolver_query *q);

#endif
