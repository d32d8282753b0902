/* sandboxctl doctor and apply: are proxyd's ports held by proxyd's sockets?  The ruleset's chain listeners
 * (netfilter/nft_render.c) lets traffic to proxyd's endpoints reach only sockets marked
 * PS_PROXY_SOCKET_MARK, which proxyd sets while it starts as root.  A socket on one of those ports
 * without the mark is either a port squatter (it took the port while proxyd was down) or a
 * proxyd that could not mark its listeners (started by a version without the mark, not as root,
 * a DNSListen= added by a reload); either way everything steered there is refused.  Live by
 * nature: read from this network namespace's socket table. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "common/sockdiag.h"
#include "ctl/ctl.h"
#include "ctl/doctor_int.h"

struct scan {
    const struct ps_global *g;
    ctl_unmarked_cb cb;
    void *arg;
};

static bool is_wildcard(int family, const uint8_t *addr)
{
    static const uint8_t zero[16];
    return memcmp(addr, zero, family == AF_INET ? 4 : 16) == 0;
}

/* Does socket s sit on endpoint a (ranged: PORT .. PORT+PS_REDIRECT_PORTS-1)? */
static bool on_endpoint(const struct ps_bound_socket *s, const struct ps_sockaddr *a, bool ranged)
{
    if (a->ss.ss_family != s->family)
        return false;
    uint8_t addr[16] = { 0 };
    uint16_t port;
    if (s->family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
        memcpy(addr, &in->sin_addr, 4);
        port = ntohs(in->sin_port);
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
        memcpy(addr, &in6->sin6_addr, 16);
        port = ntohs(in6->sin6_port);
    }
    unsigned last = port + (ranged ? PS_REDIRECT_PORTS - 1 : 0);
    if (s->port < port || s->port > last)
        return false;
    size_t n = s->family == AF_INET ? 4 : 16;
    return memcmp(addr, s->addr, n) == 0 || is_wildcard(s->family, s->addr) ||
           is_wildcard(s->family, addr);
}

static void check_one(void *arg, const struct ps_bound_socket *s)
{
    struct scan *sc = arg;
    const struct ps_global *g = sc->g;
    const struct { const struct ps_sockaddr *v; size_t n; bool ranged; int proto; const char *key; } kinds[] = {
        { g->explicit_listen, g->n_explicit_listen, false, IPPROTO_TCP, "ExplicitListen" },
        { g->transparent_listen, g->n_transparent_listen, true, IPPROTO_TCP, "TransparentListen" },
        { g->dns_listen, g->n_dns_listen, true, IPPROTO_TCP, "DNSListen" },
        { g->dns_listen, g->n_dns_listen, true, IPPROTO_UDP, "DNSListen" },
    };
    if (!s->has_mark || s->mark == PS_PROXY_SOCKET_MARK)
        return;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (kinds[k].proto != s->proto)
            continue;
        for (size_t i = 0; i < kinds[k].n; i++) {
            const struct ps_sockaddr *a = &kinds[k].v[i];
            if (!on_endpoint(s, a, kinds[k].ranged))
                continue;
            char ip[INET6_ADDRSTRLEN], where[INET6_ADDRSTRLEN + 16];
            inet_ntop(s->family, s->addr, ip, sizeof ip);
            snprintf(where, sizeof where, "%s%s%s:%u/%s", s->family == AF_INET6 ? "[" : "", ip,
                     s->family == AF_INET6 ? "]" : "", s->port, s->proto == IPPROTO_TCP ? "tcp" : "udp");
            sc->cb(sc->arg, s, where, kinds[k].key, &a->origin);
            return;                    /* once per socket */
        }
    }
}

void ctl_unmarked_listeners(const struct ps_config *cfg, ctl_unmarked_cb cb, void *arg)
{
    struct scan sc = { .g = &cfg->global, .cb = cb, .arg = arg };
    static const int fams[] = { AF_INET, AF_INET6 }, protos[] = { IPPROTO_TCP, IPPROTO_UDP };
    for (size_t f = 0; f < 2; f++)
        for (size_t p = 0; p < 2; p++)
            if (ps_sockdiag_dump_bound(fams[f], protos[p], check_one, &sc) < 0)
                fprintf(stderr, "sandboxctl: cannot list %s %s sockets: %m (listener marks not "
                        "checked)\n", fams[f] == AF_INET ? "IPv4" : "IPv6",
                        protos[p] == IPPROTO_TCP ? "TCP" : "UDP");
}

static void doctor_finding(void *arg, const struct ps_bound_socket *s, const char *where,
                           const char *key, const struct ps_origin *origin)
{
    doc_finding(arg, origin->file ? origin->file : "sandbox.conf", origin->line,
                "%s (%s=) is held by a socket without proxyd's mark (uid %u, socket inode %llu, "
                "mark 0x%x): with the ruleset loaded, everything sent there is refused; it is a "
                "port squatter, or a sandbox-proxyd that could not mark it (an older version, not "
                "started as root, a DNSListen= added by a reload); fix: find it with ss -ltunpe, "
                "stop a squatter, restart sandbox-proxyd", where, key, (unsigned)s->uid,
                (unsigned long long)s->inode, s->mark);
}

void doc_check_listener_marks(struct doctor *d)
{
    if (d->cfg)                        /* an unloadable config is its own finding */
        ctl_unmarked_listeners(d->cfg, doctor_finding, d);
}
