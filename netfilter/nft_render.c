/* Rendering table inet pam_sandbox from the config (DESIGN.md §5.1).
 *
 * The ruleset depends only on [Proxy] of sandbox.conf (proxyd's account and listen addresses):
 * every profile's policy is applied by proxyd, never by nftables, so that common/ stays the only
 * code that knows policy semantics.  For the UIDs in @users:
 *   chain steer  (nat, output): TCP/UDP to port 53 -> the policy DNS port; TCP to one of proxyd's
 *                own listen endpoints -> left alone; every other TCP -> the transparent port.
 *   chain egress (filter, output, after nat so it sees the redirected destination): accept only
 *                proxyd's endpoints; log the rest (rate-limited) and reject TCP with a reset, UDP
 *                with port-unreachable, drop every other protocol.
 *   chain remapped (filter, input): steered flows whose source port conntrack rewrote (below).
 *   chain listeners (filter, input): traffic to proxyd's endpoints whose receiving socket is not
 *                proxyd's (no PS_PROXY_SOCKET_MARK): a port squatter's, while proxyd is down.
 * Every rule carries "meta skuid @users": kernel-generated packets (RSTs, ICMP errors) have no
 * owner and must match nothing here (DESIGN.md §9.9), and nobody outside the set is touched.
 *
 * What nftables cannot express is an error with the FILE:LINE of the listen address: `redirect`
 * sends locally generated traffic to 127.0.0.1 / ::1, so a transparent or DNS listener must be
 * there (or on the wildcard address), and one family can be redirected to one port only. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "netfilter/nft.h"
#include "netfilter/nft_int.h"

/* ---- lines with the config line each came from ---- */

struct line {
    char *text;
    struct ps_origin origin;
};

struct lines {
    struct line *v;
    size_t n, cap;
};

static const struct ps_origin no_origin = { NULL, 0 };

static void __attribute__((format(printf, 3, 4)))
emit(struct lines *l, const struct ps_origin *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        abort();                  /* like ps_xmalloc: out of memory ends the process */
    va_end(ap);
    struct line *ln = ps_vec_push(&l->v, &l->n, &l->cap, sizeof *l->v);
    ln->text = s;
    ln->origin = *o;
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].text);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* ---- listen endpoints ---- */

struct endpoint {
    int family;
    bool wildcard;
    char addr[INET6_ADDRSTRLEN];
    uint16_t port;
    unsigned port_last;           /* TransparentListen=, DNSListen= are ranges (PS_REDIRECT_PORTS) */
    const char *key;              /* "TransparentListen" ... for messages and comments */
    struct ps_origin origin;
};

static void endpoint_of(const struct ps_sockaddr *sa, const char *key, struct endpoint *e)
{
    memset(e, 0, sizeof *e);
    e->key = key;
    e->origin = sa->origin;
    if (sa->ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&sa->ss;
        e->family = AF_INET;
        e->wildcard = sin->sin_addr.s_addr == htonl(INADDR_ANY);
        e->port = ntohs(sin->sin_port);
        inet_ntop(AF_INET, &sin->sin_addr, e->addr, sizeof e->addr);
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&sa->ss;
        e->family = AF_INET6;
        e->wildcard = IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
        e->port = ntohs(sin6->sin6_port);
        inet_ntop(AF_INET6, &sin6->sin6_addr, e->addr, sizeof e->addr);
    }
    e->port_last = e->port;
    if (strcmp(key, "TransparentListen") == 0 || strcmp(key, "DNSListen") == 0)
        e->port_last = e->port + PS_REDIRECT_PORTS - 1u;   /* <= 65535: config_global.c */
}

/* "3129" or "3129-3144" */
static void port_text(const struct endpoint *e, char *buf, size_t n)
{
    if (e->port_last > e->port)
        snprintf(buf, n, "%u-%u", e->port, e->port_last);
    else
        snprintf(buf, n, "%u", e->port);
}

