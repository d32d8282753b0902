/* Reference-counted configuration snapshots: SIGHUP swaps pd->conf while connections that began
 * under the old snapshot keep theirs (a pd_client holds a reference) until they close. */
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include "proxyd/core.h"
#include "common/util.h"

struct pd_conf *pd_conf_ref(struct pd_conf *c)
{
    if (c)
        c->refs++;
    return c;
}

void pd_conf_unref(struct pd_conf *c)
{
    if (!c || --c->refs > 0)
        return;
    ps_config_free(c->cfg);
    free(c);
}

/* Load and validate dir.  Every error goes to syslog (and stderr with print_errors); NULL when
 * there is any, so an invalid config never replaces a valid one. */
struct pd_conf *pd_conf_load(const char *dir, bool print_errors)
{
    struct ps_diags d = { 0 };
    struct ps_config *cfg = ps_config_load(dir, &d);
    for (size_t i = 0; i < d.n; i++)
        syslog(LOG_ERR, "config: %s:%u: %s", d.v[i].file ? d.v[i].file : dir, d.v[i].line, d.v[i].msg);
    if (print_errors)
        ps_diags_print(&d, stderr);
    ps_diags_free(&d);
    if (!cfg)
        return NULL;
    struct pd_conf *c = ps_xcalloc(1, sizeof(*c));
    c->cfg = cfg;
    c->refs = 1;
    return c;
}
