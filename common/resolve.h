/* Account -> profile (DESIGN.md §3.2 "Resolution"). */
#ifndef PS_RESOLVE_H
#define PS_RESOLVE_H

#include <sys/types.h>
#include "config.h"

/* Who an account is, as resolution needs it.  Filled from NSS by ps_identity_lookup(), or by
 * hand in tests. */
struct ps_identity {
    char name[256];
    uid_t uid;
    gid_t gids[1024];             /* primary group first, then supplementary ones */
    int n_gids;
    char *group_names[1024];      /* names of gids[], NULL where NSS has none */
};

/* 0 on success; -1 with errno (ENOENT: no such user). */
int ps_identity_lookup(const char *user, struct ps_identity *id);
int ps_identity_lookup_uid(uid_t uid, struct ps_identity *id);
void ps_identity_free(struct ps_identity *id);

/* The first profile (file-name order) whose [Match] matches, or NULL: not sandboxed.
 * UID 0 is never matched by Group=.  why (may be NULL) receives a one-line reason such as
 * "profiles/dev.conf:3: Group=sandboxed (supplementary)". */
const struct ps_profile *ps_resolve_profile(const struct ps_config *cfg, const struct ps_identity *id,
                                            char *why, size_t whylen);

#endif