/* Can `redirect` (which targets 127.0.0.1 / ::1 for locally generated packets) reach e? */
static bool redirect_reaches(const struct endpoint *e)
{
    return e->wildcard || strcmp(e->addr, e->family == AF_INET ? "127.0.0.1" : "::1") == 0;
}

const char *ps_nft_global_file(const struct ps_config *cfg)
{
    return cfg->global_file ? cfg->global_file : "sandbox.conf";
}

static const char *origin_file(const struct ps_config *cfg, const struct ps_origin *o)
{
    return o->file ? o->file : ps_nft_global_file(cfg);
}

/* "sandbox.conf:4" (base name: rule comments are short) or "default". */
static void origin_comment(const struct endpoint *e, char *buf, size_t n)
{
    if (!e->origin.file) {
        snprintf(buf, n, "%s= (default)", e->key);
        return;
    }
    const char *base = strrchr(e->origin.file, '/');
    base = base ? base + 1 : e->origin.file;
    snprintf(buf, n, "%s= %.60s:%u", e->key, base, e->origin.line);
    for (char *p = buf; *p; p++)  /* a quote would end the nft string */
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = '?';
}

/* The port `redirect` must use for family fam, from the listens of one key; 0 when the family has
 * none (its traffic of that kind is then rejected: fail closed).  -1 on a render error. */
static int redirect_port(const struct ps_config *cfg, const struct ps_sockaddr *list, size_t n,
                         const char *key, int fam, struct ps_diags *diags)
{
    int port = 0;
    for (size_t i = 0; i < n; i++) {
        struct endpoint e;
        endpoint_of(&list[i], key, &e);
        if (e.family != fam)
            continue;
        if (!redirect_reaches(&e)) {
            ps_diags_add(diags, origin_file(cfg, &e.origin), e.origin.line,
                         "%s=%s%s%s:%u: nftables redirects a local connection to %s, so the "
                         "listener must be there or on %s", key, fam == AF_INET6 ? "[" : "", e.addr,
                         fam == AF_INET6 ? "]" : "", e.port, fam == AF_INET ? "127.0.0.1" : "::1",
                         fam == AF_INET ? "0.0.0.0" : "[::]");
            return -1;
        }
        if (port && port != e.port) {
            ps_diags_add(diags, origin_file(cfg, &e.origin), e.origin.line,
                         "%s=: a second %s port (%u, first %d): nftables redirects one address "
                         "family to one port only", key, fam == AF_INET ? "IPv4" : "IPv6", e.port,
                         port);
            return -1;
        }
        port = e.port;
    }
    return port;
}

/* "ip daddr 127.0.0.1 fib daddr type local tcp dport 3128" for one endpoint; the match of "this
 * is proxyd".  Always with "this host": an ExplicitListen= address that is not (yet, or no longer)
 * one of the host's own, written for UpstreamProxy= by mistake or moved away with a DHCP lease,
 * would otherwise be exempted as written and every sandboxed account would reach that remote
 * port directly, proxyd never asked. */
static void endpoint_match(const struct endpoint *e, const char *proto, char *buf, size_t n)
{
    char ports[24];
    port_text(e, ports, sizeof ports);
    if (e->wildcard)
        snprintf(buf, n, "meta nfproto %s fib daddr type local %s dport %s",
                 e->family == AF_INET ? "ipv4" : "ipv6", proto, ports);
    else
        snprintf(buf, n, "%s daddr %s fib daddr type local %s dport %s",
                 e->family == AF_INET ? "ip" : "ip6", e->addr, proto, ports);
}

/* Each of proxyd's endpoints once, in rule order: explicit (unless targets_only: the redirect
 * targets alone), transparent, DNS over TCP, DNS over UDP.  An address listed twice gives one
 * rule: fn sees each distinct match once. */
typedef void (*endpoint_fn)(void *arg, const struct endpoint *e, const char *proto, const char *match);

