/* Policy DNS (see dns_server.h): listeners, identity, the decision, the answer.
 *
 * Decisions, in order (every one is logged with mode "dns"):
 *   client not found or ambiguous, account not sandboxed, class not IN, a name that is not a valid
 *   host name                                     -> REFUSED, nothing leaves the host;
 *   inference.local, when the profile has models or an Allow= rule for one of its ports other
 *   than 443                                      -> synthetic A, never asked upstream;
 *   a name ps_policy_name_decide() allows (Mode=report: also its would-deny names)
 *                                                 -> asked upstream (through the resolver cache):
 *        exists  -> A: synthetic address, AAAA and other types: empty NOERROR;
 *        NXDOMAIN -> NXDOMAIN, no data -> empty NOERROR, upstream failure -> SERVFAIL;
 *   anything else                                 -> REFUSED, nothing leaves the host.
 * Why allowed names are checked upstream before answering: a synthetic answer for a name that does
 * not exist would end a stub resolver's search-list walk at the wrong name (with Allow=*.example.com
 * and "search corp.example.com example.com", "api" would stick at api.corp.example.com), and tools
 * that probe names would see them all exist.  The name is allowed, so asking for it leaks nothing
 * the policy forbids, and the answer warms the cache that the connect path uses next. */
#include "proxyd/dns_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "common/policy.h"
#include "common/resolve.h"
#include "common/values.h"
#include "proxyd/core.h"
#include "proxyd/dns_ident.h"
#include "proxyd/dns_msg.h"
#include "proxyd/resolver.h"
#include "proxyd/synth.h"
#include "proxyd/uid_quota.h"

#ifndef SO_RCVMARK
#define SO_RCVMARK 75               /* Linux 5.19; glibc 2.36 headers lack it */
#endif

#define DNS_SYNTH_TTL 10u         /* short: a synthetic address means nothing outside this host */
#define DNS_MAX_PENDING 1024u     /* queries waiting for upstream; beyond that SERVFAIL at once */
#define DNS_MAX_PENDING_PER_UID 256u   /* of those, one account's: a slow zone cannot starve others */
/* New names one account may give synthetic addresses: the table is shared (65,536 names, reused
 * after 10 minutes), and a wildcard rule over a zone that answers every name would let one
 * account fill it for everyone.  A quarter of it per 10 minutes, refilled smoothly. */
#define DNS_NEW_NAMES_PER_UID 16384u
#define DNS_NEW_NAMES_WINDOW_MS (10u * 60u * 1000u)
#define DNS_TCP_MAX_CONNS 256u
#define DNS_TCP_IDLE_MS 10000u    /* RFC 7766 suggests seconds, not minutes */
#define DNS_TCP_MSG_MS 5000u      /* a message must arrive whole within this of its first byte */
#define DNS_TCP_MAX_PER_UID 32u   /* connections of one account (or of unidentified peers) */
#define DNS_TCP_MAX_INFLIGHT 16u  /* per connection; reading pauses beyond it */
#define DNS_TCP_MAX_OUT 65536u    /* a client that does not read its answers is dropped */
#define DNS_UDP_BATCH 64          /* datagrams per wake-up, so one busy socket cannot starve others */
#define DNS_MAX_ADDRS PS_MAX_RANGED_LISTEN   /* DNSListen= addresses (config_global.c checks) */
#define DNS_MAX_PORTS (DNS_MAX_ADDRS * PS_REDIRECT_PORTS)   /* each address is a port range */
#define DNS_MAX_LISTENERS (DNS_MAX_PORTS * 2)               /* UDP and TCP on each */
#define INFERENCE_NAME "inference.local"

struct tcp_conn;

struct listener {
    int fd;
    int type;                     /* SOCK_DGRAM or SOCK_STREAM */
    bool paused;                  /* TCP, out of descriptors: off the loop until resume_accept() */
    struct sockaddr_storage addr;
    socklen_t len;
};

/* Where an answer goes back to. */
struct origin {
    int type;
    int fd;                       /* UDP: the listener */
    struct sockaddr_storage peer;
    socklen_t peerlen;
    struct sockaddr_storage local; /* UDP: the datagram's destination, our reply's source */
    int ifindex;
    bool have_local;
    struct tcp_conn *conn;        /* TCP */
};

struct pending {
    struct origin o;
    struct pd_client who;         /* holds a conf reference */
    struct dns_query q;
    uint8_t *msg;                 /* copy of the query (the answer echoes its question) */
    size_t len;
    char name[PS_MAX_NAME + 1];   /* normalised */
    const char *decision;         /* "allow" or "would_deny" */
    const char *reason;
    char rule[512];
    struct resolver_query *rq;
    struct pending *prev, *next;
};

struct tcp_conn {
    int fd;
    struct sockaddr_storage peer, orig_dst;
    socklen_t peerlen;
    int ident_errno;              /* 0: uid is known */
    uid_t uid;
    uint8_t in[2 + DNS_MAX_QUERY];
    size_t in_len;
    uint8_t *out;
    size_t out_len, out_cap;
    unsigned inflight;
    bool dead, eof;
    struct pd_timer *idle;        /* the clock of tcp_clock() */
    uint64_t msg_start;           /* when the partial message in `in` began to arrive */
    struct tcp_conn *prev, *next;
};

