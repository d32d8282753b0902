/* Calls ps_nft_ensure_uid exactly as pam_sandbox.so does at open_session, for the egress tests
 * (the module belongs to another part; this isolates the netfilter step).
 *   nft_ensure_uid CONFDIR UID   -> exit 0, or 1 with the message on stderr */
#include <stdio.h>
#include <stdlib.h>

#include "common/config.h"
#include "netfilter/nft.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s CONFDIR UID\n", argv[0]);
        return 2;
    }
    struct ps_diags d = { 0 };
    struct ps_config *cfg = ps_config_load(argv[1], &d);
    if (!cfg || d.n) {
        ps_diags_print(&d, stderr);
        ps_diags_free(&d);
        ps_config_free(cfg);
        return 1;
    }
    ps_diags_free(&d);
    char err[768];
    int rc = ps_nft_ensure_uid(cfg, (uid_t)strtoul(argv[2], NULL, 10), err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "nft_ensure_uid: %s\n", err);
    ps_config_free(cfg);
    return rc < 0 ? 1 : 0;
}
