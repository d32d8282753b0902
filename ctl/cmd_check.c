/* sandboxctl check: validate the whole configuration, print every error as FILE:LINE: message
 * (like sshd -t); exit 1 if there is any. */
#include <stdio.h>
#include "common/config.h"
#include "ctl/ctl.h"

int cmd_check(const struct ctl_opts *o, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: sandboxctl [-c DIR] check\n");
        return 2;
    }
    struct ps_diags d = { 0 };
    struct ps_config *cfg = ps_config_load(o->confdir, &d);
    ps_diags_print(&d, stdout);
    int rc = cfg && d.n == 0 ? 0 : 1;
    if (rc == 0)
        printf("%s: configuration OK (%zu profile%s, %zu inference backend%s)\n", o->confdir,
               cfg->n_profiles, cfg->n_profiles == 1 ? "" : "s", cfg->n_backends,
               cfg->n_backends == 1 ? "" : "s");
    else
        fprintf(stderr, "%s: %zu error%s\n", o->confdir, d.n, d.n == 1 ? "" : "s");
    ps_config_free(cfg);
    ps_diags_free(&d);
    return rc;
}