static struct {
    struct proxyd *d;
    struct listener ls[DNS_MAX_LISTENERS];
    size_t nls;
    struct ps_cidr synth_range;
    struct tcp_conn *conns;
    size_t nconns;
    struct pending *pend;
    size_t npend;
} S;

/* ---------- answers ---------- */

static void tcp_send(struct tcp_conn *c, const uint8_t *buf, size_t len);
static void tcp_settle(struct tcp_conn *c);

static void send_answer(struct origin *o, const uint8_t *buf, size_t len)
{
    if (len == 0) return;
    if (o->type == SOCK_STREAM) { tcp_send(o->conn, buf, len); return; }
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    union { char b[CMSG_SPACE(sizeof(struct in6_pktinfo))]; struct cmsghdr align; } cb;
    struct msghdr mh = { .msg_name = &o->peer, .msg_namelen = o->peerlen, .msg_iov = &iov, .msg_iovlen = 1 };
    memset(&cb, 0, sizeof cb);
    /* Answer from the address the query went to, so that conntrack undoes the redirect and the
     * client sees the answer come from the server it asked. */
    if (o->have_local) {
        struct cmsghdr *cm = (struct cmsghdr *)cb.b;
        mh.msg_control = cb.b;
        if (o->local.ss_family == AF_INET) {
            struct in_pktinfo pi = { .ipi_spec_dst = ((struct sockaddr_in *)&o->local)->sin_addr };
            cm->cmsg_level = IPPROTO_IP; cm->cmsg_type = IP_PKTINFO; cm->cmsg_len = CMSG_LEN(sizeof pi);
            memcpy(CMSG_DATA(cm), &pi, sizeof pi);
            mh.msg_controllen = CMSG_SPACE(sizeof pi);
        } else {
            struct in6_pktinfo pi = { .ipi6_addr = ((struct sockaddr_in6 *)&o->local)->sin6_addr,
                                      .ipi6_ifindex = (unsigned)o->ifindex };
            cm->cmsg_level = IPPROTO_IPV6; cm->cmsg_type = IPV6_PKTINFO; cm->cmsg_len = CMSG_LEN(sizeof pi);
            memcpy(CMSG_DATA(cm), &pi, sizeof pi);
            mh.msg_controllen = CMSG_SPACE(sizeof pi);
        }
    }
    if (sendmsg(o->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN)
        syslog(LOG_DEBUG, "dns: sendmsg: %m");
}

static void log_decision(const struct origin *o, const struct pd_client *who, const char *name,
                         const struct dns_query *q, const char *decision, const char *reason,
                         const char *rule, int rcode, const char *address)
{
    char tbuf[16], extra[128];
    snprintf(extra, sizeof extra, "\"qtype\":\"%s\",\"rcode\":\"%s\",\"transport\":\"%s\"",
             dns_type_name(q->qtype, tbuf), dns_rcode_name(rcode),
             o->type == SOCK_STREAM ? "tcp" : "udp");
    struct pd_log_entry e = {
        .who = who, .host = name, .port = 0, .address = address, .decision = decision,
        .reason = reason, .rule = rule, .binary = NULL, .bytes_up = -1, .bytes_down = -1,
        .duration_ms = -1, .extra_json = extra,
    };
    pd_log_decision(&e);
}

static struct uid_quota *new_names;

/* Answer an allowed name that exists (or inference.local): A gets a synthetic address.  *why is
 * set when the answer is SERVFAIL for a reason of ours. */
static int answer_exists(struct origin *o, const struct pending *p, const uint8_t *msg,
                         char *addrtxt, size_t addrlen, const char **why)
{
    uint8_t out[DNS_HEADER_LEN + 512];
    struct in_addr a;
    size_t n;
    int rcode = DNS_RCODE_NOERROR;
    addrtxt[0] = '\0';
    if (!new_names)
        new_names = uid_quota_new(DNS_NEW_NAMES_PER_UID, DNS_NEW_NAMES_WINDOW_MS);
    if (p->q.qtype == DNS_TYPE_A && !synth_has_name(S.d->synth, p->who.uid, p->name) &&
        (!new_names || !uid_quota_take(new_names, p->who.uid, pd_now_ms()))) {
        *why = "synthetic_quota";
        rcode = DNS_RCODE_SERVFAIL;
        n = dns_build_answer(&p->q, msg, rcode, NULL, 0, out, sizeof out);
    } else if (p->q.qtype == DNS_TYPE_A) {
        int err = synth_assign(S.d->synth, p->who.uid, p->name, &a);
        if (err == SYNTH_SHARE_FULL) {
            /* this account holds its share of the range: its own problem, nobody else's */
            *why = "synthetic_share_exhausted";
            rcode = DNS_RCODE_SERVFAIL;
            n = dns_build_answer(&p->q, msg, rcode, NULL, 0, out, sizeof out);
        } else if (err < 0) {
            *why = "synthetic_range_exhausted";
            syslog(LOG_WARNING, "dns: synthetic range exhausted, answering SERVFAIL for %s", p->name);
            rcode = DNS_RCODE_SERVFAIL;
            n = dns_build_answer(&p->q, msg, rcode, NULL, 0, out, sizeof out);
        } else {
            inet_ntop(AF_INET, &a, addrtxt, (socklen_t)addrlen);
            n = dns_build_answer(&p->q, msg, rcode, &a, DNS_SYNTH_TTL, out, sizeof out);
        }
    } else {
        n = dns_build_answer(&p->q, msg, rcode, NULL, 0, out, sizeof out);
    }
    send_answer(o, out, n);
    return rcode;
}

static unsigned pending_of(uid_t uid)
{
    unsigned n = 0;
    for (const struct pending *p = S.pend; p; p = p->next)
        n += p->who.uid == uid;
    return n;
}

static void pending_free(struct pending *p)
{
    if (p->prev) p->prev->next = p->next; else S.pend = p->next;
    if (p->next) p->next->prev = p->prev;
    S.npend--;
    if (p->o.conn) p->o.conn->inflight--;
    pd_conf_unref(p->who.conf);
    free(p->msg);
    free(p);
}

static void on_resolved(void *arg, int status, const struct sockaddr_storage *addrs, size_t n,
                        unsigned ttl)
{
    struct pending *p = arg;
    char addr[INET_ADDRSTRLEN] = "";
    int rcode;
    const char *why = NULL;
    uint8_t out[DNS_HEADER_LEN + 512];
    (void)addrs; (void)n; (void)ttl;
    p->rq = NULL;
    if (status == 0) {
        rcode = answer_exists(&p->o, p, p->msg, addr, sizeof addr, &why);
    } else {
        rcode = status == RESOLVER_ENOTFOUND ? DNS_RCODE_NXDOMAIN
              : status == RESOLVER_ENODATA ? DNS_RCODE_NOERROR : DNS_RCODE_SERVFAIL;
        send_answer(&p->o, out, dns_build_answer(&p->q, p->msg, rcode, NULL, 0, out, sizeof out));
    }
    log_decision(&p->o, &p->who, p->name, &p->q, p->decision, why ? why : p->reason, p->rule, rcode,
                 addr[0] ? addr : NULL);
    struct tcp_conn *c = p->o.conn;
    pending_free(p);
    if (c) tcp_settle(c);
}

/* inference.local: a profile with models gets it (port 443 is the inference hand-off); otherwise
 * only an Allow= rule for one of its other ports (§5.4: they go through normal policy) lets a client
 * have the name.  The matcher is asked on the ports of each Allow= rule, never 443. */
static bool inference_allowed(const struct ps_profile *prof, char *where, size_t len)
{
    struct ps_decision dec;
    if (ps_profile_uses_inference(prof)) {
        snprintf(where, len, "default");
        return true;
    }
    for (size_t i = 0; i < prof->n_rules; i++) {
        const struct ps_rule *r = &prof->rules[i];
        if (r->action != PS_RULE_ALLOW) continue;
        for (size_t k = 0; k < r->n_ports; k++) {
            uint16_t port = r->ports[k].lo != 443 ? r->ports[k].lo
                          : r->ports[k].hi > 443 ? 444 : 0;
            if (!port) continue;
            ps_policy_decide(prof, INFERENCE_NAME, port, NULL, &dec);
            if (dec.verdict == PS_ALLOW && !dec.would_deny) {
                snprintf(where, len, "%s", dec.where);
                return true;
            }
        }
    }
    return false;
}

/* uid -> account and profile, remembered for a few seconds: a build asks hundreds of names a
 * second, and each NSS lookup reads passwd and group.  Emptied on every reload (profiles point into
 * the config snapshot), and an entry is used only with the snapshot it was made from. */
#define ID_CACHE 64
#define ID_CACHE_MS 5000u
static struct id_cache_entry {
    bool used;
    uid_t uid;
    const struct pd_conf *conf;
    const struct ps_profile *profile;
    char user[sizeof ((struct pd_client *)0)->user];
    uint64_t expires;
} id_cache[ID_CACHE];

/* Fill who from a uid (or from the identity error), holding a reference to the current conf. */
static void identify(struct pd_client *who, int ident_errno, uid_t uid)
{
    static struct ps_identity id;       /* large (group lists): not on the stack */
    memset(who, 0, sizeof *who);
    who->conf = pd_conf_ref(S.d->conf);
    who->uid = (uid_t)-1;
    who->mode = PD_MODE_DNS;
    if (ident_errno) return;
    who->uid = uid;
    uint64_t now = pd_now_ms();
    struct id_cache_entry *ce = &id_cache[uid % ID_CACHE];
    if (ce->used && ce->uid == uid && ce->conf == who->conf && ce->expires > now) {
        memcpy(who->user, ce->user, sizeof who->user);
        who->profile = ce->profile;
        return;
    }
    memset(&id, 0, sizeof id);
    if (ps_identity_lookup_uid(uid, &id) < 0) return;       /* not cached: may appear soon */
    size_t ul = strnlen(id.name, sizeof who->user - 1);
    memcpy(who->user, id.name, ul);
    who->user[ul] = '\0';
    who->profile = ps_resolve_profile(who->conf->cfg, &id, NULL, 0);
    ps_identity_free(&id);
    *ce = (struct id_cache_entry){ .used = true, .uid = uid, .conf = who->conf,
                                   .profile = who->profile, .expires = now + ID_CACHE_MS };
    memcpy(ce->user, who->user, sizeof ce->user);
}

static void handle_query(const uint8_t *msg, size_t len, struct origin *o, int ident_errno, uid_t uid)
{
    struct dns_query q;
    uint8_t out[DNS_HEADER_LEN + 512];
    enum dns_parse_status st = dns_parse_query(msg, len, &q);
    if (st == DNS_PARSE_DROP) return;
    if (st == DNS_PARSE_FORMERR || st == DNS_PARSE_NOTIMP) {
        send_answer(o, out, dns_build_error(msg, st == DNS_PARSE_FORMERR ? DNS_RCODE_FORMERR
                                                                          : DNS_RCODE_NOTIMP,
                                            out, sizeof out));
        return;
    }
    if (st == DNS_PARSE_BADVERS) {
        send_answer(o, out, dns_build_badvers(&q, msg, out, sizeof out));
        return;
    }

    struct pd_client who;
    identify(&who, ident_errno, uid);
    who.peer = o->peer;
    if (o->type == SOCK_STREAM) who.orig_dst = o->conn->orig_dst;
    else if (o->have_local) who.orig_dst = o->local;

    char name[PS_MAX_NAME + 1] = "";
    const char *reason = NULL;
    char rule[512] = "default";
    bool valid = q.name_plain && q.name[0] && ps_name_normalize(q.name, name) == 0;
    if (ident_errno)
        reason = ident_errno == ENOTUNIQ ? "ambiguous_client" : "unknown_client";
    else if (!who.profile) reason = "not_sandboxed";
    else if (q.qclass != DNS_CLASS_IN) reason = "class_not_in";
    else if (!valid) reason = "invalid_name";

    const char *logname = valid ? name : q.name;
    if (reason) {
        send_answer(o, out, dns_build_answer(&q, msg, DNS_RCODE_REFUSED, NULL, 0, out, sizeof out));
        log_decision(o, &who, logname, &q, "deny", reason, rule, DNS_RCODE_REFUSED, NULL);
        pd_conf_unref(who.conf);
        return;
    }

    const struct ps_profile *prof = who.profile;
    const char *decision = "allow";
    bool inference = strcmp(name, INFERENCE_NAME) == 0;
    bool allowed;
    struct ps_decision dec;
    if (inference) {
        /* It exists only here: answered locally, never asked upstream. */
        allowed = inference_allowed(prof, rule, sizeof rule);
        reason = allowed ? "inference" : "inference_not_permitted";
        if (!allowed && prof->mode == PS_MODE_REPORT) { allowed = true; decision = "would_deny"; }
    } else {
        ps_policy_name_decide(prof, name, &dec);
        allowed = dec.verdict == PS_ALLOW;
        reason = dec.reason ? dec.reason : (allowed ? "allow_rule" : "no_matching_rule");
        snprintf(rule, sizeof rule, "%s", dec.where);
        if (dec.would_deny) decision = "would_deny";   /* Mode=report: log, answer as allowed */
    }
    if (!allowed) {
        send_answer(o, out, dns_build_answer(&q, msg, DNS_RCODE_REFUSED, NULL, 0, out, sizeof out));
        log_decision(o, &who, name, &q, "deny", reason, rule, DNS_RCODE_REFUSED, NULL);
        pd_conf_unref(who.conf);
        return;
    }

    struct pending *p = calloc(1, sizeof *p);
    if (p) p->msg = malloc(len);
    if (!p || !p->msg ||
        (!inference && (S.npend >= DNS_MAX_PENDING || pending_of(who.uid) >= DNS_MAX_PENDING_PER_UID))) {
        if (p) free(p->msg);
        free(p);
        send_answer(o, out, dns_build_answer(&q, msg, DNS_RCODE_SERVFAIL, NULL, 0, out, sizeof out));
        log_decision(o, &who, name, &q, decision, "dns_overload", rule, DNS_RCODE_SERVFAIL, NULL);
        pd_conf_unref(who.conf);
        return;
    }
    memcpy(p->msg, msg, len);
    p->len = len;
    p->o = *o;
    p->who = who;                                /* takes the conf reference */
    p->q = q;
    memcpy(p->name, name, sizeof name);
    p->decision = decision;
    p->reason = reason;
    snprintf(p->rule, sizeof p->rule, "%s", rule);
    p->next = S.pend;
    if (S.pend) S.pend->prev = p;
    S.pend = p;
    S.npend++;
    if (o->conn) o->conn->inflight++;

    if (inference) {                             /* never asked upstream: it exists only here */
        char addr[INET_ADDRSTRLEN];
        const char *why = NULL;
        int rcode = answer_exists(o, p, msg, addr, sizeof addr, &why);
        log_decision(o, &p->who, name, &q, decision, why ? why : reason, rule, rcode, addr[0] ? addr : NULL);
        pending_free(p);
        return;
    }
    p->rq = resolver_lookup(S.d->resolver, name, on_resolved, p);
    if (!p->rq) {
        send_answer(o, out, dns_build_answer(&q, msg, DNS_RCODE_SERVFAIL, NULL, 0, out, sizeof out));
        log_decision(o, &p->who, name, &q, decision, "resolver_error", rule, DNS_RCODE_SERVFAIL, NULL);
        pending_free(p);
    }
}

/* Drop queries that would answer through fd or conn (closing listener or connection). */
static void cancel_pending(int fd, const struct tcp_conn *c)
{
    for (struct pending *p = S.pend, *next; p; p = next) {
        next = p->next;
        if ((c && p->o.conn == c) || (!c && fd >= 0 && p->o.type == SOCK_DGRAM && p->o.fd == fd)) {
            if (p->rq) resolver_cancel(S.d->resolver, p->rq);
            pending_free(p);
        }
    }
}

/* ---------- UDP ---------- */

static void on_udp(struct pd_loop *l, int fd, uint32_t events, void *arg)
{
    (void)l; (void)events; (void)arg;
    for (int i = 0; i < DNS_UDP_BATCH; i++) {
        uint8_t buf[DNS_MAX_QUERY + 1];
        union { char b[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo)) +
                       CMSG_SPACE(sizeof(uint32_t))];
                struct cmsghdr align; } cb;
        uint32_t mark = 0;
        struct origin o;
        memset(&o, 0, sizeof o);
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
        struct msghdr mh = { .msg_name = &o.peer, .msg_namelen = sizeof o.peer, .msg_iov = &iov,
                             .msg_iovlen = 1, .msg_control = cb.b, .msg_controllen = sizeof cb.b };
        ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                syslog(LOG_DEBUG, "dns: recvmsg: %m");
            return;
        }
        if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) continue;   /* oversize: dropped */
        o.type = SOCK_DGRAM;
        o.fd = fd;
        o.peerlen = mh.msg_namelen;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
            if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
                struct in_pktinfo pi;
                memcpy(&pi, CMSG_DATA(cm), sizeof pi);
                struct sockaddr_in *sin = (struct sockaddr_in *)&o.local;
                sin->sin_family = AF_INET;
                sin->sin_addr = pi.ipi_addr;
                o.have_local = true;
            } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
                struct in6_pktinfo pi;
                memcpy(&pi, CMSG_DATA(cm), sizeof pi);
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&o.local;
                sin6->sin6_family = AF_INET6;
                sin6->sin6_addr = pi.ipi6_addr;
                o.ifindex = (int)pi.ipi6_ifindex;
                o.have_local = true;
            } else if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_MARK &&
                       cm->cmsg_len >= CMSG_LEN(sizeof mark)) {
                memcpy(&mark, CMSG_DATA(cm), sizeof mark);   /* the sender's UID (nft_render.c) */
            }
        }
        /* A parse first, so that junk costs no netlink round trip. */
        struct dns_query q;
        if (dns_parse_query(buf, (size_t)n, &q) != DNS_PARSE_OK) {
            handle_query(buf, (size_t)n, &o, ENOENT, 0);
            continue;
        }
        uid_t uid = (uid_t)-1;
        /* Only the ruleset's mark is a UID, and it marks datagrams sent on this host: from any
         * other source a mark is someone else's (a restored ct mark, policy routing) */
        if (mark && ps_addr_classify((const struct sockaddr *)&o.peer, NULL) != PS_ADDR_LOOPBACK)
            mark = 0;
        int ident_errno = dns_ident_udp(&o.peer, mark, &uid) == 0 ? 0 : (errno ? errno : ENOENT);
        handle_query(buf, (size_t)n, &o, ident_errno, uid);
    }
}