static void for_each_endpoint(const struct ps_config *cfg, bool targets_only, endpoint_fn fn, void *arg)
{
    const struct ps_global *g = &cfg->global;
    const struct { const struct ps_sockaddr *v; size_t n; const char *key; const char *proto; } kinds[] = {
        { g->explicit_listen, targets_only ? 0 : g->n_explicit_listen, "ExplicitListen", "tcp" },
        { g->transparent_listen, g->n_transparent_listen, "TransparentListen", "tcp" },
        { g->dns_listen, g->n_dns_listen, "DNSListen", "tcp" },
        { g->dns_listen, g->n_dns_listen, "DNSListen", "udp" },
    };
    struct lines seen = { 0 };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (size_t i = 0; i < kinds[k].n; i++) {
            struct endpoint e;
            char match[160];
            endpoint_of(&kinds[k].v[i], kinds[k].key, &e);
            endpoint_match(&e, kinds[k].proto, match, sizeof match);
            bool dup = false;
            for (size_t j = 0; j < seen.n && !dup; j++)
                dup = strcmp(seen.v[j].text, match) == 0;
            if (dup)
                continue;
            emit(&seen, &no_origin, "%s", match);
            fn(arg, &e, kinds[k].proto, match);
        }
    }
    lines_free(&seen);
}

struct endpoint_rules {
    struct lines *l;
    const char *verdict;
};

static void endpoint_rule(void *arg, const struct endpoint *e, const char *proto, const char *match)
{
    const struct endpoint_rules *r = arg;
    char comment[128];
    origin_comment(e, comment, sizeof comment);
    /* A DNS datagram carries its sender's UID to proxyd as its mark (SO_RCVMARK): the only
     * identity of a datagram that does not depend on the sender's socket still existing when
     * proxyd looks (proxyd/dns_ident.h).  A UID missing from the map gets no mark and goes on to
     * the plain rule below: proxyd then looks at the socket table. */
    if (strcmp(proto, "udp") == 0)
        emit(r->l, &e->origin, "\t\tmeta skuid @users %s meta mark set meta skuid map @uidmark %s "
             "comment \"%s, sender's UID as the mark\"", match, r->verdict, comment);
    emit(r->l, &e->origin, "\t\tmeta skuid @users %s %s comment \"%s\"", match, r->verdict, comment);
}

/* Every TCP endpoint of proxyd (explicit, transparent, DNS) and the UDP ones (DNS), without
 * duplicates, each rendered as "<match> <verdict> comment ..." into l. */
static void emit_endpoints(const struct ps_config *cfg, struct lines *l, const char *verdict)
{
    struct endpoint_rules r = { l, verdict };
    for_each_endpoint(cfg, false, endpoint_rule, &r);
}

/* The verdict chain of an input-hook guard (remapped, listeners): log (rate-limited, kernel log
 * and NFLOG, the reason after PS_NFT_LOG_PREFIX), count in the named counter, and refuse as a
 * closed port would: a TCP reset, else port-unreachable. */
static void emit_refuse_chain(struct lines *l, const char *chain, const char *counter, const char *reason)
{
    emit(l, &no_origin, "\tchain %s {", chain);
    emit(l, &no_origin, "\t\tlimit rate 10/second burst 20 packets log prefix \"%s%s\" log prefix \"%s%s\" group %d",
         PS_NFT_LOG_PREFIX, reason, PS_NFT_LOG_PREFIX, reason, PS_NFT_NFLOG_GROUP);
    emit(l, &no_origin, "\t\tmeta l4proto tcp counter name \"%s\" reject with tcp reset", counter);
    emit(l, &no_origin, "\t\tcounter name \"%s\" reject with icmpx port-unreachable", counter);
    emit(l, &no_origin, "\t}");
}

