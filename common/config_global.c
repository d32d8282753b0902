/* sandbox.conf (DESIGN.md §3.1): keyword table, handlers, defaults. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/config_int.h"
#include "common/policy.h"
#include "common/util.h"
#include "common/values.h"

const char *const ps_global_sections[] = { "Proxy", "Inference", NULL };

static int key_user(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    if (!ps_valid_account_name(val)) {
        ps_perr(c, line, "%s=%s: not a valid user name", k->name, val);
        return -1;
    }
    free(c->cfg->global.proxy_user);
    c->cfg->global.proxy_user = ps_xstrdup(val);
    return 0;
}

/* ExplicitListen=, TransparentListen=, DNSListen=, Resolver=: lists of ADDRESS:PORT.  The first
 * assignment in the file replaces the default; an empty value empties the list. */
static int key_addrs(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    struct ps_global *g = &c->cfg->global;
    struct ps_sockaddr **list;
    size_t *n;
    switch (k->arg) {
    case 0: list = &g->explicit_listen; n = &g->n_explicit_listen; break;
    case 1: list = &g->transparent_listen; n = &g->n_transparent_listen; break;
    case 2: list = &g->dns_listen; n = &g->n_dns_listen; break;
    default: list = &g->resolvers; n = &g->n_resolvers; break;
    }
    if (c->first || !*val)
        *n = 0;
    const char *p = val;
    char *w, err[256];
    while ((w = ps_next_word(&p))) {
        struct ps_sockaddr sa;
        if (ps_parse_sockaddr(w, k->arg == 3 ? 53 : 0, &sa, err, sizeof err) < 0) {
            ps_perr(c, line, "%s=: %s", k->name, err);
        } else if (*n >= ((k->arg == 1 || k->arg == 2) ? PS_MAX_RANGED_LISTEN : PS_MAX_LISTEN)) {
            ps_perr(c, line, "%s=: too many addresses (at most %d)", k->name,
                    (k->arg == 1 || k->arg == 2) ? PS_MAX_RANGED_LISTEN : PS_MAX_LISTEN);
        } else {
            sa.origin = ps_origin_at(c, line);
            *list = ps_xrealloc(*list, *n + 1, sizeof **list);
            (*list)[(*n)++] = sa;
        }
        free(w);
    }
    return 0;
}

static int key_synthetic(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    struct ps_cidr cidr;
    if (ps_cidr_parse(val, &cidr) < 0 || !strchr(val, '/')) {
        ps_perr(c, line, "%s=%s: expected a network such as 198.18.0.0/15", k->name, val);
        return -1;
    }
    if (ps_cidr_has_host_bits(&cidr)) {
        ps_perr(c, line, "%s=%s: bits set after the prefix", k->name, val);
        return -1;
    }
    if (cidr.family != AF_INET) {      /* proxyd/synth.c hands out IPv4 only; AAAA gets no address */
        ps_perr(c, line, "%s=%s: must be an IPv4 network", k->name, val);
        return -1;
    }
    unsigned bits = cidr.family == AF_INET ? 32 : 128;
    if (bits - cidr.prefix < 8) {
        ps_perr(c, line, "%s=%s: too small (needs at least 256 addresses)", k->name, val);
        return -1;
    }
    /* The whole range, not only its first address: 10.0.0.0/7 starts private and ends public,
     * and every address in it would stand for a name instead of the real host. */
    struct sockaddr_storage first, last;
    ps_cidr_endpoint(&cidr, false, &first);
    ps_cidr_endpoint(&cidr, true, &last);
    enum ps_addr_class cl = ps_addr_classify((struct sockaddr *)&first, NULL);
    enum ps_addr_class cl_last = ps_addr_classify((struct sockaddr *)&last, NULL);
    if (cl_last != cl && cl_last == PS_ADDR_PUBLIC)
        cl = cl_last;
    /* the metadata services of common/addr.c: 169.254.169.254, 169.254.170.2, 100.100.100.200,
     * 168.63.129.16 */
    static const uint32_t metadata[] = { 0xa9fea9feu, 0xa9feaa02u, 0x646464c8u, 0xa83f8110u };
    for (size_t i = 0; i < sizeof metadata / sizeof metadata[0]; i++) {
        struct sockaddr_in m = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(metadata[i]) };
        if (ps_cidr_contains(&cidr, (struct sockaddr *)&m))
            cl = PS_ADDR_METADATA;
    }
    if (cl == PS_ADDR_PUBLIC || cl == PS_ADDR_METADATA || cl == PS_ADDR_LOOPBACK ||
        cl == PS_ADDR_MULTICAST || cl == PS_ADDR_UNSPECIFIED) {
        ps_perr(c, line, "%s=%s: must be a private or reserved range that no real host uses "
                "(%s addresses are not)", k->name, val, ps_addr_class_name(cl));
        return -1;
    }
    if (cl_last != cl) {
        ps_perr(c, line, "%s=%s: must lie in one address class (it starts %s and ends %s)",
                k->name, val, ps_addr_class_name(cl), ps_addr_class_name(cl_last));
        return -1;
    }
    /* Its two ends in one class do not make the middle one (192.0.0.0/2 starts and ends reserved
     * and holds most of the Internet): the range must lie inside one block that no real host
     * uses and that nothing else in the address classes carves up. */
    static const char *const blocks[] = { "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                          "100.64.0.0/10", "198.18.0.0/15", "240.0.0.0/4" };
    bool inside = false;
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0] && !inside; i++) {
        struct ps_cidr b;
        ps_cidr_parse(blocks[i], &b);
        inside = b.prefix <= cidr.prefix && ps_cidr_contains(&b, (struct sockaddr *)&first) &&
                 ps_cidr_contains(&b, (struct sockaddr *)&last);
    }
    if (!inside) {
        ps_perr(c, line, "%s=%s: must lie inside one of 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "
                "100.64.0.0/10, 198.18.0.0/15 or 240.0.0.0/4", k->name, val);
        return -1;
    }
    c->cfg->global.synthetic_range = cidr;
    return 0;
}