/* ---------- TCP ---------- */

static void tcp_close(struct tcp_conn *c)
{
    cancel_pending(-1, c);
    if (c->idle) pd_timer_cancel(S.d->loop, c->idle);
    pd_loop_del(S.d->loop, c->fd);
    close(c->fd);
    if (c->prev) c->prev->next = c->next; else S.conns = c->next;
    if (c->next) c->next->prev = c->prev;
    S.nconns--;
    free(c->out);
    free(c);
}

static void tcp_flush(struct tcp_conn *c)
{
    while (c->out_len) {
        ssize_t n = send(c->fd, c->out, c->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            c->dead = true;
            return;
        }
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
}

static void tcp_send(struct tcp_conn *c, const uint8_t *buf, size_t len)
{
    if (c->dead) return;
    if (c->out_len + len + 2 > DNS_TCP_MAX_OUT) { c->dead = true; return; }
    if (c->out_len + len + 2 > c->out_cap) {
        size_t cap = (c->out_len + len + 2) * 2;
        uint8_t *nb = realloc(c->out, cap);
        if (!nb) { c->dead = true; return; }
        c->out = nb;
        c->out_cap = cap;
    }
    c->out[c->out_len] = (uint8_t)(len >> 8);
    c->out[c->out_len + 1] = (uint8_t)len;
    memcpy(c->out + c->out_len + 2, buf, len);
    c->out_len += len + 2;
    tcp_flush(c);
}

static void on_tcp_idle(struct pd_loop *l, void *arg)
{
    struct tcp_conn *c = arg;
    (void)l;
    c->idle = NULL;
    tcp_close(c);
}

static void tcp_parse(struct tcp_conn *c)
{
    while (!c->dead && c->in_len >= 2 && c->inflight < DNS_TCP_MAX_INFLIGHT) {
        size_t mlen = (size_t)c->in[0] << 8 | c->in[1];
        if (mlen < DNS_HEADER_LEN || mlen > DNS_MAX_QUERY) { c->dead = true; return; }
        if (c->in_len < 2 + mlen) return;
        struct origin o;
        memset(&o, 0, sizeof o);
        o.type = SOCK_STREAM;
        o.fd = c->fd;
        o.peer = c->peer;
        o.peerlen = c->peerlen;
        o.conn = c;
        handle_query(c->in + 2, mlen, &o, c->ident_errno, c->uid);
        memmove(c->in, c->in + 2 + mlen, c->in_len - 2 - mlen);
        c->in_len -= 2 + mlen;
    }
}

/* After anything happened on c: close it, or set what the loop should wait for. */
/* A connection's one clock.  While proxyd owes it answers, none runs (a slow upstream, or the
 * in-flight limit holding later queries back, is not the client's doing).  Otherwise a message
 * that has begun must be whole within DNS_TCP_MSG_MS of its first byte (bytes trickled in do not
 * restart it), and an idle connection is closed after DNS_TCP_IDLE_MS. */
static void tcp_clock(struct tcp_conn *c)
{
    if (c->idle) pd_timer_cancel(S.d->loop, c->idle);
    c->idle = NULL;
    if (c->inflight > 0)
        return;
    uint64_t ms = DNS_TCP_IDLE_MS;
    if (c->in_len > 0) {
        uint64_t age = pd_now_ms() - c->msg_start;
        ms = age >= DNS_TCP_MSG_MS ? 1 : DNS_TCP_MSG_MS - age;
    }
    c->idle = pd_timer_add(S.d->loop, ms, on_tcp_idle, c);
}

static void tcp_settle(struct tcp_conn *c)
{
    size_t before = c->in_len;
    if (!c->dead) tcp_parse(c);
    if (c->in_len > 0 && c->in_len < before)
        c->msg_start = pd_now_ms();               /* messages taken: the next one begins now */
    /* A client may half-close after its queries (RFC 7766 allows it): answer, then close. */
    if (c->dead || (c->eof && c->inflight == 0 && c->out_len == 0)) { tcp_close(c); return; }
    tcp_clock(c);
    bool want_read = !c->eof && c->inflight < DNS_TCP_MAX_INFLIGHT && c->in_len < sizeof c->in;
    uint32_t ev = (want_read ? EPOLLIN : 0u) | (c->out_len ? EPOLLOUT : 0u);
    pd_loop_mod(S.d->loop, c->fd, ev);
}

static void on_tcp_conn(struct pd_loop *l, int fd, uint32_t events, void *arg)
{
    struct tcp_conn *c = arg;
    (void)fd;
    /* HUP without IN: both directions are gone (reset), nothing more can be delivered. */
    if ((events & EPOLLERR) || ((events & EPOLLHUP) && !(events & EPOLLIN))) { tcp_close(c); return; }
    if (events & EPOLLOUT) tcp_flush(c);
    if ((events & EPOLLIN) && !c->eof && c->in_len < sizeof c->in) {
        ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, MSG_DONTWAIT);
        if (n == 0) c->eof = true;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { tcp_close(c); return; }
        if (n > 0) {
            if (c->in_len == 0)
                c->msg_start = pd_now_ms();           /* a message's clock starts at its first byte */
            c->in_len += (size_t)n;
        }
    }
    tcp_settle(c);
}

