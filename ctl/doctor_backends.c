/* sandboxctl doctor: who holds the port of each http:// inference backend on loopback.  proxyd
 * sends a request (and the backend's key) over plain http only to a connection whose other end
 * belongs to root, to proxyd's User= or to BackendUser= (proxyd/inference_owner.c); a backend run
 * by any other account gets every request refused as backend_owner_mismatch.  The doctor says so
 * before the first user does: a local backend run as its own service account needs BackendUser=,
 * and anything else on the port is a squatter.  Live by nature: read from this network namespace's
 * socket table. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "common/policy.h"
#include "common/sockdiag.h"
#include "ctl/doctor_int.h"

struct owner_scan {
    struct doctor *d;
    const struct ps_backend *be;
    int family;
    uint8_t addr[16];                  /* the backend's address, in family's length */
    uid_t proxy_uid;
    bool has_proxy_uid;
    bool v4_listener;                  /* an IPv4 listener takes the port (it wins over [::]) */
};

static void check_listener(void *arg, const struct ps_bound_socket *s)
{
    static const uint8_t zero[16];
    struct owner_scan *sc = arg;
    if (s->proto != IPPROTO_TCP || s->port != sc->be->url_port)
        return;
    if (s->family == sc->family) {
        size_t n = sc->family == AF_INET ? 4 : 16;
        if (memcmp(s->addr, sc->addr, n) != 0 && memcmp(s->addr, zero, n) != 0)
            return;
    } else if (s->family == AF_INET6 && sc->family == AF_INET) {
        /* a dual-stack listener takes IPv4 connections too: on [::], or on ::ffff:a.b.c.d */
        static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        bool on_mapped = memcmp(s->addr, mapped, 12) == 0 && memcmp(s->addr + 12, sc->addr, 4) == 0;
        if (!on_mapped && memcmp(s->addr, zero, 16) != 0)
            return;
    } else {
        return;
    }
    if (s->family == AF_INET)
        sc->v4_listener = true;
    if (s->uid == 0 || (sc->has_proxy_uid && s->uid == sc->proxy_uid) ||
        (sc->be->has_owner && s->uid == sc->be->owner_uid))
        return;
    const struct passwd *pw = getpwuid(s->uid);
    doc_finding(sc->d, sc->be->file, sc->be->url_line,
                "%s is held by uid %u (%s), which is not root, sandbox-proxyd's user or "
                "BackendUser=: sandbox-proxyd refuses every request to it "
                "(backend_owner_mismatch); fix: if that is the backend, set BackendUser=%s; "
                "otherwise stop what holds the port (ss -ltnpe)",
                sc->be->url, (unsigned)s->uid, pw ? pw->pw_name : "no such account",
                pw ? pw->pw_name : "UID");
}

void doc_check_backend_owners(struct doctor *d)
{
    if (!d->cfg)                       /* an unloadable config is its own finding */
        return;
    const struct ps_global *g = &d->cfg->global;
    const struct passwd *pw = g->proxy_user ? getpwnam(g->proxy_user) : NULL;
    for (size_t i = 0; i < d->cfg->n_backends; i++) {
        const struct ps_backend *be = &d->cfg->backends[i];
        if (be->tls)
            continue;                  /* identified by its certificate */
        struct owner_scan sc = { .d = d, .be = be, .has_proxy_uid = pw != NULL,
                                 .proxy_uid = pw ? pw->pw_uid : 0 };
        const char *host = strcmp(be->url_host, "localhost") == 0 ? "127.0.0.1" : be->url_host;
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        if (inet_pton(AF_INET, host, sc.addr) == 1) {
            sc.family = AF_INET;
            memcpy(&((struct sockaddr_in *)&ss)->sin_addr, sc.addr, 4);
        } else if (inet_pton(AF_INET6, host, sc.addr) == 1) {
            sc.family = AF_INET6;
            memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, sc.addr, 16);
        } else {
            continue;
        }
        ss.ss_family = (sa_family_t)sc.family;
        /* Loopback only: another of this host's own addresses could be told from a remote one
         * only by reading the interfaces, and proxyd checks those connections anyway. */
        if (ps_addr_classify((struct sockaddr *)&ss, NULL) != PS_ADDR_LOOPBACK)
            continue;
        /* An IPv4 connection goes to an IPv4 listener when there is one, else to a dual-stack
         * IPv6 one (a [::] listener that is IPv6-only does not count then, but cannot be told
         * apart here: it is named too). */
        if (ps_sockdiag_dump_bound(sc.family, IPPROTO_TCP, check_listener, &sc) < 0 ||
            (sc.family == AF_INET && !sc.v4_listener &&
             ps_sockdiag_dump_bound(AF_INET6, IPPROTO_TCP, check_listener, &sc) < 0))
            fprintf(stderr, "sandboxctl: cannot list TCP listeners: %m (%s not checked)\n", be->url);
    }
}