static int key_upstream(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    struct ps_global *g = &c->cfg->global;
    char err[256];
    free(g->upstream_proxy_host);
    g->upstream_proxy_host = NULL;
    g->upstream_proxy_port = 0;
    if (!*val)
        return 0;
    if (ps_parse_hostport(val, &g->upstream_proxy_host, &g->upstream_proxy_port, 0, err,
                          sizeof err) < 0) {
        ps_perr(c, line, "%s=: %s", k->name, err);
        return -1;
    }
    return 0;
}

static int key_path(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    if (val[0] != '/' || strstr(val, "/../") || strchr(val, ' ') || strchr(val, '\t')) {
        ps_perr(c, line, "%s=%s: expected an absolute path", k->name, val);
        return -1;
    }
    free(c->cfg->global.decision_log);
    c->cfg->global.decision_log = ps_xstrdup(val);
    return 0;
}

static int key_size(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    uint64_t v;
    char err[256];
    if (ps_parse_size(val, &v, err, sizeof err) < 0) {
        ps_perr(c, line, "%s=: %s", k->name, err);
        return -1;
    }
    if (v < 1024 || v > (1ull << 30)) {
        ps_perr(c, line, "%s=%s: out of range (1K-1G)", k->name, val);
        return -1;
    }
    c->cfg->global.max_request_size = v;
    return 0;
}

static int key_timeout(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    uint64_t v;
    char err[256];
    if (ps_parse_duration_ms(val, &v, err, sizeof err) < 0) {
        ps_perr(c, line, "%s=: %s", k->name, err);
        return -1;
    }
    if (v < 1000 || v > 24ull * 3600 * 1000) {
        ps_perr(c, line, "%s=%s: out of range (1s-24h)", k->name, val);
        return -1;
    }
    if (k->arg == 1)
        c->cfg->global.half_closed_timeout_ms = v;
    else if (k->arg == 2)
        c->cfg->global.request_body_timeout_ms = v;
    else
        c->cfg->global.stream_idle_timeout_ms = v;
    return 0;
}

const struct ps_key ps_global_keys[] = {
    { "Proxy", "User", 0, key_user, 0 },
    { "Proxy", "ExplicitListen", KEY_REPEAT, key_addrs, 0 },
    { "Proxy", "TransparentListen", KEY_REPEAT, key_addrs, 1 },
    { "Proxy", "DNSListen", KEY_REPEAT, key_addrs, 2 },
    { "Proxy", "Resolver", KEY_REPEAT, key_addrs, 3 },
    { "Proxy", "SyntheticRange", 0, key_synthetic, 0 },
    { "Proxy", "UpstreamProxy", 0, key_upstream, 0 },
    { "Proxy", "DecisionLog", 0, key_path, 0 },
    { "Proxy", "HalfClosedTimeout", 0, key_timeout, 1 },
    { "Inference", "MaxRequestSize", 0, key_size, 0 },
    { "Inference", "StreamIdleTimeout", 0, key_timeout, 0 },
    { "Inference", "RequestBodyTimeout", 0, key_timeout, 2 },
};
const size_t ps_n_global_keys = sizeof ps_global_keys / sizeof ps_global_keys[0];

static void add_default_addr(struct ps_sockaddr **list, size_t *n, const char *s)
{
    char err[64];
    *list = ps_xrealloc(*list, *n + 1, sizeof **list);
    if (ps_parse_sockaddr(s, 0, &(*list)[*n], err, sizeof err) == 0)
        (*n)++;
}

void ps_global_defaults(struct ps_global *g)
{
    memset(g, 0, sizeof *g);
    g->proxy_user = ps_xstrdup("pam-sandbox");
    add_default_addr(&g->explicit_listen, &g->n_explicit_listen, "127.0.0.1:3128");
    add_default_addr(&g->transparent_listen, &g->n_transparent_listen, "127.0.0.1:3129");
    add_default_addr(&g->dns_listen, &g->n_dns_listen, "127.0.0.1:3153");
    ps_cidr_parse("198.18.0.0/15", &g->synthetic_range);
    g->decision_log = ps_xstrdup("/var/log/pam_sandbox/decisions.jsonl");
    g->max_request_size = 10ull << 20;
    g->half_closed_timeout_ms = 600000;
    g->stream_idle_timeout_ms = 120000;
    g->request_body_timeout_ms = 300000;
}