/* chain remapped: a steered flow whose source port conntrack rewrote never reaches proxyd.
 * Why: nftables `redirect` leaves the reply tuple proxy:PORT <-> host:sport; when that is taken
 * (the client reused a source port towards another destination while conntrack remembers the
 * first flow), the kernel rewrites the source port instead (ct status snat on top of dnat).
 * proxyd's sock_diag lookup then uses a port the client never had: for TCP it finds nobody (a
 * reset, client_not_found), but for DNS over UDP, where an unconnected socket is found by its
 * local port alone, it may find ANOTHER account's socket bound to that port, and the query would
 * be judged by that account's profile.  A client can force the rewrite at will (one socket, a
 * datagram to each of several servers), so this is refused here, where the kernel still knows,
 * and counted.  PS_REDIRECT_PORTS makes it rare for legitimate flows (musl's one-socket queries
 * to every nameserver included).  Like every rejection it is
 * logged (rate-limited, PS_NFT_LOG_PREFIX, kernel log and NFLOG; no skuid in the input hook): the
 * endpoint rules jump to one regular chain that logs, counts and refuses. */
static void remapped_rule(void *arg, const struct endpoint *e, const char *proto, const char *match)
{
    (void)e;
    (void)proto;
    /* every one is a redirect target: redirect_port() refused the config otherwise */
    emit(arg, &no_origin, "\t\tct status dnat ct status snat %s jump refuse_remapped "
         "comment \"steered, source port rewritten by conntrack\"", match);
}

static void emit_remapped_chain(const struct ps_config *cfg, struct lines *l)
{
    emit(l, &no_origin, "\tchain remapped {");
    emit(l, &no_origin, "\t\ttype filter hook input priority filter; policy accept;");
    for_each_endpoint(cfg, true, remapped_rule, l);
    emit(l, &no_origin, "\t}");
    emit_refuse_chain(l, "refuse_remapped", "remapped", "");
}

/* chain listeners: every endpoint of proxyd is for proxyd's sockets only.  While proxyd is down
 * (a restart, a crash, a failed reload that exits) any local account may bind its ports, and
 * would then receive what nftables steers there: every sandboxed account's connections and DNS
 * queries, to read, answer or pass on unchecked.  proxyd marks its listening sockets with
 * PS_PROXY_SOCKET_MARK while it is still root (SO_MARK needs CAP_NET_ADMIN; accepted sockets
 * inherit it), and here the socket a packet would be delivered to must carry it (nft `socket
 * mark`: the listener for a SYN, the bound socket for a datagram).  With no socket at all the
 * rule does not match, and the kernel refuses as before.  A socket that is not a full one has no
 * mark to read and is let through: a handshake in progress, which only a listener that passed
 * here can have, and TIME_WAIT.  The TIME_WAIT case is a known gap: for 60 s after proxyd closed
 * first on a flow, a SYN that repeats that flow's exact addresses and ports finds the TIME_WAIT
 * socket here and the kernel then hands it to whatever listens now, a squatter included; the
 * squatter gets the handshake but none of the client's data (its socket is full and unmarked),
 * so at most it speaks first.  Refusing every SYN that no marked listener takes would close it,
 * but would also refuse legitimate reuse of those addresses while proxyd runs; ports below 1024
 * for the redirect targets would close it and the squatting itself.
 * Input hook: no socket owner there, so, like chain remapped, this applies to every account
 * (nobody but proxyd should own these ports), and the verdicts are in refuse_squatter, which
 * nothing else reaches. */
static void guard_rule(void *arg, const struct endpoint *e, const char *proto, const char *match)
{
    (void)proto;
    char comment[128];
    origin_comment(e, comment, sizeof comment);
    emit(arg, &e->origin, "\t\t%s socket mark != 0x%08x jump refuse_squatter comment \"%s: "
         "proxyd's sockets only\"", match, PS_PROXY_SOCKET_MARK, comment);
}

