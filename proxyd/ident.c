/* Who is behind a connection (DESIGN.md §5.2): the kernel's owner of the exact 4-tuple via
 * sock_diag (unforgeable), then UID -> account -> profile.  Not found, or not sandboxed: the
 * caller denies.  Also the per-account connection cap (429).
 *
 * UID -> profile needs NSS (passwd, group), which costs far more than the sock_diag lookup, so the
 * answer is cached per UID for a few seconds; the cache is emptied on every reload. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <netinet/in.h>
#include "proxyd/core.h"
#include "common/resolve.h"
#include "common/sockdiag.h"
#include "common/util.h"

#define ID_CACHE 512
#define ID_CACHE_MS 5000u

struct id_entry {
    bool used;
    uid_t uid;
    const struct ps_config *cfg;
    const struct ps_profile *profile;
    char user[64];
    uint64_t expires;
};
static struct id_entry id_cache[ID_CACHE];

void pd_ident_flush(void)
{
    memset(id_cache, 0, sizeof id_cache);
}

static void profile_of(uid_t uid, const struct ps_config *cfg, const struct ps_profile **prof,
                       char *user, size_t userlen)
{
    struct id_entry *e = &id_cache[uid % ID_CACHE];
    uint64_t now = pd_now_ms();
    if (e->used && e->uid == uid && e->cfg == cfg && e->expires > now) {
        *prof = e->profile;
        snprintf(user, userlen, "%s", e->user);
        return;
    }
    struct ps_identity *id = ps_xcalloc(1, sizeof(*id));   /* large: keep it off the stack */
    *prof = NULL;
    user[0] = '\0';
    if (ps_identity_lookup_uid(uid, id) == 0) {
        *prof = ps_resolve_profile(cfg, id, NULL, 0);
        snprintf(user, userlen, "%.63s", id->name);
        ps_identity_free(id);
    }
    free(id);
    e->used = true;
    e->uid = uid;
    e->cfg = cfg;
    e->profile = *prof;
    snprintf(e->user, sizeof e->user, "%s", user);
    e->expires = now + ID_CACHE_MS;
}

/* local: where the client connected to before NAT (SO_ORIGINAL_DST) or the explicit listener. */
int pd_identify(struct pd_conn *c, const struct sockaddr *local)
{
    uid_t uid;
    uint64_t inode;
    struct sockaddr_storage src = c->who.peer, dst;
    memcpy(&dst, local, local->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                     : sizeof(struct sockaddr_in));
    /* A v4 client of a dual-stack v6 listener is seen as ::ffff:a.b.c.d: its socket is AF_INET. */
    if (src.ss_family == AF_INET6 && dst.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&src;
        const struct sockaddr_in6 *d6 = (const struct sockaddr_in6 *)&dst;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && IN6_IS_ADDR_V4MAPPED(&d6->sin6_addr)) {
            struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = s6->sin6_port };
            struct sockaddr_in d4 = { .sin_family = AF_INET, .sin_port = d6->sin6_port };
            memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
            memcpy(&d4.sin_addr, &d6->sin6_addr.s6_addr[12], 4);
            memset(&src, 0, sizeof src);
            memset(&dst, 0, sizeof dst);
            memcpy(&src, &s4, sizeof s4);
            memcpy(&dst, &d4, sizeof d4);
        }
    }
    c->who.uid = (uid_t)-1;
    c->who.profile = NULL;
    if (ps_sockdiag_lookup(IPPROTO_TCP, (struct sockaddr *)&src, (struct sockaddr *)&dst, &uid,
                           &inode) < 0) {
        c->id_err = errno == ENOENT ? "client_not_found" : "identity_lookup_failed";
        return -1;
    }
    c->who.uid = uid;
    c->inode = inode;
    profile_of(uid, c->who.conf->cfg, &c->who.profile, c->who.user, sizeof c->who.user);
    if (!c->who.user[0])
        snprintf(c->who.user, sizeof c->who.user, "%u", (unsigned)uid);
    if (!c->who.profile) {
        c->id_err = "not_sandboxed";
        return -1;
    }
    c->id_ok = true;
    return 0;
}

/* A kept-alive explicit connection outlives reloads: each request is judged by the configuration
 * in force when it arrives, not the one its connection was accepted under.  The uid is the
 * socket's and does not change; its profile is looked up again (it may be gone: not_sandboxed). */
void pd_ident_refresh(struct pd_conn *c)
{
    if (c->who.conf == pd->conf)
        return;
    pd_conf_unref(c->who.conf);
    c->who.conf = pd_conf_ref(pd->conf);
    if (!c->id_ok)
        return;                            /* not identified: denied under any configuration */
    profile_of(c->who.uid, c->who.conf->cfg, &c->who.profile, c->who.user, sizeof c->who.user);
    if (!c->who.user[0])
        snprintf(c->who.user, sizeof c->who.user, "%u", (unsigned)c->who.uid);
    if (!c->who.profile) {
        c->id_ok = false;
        c->id_err = "not_sandboxed";
    }
}

/* ---- per-account connection counts ---- */
struct acct {
    uid_t uid;
    unsigned n;
    struct acct *next;
};
static struct acct *acct_tab[256];

bool pd_account_acquire(uid_t uid)
{
    struct acct **pp = &acct_tab[uid % 256], *a;
    for (a = *pp; a; a = a->next)
        if (a->uid == uid)
            break;
    if (!a) {
        a = ps_xcalloc(1, sizeof(*a));
        a->uid = uid;
        a->next = *pp;
        *pp = a;
    }
    if (a->n >= pd_max_conns_per_account)
        return false;
    a->n++;
    return true;
}

void pd_account_release(uid_t uid)
{
    struct acct **pp = &acct_tab[uid % 256];
    for (; *pp; pp = &(*pp)->next) {
        struct acct *a = *pp;
        if (a->uid != uid)
            continue;
        if (a->n > 0)
            a->n--;
        if (a->n == 0) {
            *pp = a->next;
            free(a);
        }
        return;
    }
}
