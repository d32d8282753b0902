/* Used only while netfilter/ (libpsnft.a) is not in the tree: the egress step of open_session
 * then FAILS, so that a module built without egress steering never lets a sandboxed account in.
 * `make PS_NFT_PENDING_ALLOW=1` (tests of the other steps only) makes it succeed and log that
 * nothing is steered. */
#include <stdio.h>
#include "netfilter/nft.h"

/* Lets tests (and `strings`) tell such a build apart. */
__attribute__((used)) static const char pending_marker[] = "pam_sandbox built with nft_pending.c";

int ps_nft_ensure_uid(const struct ps_config *cfg, uid_t uid, char *err, size_t errlen)
{
#ifdef PS_NFT_PENDING_ALLOW
    (void)cfg;
    (void)uid;
    (void)err;
    (void)errlen;
    return 0;
#else
    (void)cfg;
    snprintf(err, errlen, "egress steering is not built into this module (netfilter/ missing); "
             "uid %u not steered", (unsigned)uid);
    return -1;
#endif
}
