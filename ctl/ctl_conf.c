/* The one way a sandboxctl subcommand loads the configuration. */
#include <stdio.h>
#include "common/config.h"
#include "ctl/ctl.h"

struct ps_config *ctl_load_config(const struct ctl_opts *o)
{
    struct ps_diags d = { 0 };
    struct ps_config *cfg = ps_config_load(o->confdir, &d);
    if (!cfg || d.n) {
        ps_diags_print(&d, stderr);
        fprintf(stderr, "sandboxctl: %s: invalid configuration (%zu error%s); run "
                "'sandboxctl check'\n", o->confdir, d.n, d.n == 1 ? "" : "s");
        ps_config_free(cfg);
        cfg = NULL;
    }
    ps_diags_free(&d);
    return cfg;
}