static void emit_listener_guard(const struct ps_config *cfg, struct lines *l)
{
    emit(l, &no_origin, "\tchain listeners {");
    emit(l, &no_origin, "\t\ttype filter hook input priority filter; policy accept;");
    for_each_endpoint(cfg, false, guard_rule, l);
    emit(l, &no_origin, "\t}");
    emit_refuse_chain(l, "refuse_squatter", "squatter", "not proxyd's socket: ");
}

/* proxyd's account, or PS_NFT_NO_UID when it does not exist: then nothing runs as it and there is
 * nothing to exempt (proxyd itself refuses to start), which is no reason to leave the sandboxed
 * accounts unsteered.  -1 only when NSS cannot answer. */
int ps_nft_proxy_uid(const struct ps_config *cfg, uid_t *uid, char *err, size_t errlen)
{
    const char *name = cfg->global.proxy_user ? cfg->global.proxy_user : "pam-sandbox";
    struct passwd pw, *res = NULL;
    char buf[4096];
    int rc = getpwnam_r(name, &pw, buf, sizeof buf, &res);
    if (rc != 0) {
        snprintf(err, errlen, "[Proxy] User=%s: cannot look the account up: %s", name, strerror(rc));
        return -1;
    }
    *uid = res ? pw.pw_uid : PS_NFT_NO_UID;
    return 0;
}

/* The first rule of both chains. */
static void emit_proxy_exemption(const struct ps_config *cfg, uid_t proxy_uid, struct lines *l)
{
    if (proxy_uid == PS_NFT_NO_UID)
        emit(l, &no_origin, "\t\t# [Proxy] User=%s does not exist: no exemption rule",
             cfg->global.proxy_user ? cfg->global.proxy_user : "pam-sandbox");
    else
        emit(l, &no_origin, "\t\tmeta skuid %u return comment \"proxyd's account: never steered\"",
             (unsigned)proxy_uid);
}

/* FNV-1a over s up to its rule comment: comments carry FILE:LINE of the listen addresses, and an
 * edit that only moves lines (a new comment line in sandbox.conf) must not make the loaded table
 * "stale" and lock sandboxed accounts out until the next apply. */