static struct pd_timer *accept_resume;
static void on_tcp_accept(struct pd_loop *l, int lfd, uint32_t events, void *arg);

/* Out of descriptors: the pending connection stays queued, so a level-triggered listener would be
 * reported again at once, forever.  Every paused listener goes back on the loop 100 ms later. */
static void resume_accept(struct pd_loop *l, void *arg)
{
    (void)arg;
    accept_resume = NULL;
    for (size_t i = 0; i < S.nls; i++)
        if (S.ls[i].paused) {
            if (pd_loop_add(l, S.ls[i].fd, EPOLLIN, on_tcp_accept, NULL) == 0) {
                S.ls[i].paused = false;
            } else if (!accept_resume) {
                syslog(LOG_ERR, "dns: listener: epoll: %m (retrying in 100 ms)");
                accept_resume = pd_timer_add(l, 100, resume_accept, NULL);
            }
        }
}

static void pause_accept(struct pd_loop *l, int lfd)
{
    for (size_t i = 0; i < S.nls; i++)
        if (S.ls[i].fd == lfd && S.ls[i].type == SOCK_STREAM && !S.ls[i].paused) {
            syslog(LOG_ERR, "dns: accept: %m (pausing this listener for 100 ms)");
            pd_loop_del(l, lfd);
            S.ls[i].paused = true;
        }
    if (!accept_resume)
        accept_resume = pd_timer_add(l, 100, resume_accept, NULL);
}

