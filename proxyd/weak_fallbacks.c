/* Fail-closed stand-ins for parts of sandbox-proxyd built by other engineers (resolver, synthetic
 * addresses, policy DNS, inference.local).  They are weak symbols: as soon as the real object is
 * linked in, the linker takes it and these vanish.  Each one refuses — a missing part can make
 * proxyd deny more, never allow more:
 *   resolver: every lookup fails (so no name-based connection is made);
 *   synth: no address is ever synthetic (a transparent connection is judged by IP rules only);
 *   inference: the connection is closed;
 *   policy DNS: not served (nftables redirects DNS to a port nobody answers: refused). */
#include <errno.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>
#include "proxyd/proxyd.h"
#include "proxyd/resolver.h"
#include "proxyd/synth.h"
#include "proxyd/dns_server.h"
#include "proxyd/inference_api.h"
#include "common/sockdiag.h"

#define WEAK __attribute__((weak))

struct resolver { int unused; };
struct resolver_query {
    struct pd_loop *loop;
    resolver_cb cb;
    void *arg;
    struct pd_timer *t;
};

WEAK struct resolver *resolver_new(struct pd_loop *l, const struct ps_config *cfg)
{
    (void)l; (void)cfg;
    static struct resolver none;
    syslog(LOG_WARNING, "sandbox-proxyd: built without a resolver; name lookups fail");
    return &none;
}

WEAK void resolver_free(struct resolver *r) { (void)r; }

static void fail_lookup(struct pd_loop *l, void *arg)
{
    struct resolver_query *q = arg;
    (void)l;
    q->cb(q->arg, -3 /* RESOLVER_EFAIL */, NULL, 0, 0);
    free(q);
}

WEAK struct resolver_query *resolver_lookup(struct resolver *r, const char *name, resolver_cb cb, void *arg)
{
    (void)r; (void)name;
    struct resolver_query *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->loop = pd->loop;
    q->cb = cb;
    q->arg = arg;
    q->t = pd_timer_add(pd->loop, 0, fail_lookup, q);   /* never call back re-entrantly */
    return q;
}

WEAK void resolver_cancel(struct resolver *r, struct resolver_query *q)
{
    (void)r;
    if (!q)
        return;
    pd_timer_cancel(q->loop, q->t);
    free(q);
}

WEAK const char *resolver_strerror(int status) { (void)status; return "resolver not built"; }
WEAK int resolver_reconfigure(struct resolver *r, const struct ps_config *cfg) { (void)r; (void)cfg; return 0; }

WEAK struct synth *synth_new(const struct ps_cidr *range) { (void)range; return NULL; }
WEAK void synth_free(struct synth *s) { (void)s; }
WEAK bool synth_lookup(const struct synth *s, uid_t uid, struct in_addr addr, char name[PS_MAX_NAME + 1])
{
    (void)s; (void)uid; (void)addr; (void)name;
    return false;
}

WEAK int dns_server_start(struct proxyd *d, const struct ps_config *cfg)
{
    (void)d; (void)cfg;
    syslog(LOG_WARNING, "sandbox-proxyd: built without policy DNS; DNS of sandboxed accounts is refused");
    return 0;
}
WEAK int dns_server_reload(struct proxyd *d, const struct ps_config *cfg) { (void)d; (void)cfg; return 0; }
WEAK void dns_server_stop(void) {}

WEAK void pd_inference_accept(int fd, const struct pd_client *who)
{
    syslog(LOG_WARNING, "sandbox-proxyd: inference.local not built; closing the connection");
    close(fd);
    if (who->counted)
        pd_account_release(who->uid);
    pd_conf_unref(who->conf);
}

WEAK int pd_inference_reload(struct pd_conf *conf, const struct pd_secrets *s) { (void)conf; (void)s; return -1; }
WEAK void pd_inference_shutdown(void) {}

#ifdef PD_FALLBACK_SOCKDIAG
/* common/sockdiag.c has not landed: nobody can be identified, so every connection is denied. */
int ps_sockdiag_lookup(int proto, const struct sockaddr *src, const struct sockaddr *dst,
                       uid_t *uid, uint64_t *inode)
{
    (void)proto; (void)src; (void)dst; (void)uid; (void)inode;
    errno = ENOSYS;
    return -1;
}
#endif
