/* sandboxctl flush: remove table inet pam_sandbox.  From then on the module refuses sandboxed
 * logins (the table is missing), and sessions already open are no longer steered — this is the
 * admin's emergency switch, so it says so. */
#include <stdio.h>

#include "ctl/ctl.h"
#include "netfilter/nft.h"

int cmd_flush(const struct ctl_opts *o, int argc, char **argv)
{
    (void)o;
    if (argc != 1) {
        fprintf(stderr, "usage: sandboxctl flush\n");
        return 2;
    }
    char err[512];
    int r = ps_nft_flush(err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "sandboxctl: cannot remove table inet pam_sandbox: %s\n", err);
        return 1;
    }
    /* the record of UIDs steered since boot goes too: the next apply starts from the accounts
     * that match a profile, as an emptied set should (a flush by nftables.service keeps it) */
    if (ps_nft_forget_recorded(err, sizeof err) < 0) {
        fprintf(stderr, "sandboxctl: table removed, but the record of steered UIDs stays: %s\n", err);
        return 1;
    }
    if (r == 0) {
        printf("table inet pam_sandbox was not loaded: nothing removed (sandboxed logins are "
               "refused until 'sandboxctl apply')\n");
        return 0;
    }
    printf("table inet pam_sandbox removed: open sandboxed sessions are no longer steered, and "
           "sandboxed logins are refused until 'sandboxctl apply'\n");
    return 0;
}