static unsigned conns_of(int ident_errno, uid_t uid)
{
    unsigned n = 0;
    for (const struct tcp_conn *c = S.conns; c; c = c->next)
        if ((ident_errno == 0) == (c->ident_errno == 0) && (ident_errno != 0 || c->uid == uid))
            n++;
    return n;
}

static void on_tcp_accept(struct pd_loop *l, int lfd, uint32_t events, void *arg)
{
    (void)events; (void)arg;
    for (int i = 0; i < 16; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                pause_accept(l, lfd);
            return;
        }
        if (S.nconns >= DNS_TCP_MAX_CONNS) { close(fd); continue; }
        struct tcp_conn *c = calloc(1, sizeof *c);
        if (!c) { close(fd); continue; }
        c->fd = fd;
        c->peer = peer;
        c->peerlen = plen;
        /* The client's socket exists for as long as the connection does: identify it once. */
        c->ident_errno = dns_ident_tcp(fd, &peer, &c->orig_dst, &c->uid) == 0 ? 0 : (errno ? errno : ENOENT);
        /* One account cannot take every connection slot (nor can peers nobody owns). */
        if (conns_of(c->ident_errno, c->uid) >= DNS_TCP_MAX_PER_UID) { close(fd); free(c); continue; }
        if (pd_loop_add(l, fd, EPOLLIN, on_tcp_conn, c) < 0) { close(fd); free(c); continue; }
        c->idle = pd_timer_add(l, DNS_TCP_IDLE_MS, on_tcp_idle, c);
        c->next = S.conns;
        if (S.conns) S.conns->prev = c;
        S.conns = c;
        S.nconns++;
    }
}