void ps_global_free(struct ps_global *g)
{
    free(g->proxy_user);
    free(g->explicit_listen);
    free(g->transparent_listen);
    free(g->dns_listen);
    free(g->resolvers);
    free(g->upstream_proxy_host);
    free(g->decision_log);
    memset(g, 0, sizeof *g);
}

/* Each TransparentListen= and DNSListen= port is the first of PS_REDIRECT_PORTS (config.h): they
 * must exist, and no other TCP listener of proxyd may sit among them (its bind would fail at
 * start).  Across keys addresses are not compared (one port range per purpose keeps the rules
 * readable); within one key they are, since 127.0.0.1:3153 and [::1]:3153 is the usual pair. */
struct port_range {
    unsigned first, last;
    const struct ps_sockaddr *at;
    const char *key;
};

/* Could sockets bound to a and b clash: same family, and the same address or a wildcard? */
static bool addrs_collide(const struct ps_sockaddr *a, const struct ps_sockaddr *b)
{
    if (a->ss.ss_family != b->ss.ss_family)
        return false;
    if (a->ss.ss_family == AF_INET) {
        in_addr_t x = ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr;
        in_addr_t y = ((const struct sockaddr_in *)&b->ss)->sin_addr.s_addr;
        return x == y || x == htonl(INADDR_ANY) || y == htonl(INADDR_ANY);
    }
    const struct in6_addr *x = &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
    const struct in6_addr *y = &((const struct sockaddr_in6 *)&b->ss)->sin6_addr;
    return IN6_ARE_ADDR_EQUAL(x, y) || IN6_IS_ADDR_UNSPECIFIED(x) || IN6_IS_ADDR_UNSPECIFIED(y);
}

static void check_redirect_ports(struct pctx *c, const struct ps_global *g)
{
    const struct { const struct ps_sockaddr *v; size_t n; const char *key; } ranged[] = {
        { g->transparent_listen, g->n_transparent_listen, "TransparentListen" },
        { g->dns_listen, g->n_dns_listen, "DNSListen" },
    };
    struct port_range r[2 * PS_MAX_LISTEN];
    size_t nr = 0;
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < ranged[k].n && nr < sizeof r / sizeof r[0]; i++) {
            const struct ps_sockaddr *a = &ranged[k].v[i];
            unsigned first = ps_sockaddr_port(a), last = first + PS_REDIRECT_PORTS - 1;
            if (last > 65535) {
                ps_perr(c, a->origin.line, "%s=: port %u: proxyd listens on it and the %u ports after "
                        "it, so it must be at most %u", ranged[k].key, first, PS_REDIRECT_PORTS - 1,
                        65535 - (PS_REDIRECT_PORTS - 1));
                continue;
            }
            r[nr++] = (struct port_range){ first, last, a, ranged[k].key };
        }
    /* A transparent range and a DNS range (both TCP) must not share a port; two ranges of one
     * key only where their addresses could clash (127.0.0.1:3153 and [::1]:3153 are fine). */
    for (size_t i = 0; i < nr; i++)
        for (size_t j = i + 1; j < nr; j++) {
            if (r[i].first > r[j].last || r[j].first > r[i].last)
                continue;
            if (strcmp(r[i].key, r[j].key) != 0)
                ps_perr(c, r[j].at->origin.line, "%s=: ports %u-%u overlap the %s= ports %u-%u "
                        "(each takes %u ports from its own)", r[j].key, r[j].first, r[j].last,
                        r[i].key, r[i].first, r[i].last, PS_REDIRECT_PORTS);
            else if (addrs_collide(r[i].at, r[j].at))
                ps_perr(c, r[j].at->origin.line, "%s=: ports %u-%u overlap the ports %u-%u of the "
                        "same address on line %u (each takes %u ports from its own)", r[j].key,
                        r[j].first, r[j].last, r[i].first, r[i].last, r[i].at->origin.line,
                        PS_REDIRECT_PORTS);
        }
    /* an explicit listener inside either range */
    for (size_t j = 0; j < g->n_explicit_listen; j++) {
        unsigned p = ps_sockaddr_port(&g->explicit_listen[j]);
        for (size_t i = 0; i < nr; i++)
            if (p >= r[i].first && p <= r[i].last)
                ps_perr(c, g->explicit_listen[j].origin.line, "ExplicitListen=: port %u is among the "
                        "%s= ports %u-%u (it takes the %u ports from its own)", p, r[i].key,
                        r[i].first, r[i].last, PS_REDIRECT_PORTS);
    }
}

void ps_global_finish(struct pctx *c)
{
    const struct ps_global *g = &c->cfg->global;
    if (g->n_transparent_listen == 0)
        ps_perr(c, 0, "[Proxy] TransparentListen= is empty: proxyd needs somewhere to listen");
    check_redirect_ports(c, g);
    if (g->n_dns_listen == 0)
        ps_perr(c, 0, "[Proxy] DNSListen= is empty: proxyd needs somewhere to listen");
}
