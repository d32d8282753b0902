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
    /* Valid, but worth knowing: with NoNewPrivileges=no a set-user-ID program (sudo, su) runs with
     * euid 0, whose sockets nftables never steers and which owns root's files, bounding set or not. */
    for (size_t i = 0; cfg && i < cfg->n_profiles; i++) {
        const struct ps_profile *p = &cfg->profiles[i];
        if (!p->no_new_privs)
            printf("%s:%u: warning: NoNewPrivileges=no: set-user-ID programs run as root, and "
                   "root's connections are not steered and root's files are theirs; only for "
                   "accounts trusted with sudo\n",
                   p->no_new_privs_origin.file ? p->no_new_privs_origin.file : p->file,
                   p->no_new_privs_origin.line);
    }
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