/* ---------- listeners ---------- */

static int open_listener(const struct ps_sockaddr *a, int type, struct listener *out)
{
    char txt[INET6_ADDRSTRLEN + 8] = "?";
    int fam = a->ss.ss_family, one = 1;
    int fd = socket(fam, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) goto fail;
    if (fam == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) goto fail;
    if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) goto fail;
    if (type == SOCK_DGRAM) {
        if (fam == AF_INET && setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) < 0) goto fail;
        if (fam == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) < 0) goto fail;
        /* each datagram's mark: its sender's UID when the ruleset is loaded (dns_ident.h);
         * a kernel without SO_RCVMARK (before 5.19) leaves identity to the socket table */
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVMARK, &one, sizeof one);
    }
    {
        char what[INET6_ADDRSTRLEN + 32];
        const void *ip = fam == AF_INET ? (const void *)&((const struct sockaddr_in *)&a->ss)->sin_addr
                                        : (const void *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
        inet_ntop(fam, ip, txt, sizeof txt);
        snprintf(what, sizeof what, "DNS %s port %u/%s", txt,
                 ntohs(fam == AF_INET ? ((const struct sockaddr_in *)&a->ss)->sin_port
                                      : ((const struct sockaddr_in6 *)&a->ss)->sin6_port),
                 type == SOCK_DGRAM ? "udp" : "tcp");
        /* At start, as root, this works.  A listener a reload adds is opened unprivileged: it
         * serves, but with the ruleset loaded nothing steered reaches it until proxyd is
         * restarted (logged; like User= and the TCP listeners, which change only on restart). */
        (void)pd_mark_listener(fd, what);
    }
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) goto fail;
    if (type == SOCK_STREAM && listen(fd, 128) < 0) goto fail;
    if (pd_loop_add(S.d->loop, fd, EPOLLIN, type == SOCK_DGRAM ? on_udp : on_tcp_accept, NULL) < 0)
        goto fail;
    out->fd = fd;
    out->type = type;
    out->paused = false;
    out->addr = a->ss;
    out->len = a->len;
    return 0;
