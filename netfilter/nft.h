/* The nftables side of pam_sandbox (DESIGN.md §5.1): table inet pam_sandbox. */
#ifndef PS_NFT_H
#define PS_NFT_H

#include <stddef.h>
#include <sys/types.h>
#include "common/config.h"

/* Render the complete ruleset text for cfg (for `sandboxctl apply`, and shown by tests).
 * Returns a malloc'd string or NULL with a "FILE:LINE: message" in diags. */
char *ps_nft_render(const struct ps_config *cfg, struct ps_diags *diags);

/* Replace the table atomically with cfg's ruleset, keeping the UIDs already in the set
 * (one transaction: either the new table is in force or the old one stays). 0 or -1 + diags. */
int ps_nft_load(const struct ps_config *cfg, struct ps_diags *diags);

/* Called by pam_sandbox.so at open_session, while still root and before seccomp: verify that the
 * table is present and was rendered from a config compatible with cfg (version element), and add
 * uid to the set of sandboxed UIDs.  0, or -1 with a message in err (the login is then refused). */
int ps_nft_ensure_uid(const struct ps_config *cfg, uid_t uid, char *err, size_t errlen);

/* Remove the table (sandboxctl flush). */
int ps_nft_flush(char *err, size_t errlen);

#endif