static uint32_t fnv1a(uint32_t h, const char *s)
{
    const char *end = strstr(s, " comment \"");
    for (; *s && (!end || s < end); s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* The rules of both chains, without the table around them. */
static int render_chains(const struct ps_config *cfg, uid_t proxy_uid, struct lines *l,
                         struct ps_diags *diags)
{
    const struct ps_global *g = &cfg->global;
    int tp4 = redirect_port(cfg, g->transparent_listen, g->n_transparent_listen, "TransparentListen", AF_INET, diags);
    int tp6 = redirect_port(cfg, g->transparent_listen, g->n_transparent_listen, "TransparentListen", AF_INET6, diags);
    int dns4 = redirect_port(cfg, g->dns_listen, g->n_dns_listen, "DNSListen", AF_INET, diags);
    int dns6 = redirect_port(cfg, g->dns_listen, g->n_dns_listen, "DNSListen", AF_INET6, diags);
    if (tp4 < 0 || tp6 < 0 || dns4 < 0 || dns6 < 0)
        return -1;
    const struct { int port; const char *nfproto; } dns[] = { { dns4, "ipv4" }, { dns6, "ipv6" } },
                                                     tp[] = { { tp4, "ipv4" }, { tp6, "ipv6" } };

    emit(l, &no_origin, "\tchain steer {");
    emit(l, &no_origin, "\t\ttype nat hook output priority -100; policy accept;");
    emit_proxy_exemption(cfg, proxy_uid, l);
    for (int i = 0; i < 2; i++)
        if (dns[i].port)
            emit(l, &no_origin, "\t\tmeta skuid @users meta nfproto %s meta l4proto { tcp, udp } "
                 "th dport 53 redirect to :%d-%d comment \"DNS to policy DNS\"", dns[i].nfproto,
                 dns[i].port, dns[i].port + PS_REDIRECT_PORTS - 1);
    emit_endpoints(cfg, l, "return");
    /* DNS above and TCP here go to a range of ports, so that conntrack never has to rewrite a
     * client's source port (the why is at PS_REDIRECT_PORTS) */
    for (int i = 0; i < 2; i++)
        if (tp[i].port)
            emit(l, &no_origin, "\t\tmeta skuid @users meta nfproto %s meta l4proto tcp redirect to :%d-%d "
                 "comment \"TCP to the transparent proxy\"", tp[i].nfproto, tp[i].port,
                 tp[i].port + PS_REDIRECT_PORTS - 1);
    emit(l, &no_origin, "\t}");

    emit(l, &no_origin, "\tchain egress {");
    emit(l, &no_origin, "\t\ttype filter hook output priority filter; policy accept;");
    emit_proxy_exemption(cfg, proxy_uid, l);
    emit_endpoints(cfg, l, "accept");
    emit(l, &no_origin, "\t\tmeta skuid @users limit rate 10/second burst 20 packets "
         "log prefix \"%s\" flags skuid log prefix \"%s\" group %d",
         PS_NFT_LOG_PREFIX, PS_NFT_LOG_PREFIX, PS_NFT_NFLOG_GROUP);
    emit(l, &no_origin, "\t\tmeta skuid @users meta l4proto tcp counter name \"rejected_tcp\" "
         "reject with tcp reset");
    emit(l, &no_origin, "\t\tmeta skuid @users meta l4proto udp counter name \"rejected_udp\" "
         "reject with icmpx port-unreachable");
    emit(l, &no_origin, "\t\tmeta skuid @users counter name \"dropped_other\" drop");
    emit(l, &no_origin, "\t}");

    /* Everything a sandboxed account may send goes to this host (proxyd, or a local address),
     * which the kernel routes through lo.  A socket bound to another device (SO_BINDTODEVICE, open
     * to any account for a socket not yet bound to one; an IPv6 link-local scope does the same) is
     * routed out of that device even to 127.0.0.1 after the redirect, past every rule above, which
     * only look at the address: its packets are dropped on the way out. */
    emit(l, &no_origin, "\tchain leave {");
    emit(l, &no_origin, "\t\ttype filter hook postrouting priority filter; policy accept;");
    emit(l, &no_origin, "\t\tmeta skuid @users oifname != \"lo\" counter name \"off_loopback\" drop "
         "comment \"bound to a device: not to proxyd\"");
    emit(l, &no_origin, "\t}");

    emit_remapped_chain(cfg, l);
    emit_listener_guard(cfg, l);
    return 0;
}

/* Declarations shared by the skeleton and the full text; the version set only in the full one. */
static void render_declarations(struct lines *l, const uint32_t *version)
{
    emit(l, &no_origin, "\tset users {");
    emit(l, &no_origin, "\t\ttypeof meta skuid");
    emit(l, &no_origin, "\t\tcomment \"sandboxed UIDs (sandboxctl apply, pam_sandbox.so)\"");
    emit(l, &no_origin, "\t}");
    emit(l, &no_origin, "\tmap uidmark {");
    emit(l, &no_origin, "\t\ttypeof meta skuid : meta mark");
    emit(l, &no_origin, "\t\tcomment \"each of users mapped to itself: DNS datagrams carry it to proxyd\"");
    emit(l, &no_origin, "\t}");
    emit(l, &no_origin, "\tset version {");
    emit(l, &no_origin, "\t\ttype mark");
    emit(l, &no_origin, "\t\tcomment \"hash of the rules, checked by pam_sandbox.so at login\"");
    if (version)
        emit(l, &no_origin, "\t\telements = { 0x%08x }", *version);
    emit(l, &no_origin, "\t}");
    emit(l, &no_origin, "\tcounter rejected_tcp { }");
    emit(l, &no_origin, "\tcounter rejected_udp { }");
    emit(l, &no_origin, "\tcounter dropped_other { }");
    emit(l, &no_origin, "\tcounter off_loopback { }");
    emit(l, &no_origin, "\tcounter remapped { }");
    emit(l, &no_origin, "\tcounter squatter { }");
}

static char *join(const struct lines *l, size_t from, size_t to)
{
    size_t len = 1;
    for (size_t i = from; i < to; i++)
        len += strlen(l->v[i].text) + 1;
    char *s = ps_xmalloc(len), *p = s;
    for (size_t i = from; i < to; i++) {
        size_t n = strlen(l->v[i].text);
        memcpy(p, l->v[i].text, n);
        p[n] = '\n';
        p += n + 1;
    }
    *p = '\0';
    return s;
}

int ps_nft_render_full(const struct ps_config *cfg, struct ps_nft_rendered *r, struct ps_diags *diags)
{
    memset(r, 0, sizeof *r);
    char err[512];
    if (ps_nft_proxy_uid(cfg, &r->proxy_uid, err, sizeof err) < 0) {
        ps_diags_add(diags, ps_nft_global_file(cfg), 0, "%s", err);
        return -1;
    }
    struct lines chains = { 0 }, all = { 0 };
    if (render_chains(cfg, r->proxy_uid, &chains, diags) < 0) {
        lines_free(&chains);
        return -1;
    }
    /* The version covers the rules without their comments (so proxyd's UID and ports, and the
     * format itself), not where in the files the settings were written. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < chains.n; i++)
        h = fnv1a(fnv1a(h, chains.v[i].text), "\n");
    r->version = h ? h : 1;

    emit(&all, &no_origin, "table inet pam_sandbox {");
    render_declarations(&all, NULL);
    emit(&all, &no_origin, "\tchain steer { type nat hook output priority -100; policy accept; }");
    emit(&all, &no_origin, "\tchain egress { type filter hook output priority filter; policy accept; }");
    emit(&all, &no_origin, "\tchain leave { type filter hook postrouting priority filter; policy accept; }");
    emit(&all, &no_origin, "\tchain remapped { type filter hook input priority filter; policy accept; }");
    emit(&all, &no_origin, "\tchain refuse_remapped { }");
    emit(&all, &no_origin, "\tchain listeners { type filter hook input priority filter; policy accept; }");
    emit(&all, &no_origin, "\tchain refuse_squatter { }");
    emit(&all, &no_origin, "}");
    size_t skeleton_end = all.n;
    emit(&all, &no_origin, "table inet pam_sandbox {");
    render_declarations(&all, &r->version);
    for (size_t i = 0; i < chains.n; i++)
        emit(&all, &chains.v[i].origin, "%s", chains.v[i].text);
    emit(&all, &no_origin, "}");
    lines_free(&chains);

    r->skeleton = join(&all, 0, skeleton_end);
    r->text = join(&all, skeleton_end, all.n);
    r->n_lines = all.n - skeleton_end;
    r->line_origin = ps_xcalloc(r->n_lines, sizeof *r->line_origin);
    for (size_t i = 0; i < r->n_lines; i++)
        r->line_origin[i] = all.v[skeleton_end + i].origin;
    lines_free(&all);
    return 0;
}

void ps_nft_rendered_free(struct ps_nft_rendered *r)
{
    free(r->text);
    free(r->skeleton);
    free(r->line_origin);
    memset(r, 0, sizeof *r);
}

char *ps_nft_render(const struct ps_config *cfg, struct ps_diags *diags)
{
    struct ps_nft_rendered r;
    if (ps_nft_render_full(cfg, &r, diags) < 0)
        return NULL;
    char *text = r.text;
    r.text = NULL;
    ps_nft_rendered_free(&r);
    return text;
}

int ps_nft_config_version(const struct ps_config *cfg, uint32_t *version, struct ps_diags *diags)
{
    struct ps_nft_rendered r;
    if (ps_nft_render_full(cfg, &r, diags) < 0)
        return -1;
    *version = r.version;
    ps_nft_rendered_free(&r);
    return 0;
}