fail:;
    int e = errno;
    if (fam == AF_INET) inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->ss)->sin_addr, txt, sizeof txt);
    else inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, txt, sizeof txt);
    syslog(LOG_ERR, "dns: cannot listen on %s port %u (%s): %s", txt,
           ntohs(fam == AF_INET ? ((const struct sockaddr_in *)&a->ss)->sin_port
                                : ((const struct sockaddr_in6 *)&a->ss)->sin6_port),
           type == SOCK_DGRAM ? "udp" : "tcp", strerror(e));
    if (fd >= 0) close(fd);
    errno = e;
    return -1;
}

static void close_listeners(struct listener *ls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ls[i].type == SOCK_DGRAM) cancel_pending(ls[i].fd, NULL);
        pd_loop_del(S.d->loop, ls[i].fd);
        close(ls[i].fd);
    }
}

/* Every port proxyd's DNS listens on: each DNSListen= address is the first of PS_REDIRECT_PORTS
 * ports (the why is there).  Returns how many, or -1 (logged) for too many addresses. */
static int listen_ports(const struct ps_config *cfg, struct ps_sockaddr *out)
{
    const struct ps_global *g = &cfg->global;
    if (g->n_dns_listen > DNS_MAX_ADDRS) {
        syslog(LOG_ERR, "dns: too many DNSListen= addresses (at most %d)", DNS_MAX_ADDRS);
        return -1;
    }
    int n = 0;
    for (size_t i = 0; i < g->n_dns_listen; i++)
        for (unsigned k = 0; k < PS_REDIRECT_PORTS; k++) {
            out[n] = g->dns_listen[i];
            ps_sockaddr_set_port(&out[n], (uint16_t)(ps_sockaddr_port(&g->dns_listen[i]) + k));
            n++;
        }
    return n;
}

static struct ps_sockaddr want[DNS_MAX_PORTS];   /* listen_ports() of the config at hand */

/* Bind every DNS port, UDP and TCP, into ls; all or nothing. */
static int open_all(const struct ps_config *cfg, struct listener *ls, size_t *n)
{
    *n = 0;
    int np = listen_ports(cfg, want);
    if (np < 0)
        return -1;
    for (int i = 0; i < np; i++)
        for (int t = 0; t < 2; t++) {
            if (open_listener(&want[i], t ? SOCK_STREAM : SOCK_DGRAM, &ls[*n]) < 0) {
                close_listeners(ls, *n);
                *n = 0;
                return -1;
            }
            (*n)++;
        }
    for (size_t i = 0; i < cfg->global.n_dns_listen; i++)
        pd_log_listen_range(&cfg->global.dns_listen[i], "dns, udp and tcp");
    return 0;
}

static bool same_listen(const struct ps_sockaddr *ports, int np)
{
    if ((size_t)np * 2 != S.nls) return false;
    for (int i = 0; i < np; i++)
        if (ports[i].len != S.ls[2 * i].len || memcmp(&ports[i].ss, &S.ls[2 * i].addr, ports[i].len) != 0)
            return false;
    return true;
}

int dns_server_start(struct proxyd *d, const struct ps_config *cfg)
{
    S.d = d;
    S.synth_range = cfg->global.synthetic_range;
    if (!d->synth) {
        d->synth = synth_new(&cfg->global.synthetic_range);
        if (!d->synth) { syslog(LOG_ERR, "dns: SyntheticRange= must be an IPv4 network"); return -1; }
    }
    if (!d->resolver) {
        d->resolver = resolver_new(d->loop, cfg);
        if (!d->resolver) { syslog(LOG_ERR, "dns: cannot start the upstream resolver"); return -1; }
    }
    return open_all(cfg, S.ls, &S.nls);
}

int dns_server_reload(struct proxyd *d, const struct ps_config *cfg)
{
    S.d = d;
    memset(id_cache, 0, sizeof id_cache);
    if (d->resolver && resolver_reconfigure(d->resolver, cfg) < 0)
        syslog(LOG_WARNING, "dns: keeping the previous upstream servers");
    if (memcmp(&S.synth_range, &cfg->global.synthetic_range, sizeof S.synth_range) != 0) {
        struct synth *s = synth_new(&cfg->global.synthetic_range);
        if (s) {
            synth_free(d->synth);
            d->synth = s;
            S.synth_range = cfg->global.synthetic_range;
        }
    }
    int np = listen_ports(cfg, want);
    if (np < 0) return -1;
    if (same_listen(want, np)) return 0;
    /* Keep the sockets of ports that stay (no gap, no EADDRINUSE against ourselves), open the new
     * ones, and only then close the ones that went: a bad new address keeps the old set. */
    static struct listener fresh[DNS_MAX_LISTENERS];
    bool kept[DNS_MAX_LISTENERS] = { false }, opened[DNS_MAX_LISTENERS] = { false };
    size_t n = 0;
    for (int i = 0; i < np; i++)
        for (int t = 0; t < 2; t++) {
            int type = t ? SOCK_STREAM : SOCK_DGRAM;
            size_t j;
            for (j = 0; j < S.nls; j++)
                if (!kept[j] && S.ls[j].type == type && S.ls[j].len == want[i].len &&
                    memcmp(&S.ls[j].addr, &want[i].ss, S.ls[j].len) == 0)
                    break;
            if (j < S.nls) { kept[j] = true; fresh[n++] = S.ls[j]; continue; }
            if (open_listener(&want[i], type, &fresh[n]) < 0) {
                for (size_t k = 0; k < n; k++)
                    if (opened[k]) close_listeners(&fresh[k], 1);
                return -1;
            }
            opened[n++] = true;
        }
    for (size_t j = 0; j < S.nls; j++)
        if (!kept[j]) close_listeners(&S.ls[j], 1);
    memcpy(S.ls, fresh, n * sizeof *fresh);
    S.nls = n;
    return 0;
}

void dns_server_stop(void)
{
    if (!S.d) return;
    if (accept_resume) pd_timer_cancel(S.d->loop, accept_resume);
    accept_resume = NULL;
    while (S.conns) tcp_close(S.conns);
    close_listeners(S.ls, S.nls);
    S.nls = 0;
    while (S.pend) {
        if (S.pend->rq) resolver_cancel(S.d->resolver, S.pend->rq);
        pending_free(S.pend);
    }
}
