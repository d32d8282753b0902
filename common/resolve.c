/* Account -> profile (DESIGN.md §3.2): group membership from NSS, supplementary groups included
 * (getgrouplist), profiles in file-name order, the first match wins, UID 0 never by Group=. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common/resolve.h"
#include "common/util.h"

#define MAX_GIDS ((int)(sizeof ((struct ps_identity *)0)->gids / sizeof(gid_t)))
#define GROUP_BUF_MAX (64u << 20)

/* One group from NSS, by name (when name is set) or by gid: 1 found (*name_out, *gid_out filled),
 * 0 no such group, -1 with errno when NSS cannot say.  A group with thousands of members needs
 * more than any fixed buffer (ERANGE: the buffer grows), and sssd or LDAP can fail (EAGAIN, EIO). */
static int group_lookup(const char *name, gid_t gid, char **name_out, gid_t *gid_out)
{
    for (size_t len = 16384; len <= GROUP_BUF_MAX; len *= 2) {
        char *buf = ps_xmalloc(len);
        struct group gr, *res = NULL;
        int rc = name ? getgrnam_r(name, &gr, buf, len, &res) : getgrgid_r(gid, &gr, buf, len, &res);
        if (rc == 0 && res) {
            if (name_out)
                *name_out = ps_xstrdup(res->gr_name);
            if (gid_out)
                *gid_out = res->gr_gid;
        }
        free(buf);
        if (rc == ERANGE)
            continue;
        if (rc != 0 && rc != ENOENT && rc != ESRCH) {
            errno = rc;
            return -1;
        }
        return rc == 0 && res ? 1 : 0;
    }
    errno = E2BIG;
    return -1;
}

/* The name of group gid into *name (NULL when NSS knows no such group), or -1 when NSS cannot
 * say: a name left out would be a Group= match missed and the account unconfined, so the callers
 * refuse instead. */
static int group_name(gid_t gid, char **name)
{
    *name = NULL;
    return group_lookup(NULL, gid, name, NULL) < 0 ? -1 : 0;
}

/* The GID of group name, for a Group= match by number: /etc/group may give one GID several
 * names, and getgrgid() returns only the first.  true when found; an error only loses this extra
 * match, never one by name. */
static bool group_gid(const char *name, gid_t *gid)
{
    return group_lookup(name, 0, NULL, gid) == 1;
}

static int fill_groups(const struct passwd *pw, struct ps_identity *id)
{
    gid_t gids[MAX_GIDS];
    int n = MAX_GIDS;
    if (getgrouplist(pw->pw_name, pw->pw_gid, gids, &n) < 0) {
        /* More groups than we hold: membership would be incomplete, and a missed Group= match
         * would leave the account unconfined.  Refuse. */
        errno = E2BIG;
        return -1;
    }
    id->n_gids = 0;
    id->gids[id->n_gids++] = pw->pw_gid;             /* primary group first */
    for (int i = 0; i < n; i++)
        if (gids[i] != pw->pw_gid && id->n_gids < MAX_GIDS)
            id->gids[id->n_gids++] = gids[i];
    for (int i = 0; i < id->n_gids; i++)
        id->group_names[i] = NULL;
    for (int i = 0; i < id->n_gids; i++)
        if (group_name(id->gids[i], &id->group_names[i]) < 0)
            return -1;                       /* from_passwd frees the names found so far */
    return 0;
}

static int from_passwd(struct passwd *res, int rc, struct ps_identity *id)
{
    memset(id, 0, sizeof *id);
    if (!res) {
        errno = rc ? rc : ENOENT;
        return -1;
    }
    if (strlen(res->pw_name) >= sizeof id->name) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(id->name, res->pw_name);
    id->uid = res->pw_uid;
    if (fill_groups(res, id) < 0) {
        /* UID 0 is never sandboxed (ps_resolve_profile), so its groups decide nothing: what
         * could be found is kept, and a failing sssd or LDAP does not lock root out with
         * everyone else. */
        if (id->uid == 0)
            return 0;
        int e = errno;
        ps_identity_free(id);
        errno = e;
        return -1;
    }
    return 0;
}

int ps_identity_lookup(const char *user, struct ps_identity *id)
{
    struct passwd pw, *res = NULL;
    char buf[16384];
    int rc = getpwnam_r(user, &pw, buf, sizeof buf, &res);
    return from_passwd(res, rc, id);
}

int ps_identity_lookup_uid(uid_t uid, struct ps_identity *id)
{
    struct passwd pw, *res = NULL;
    char buf[16384];
    int rc = getpwuid_r(uid, &pw, buf, sizeof buf, &res);
    return from_passwd(res, rc, id);
}

void ps_identity_free(struct ps_identity *id)
{
    for (int i = 0; i < id->n_gids && i < MAX_GIDS; i++) {
        free(id->group_names[i]);
        id->group_names[i] = NULL;
    }
    id->n_gids = 0;
}

const struct ps_profile *ps_resolve_profile(const struct ps_config *cfg, const struct ps_identity *id,
                                            char *why, size_t whylen)
{
    /* UID 0, by any name, is never sandboxed: a root session owns the very files that define its
     * confinement, and the ruleset never steers UID 0, so matching it would only refuse every root
     * login (the config rejects User=root; this covers aliases such as toor). */
    if (id->uid == 0) {
        if (why)
            snprintf(why, whylen, "%s has UID 0, which is never sandboxed", id->name);
        return NULL;
    }
    for (size_t i = 0; cfg && i < cfg->n_profiles; i++) {
        const struct ps_profile *p = &cfg->profiles[i];
        for (size_t u = 0; u < p->n_match_users; u++)
            if (strcmp(p->match_users[u], id->name) == 0) {
                if (why)
                    snprintf(why, whylen, "%s:%u: User=%s", p->file,
                             p->match_user_origins ? p->match_user_origins[u].line : 0, id->name);
                return p;
            }
        for (size_t g = 0; g < p->n_match_groups; g++) {
            gid_t want = 0;
            bool by_gid = group_gid(p->match_groups[g], &want);
            for (int k = 0; k < id->n_gids && k < MAX_GIDS; k++)
                if ((id->group_names[k] && strcmp(p->match_groups[g], id->group_names[k]) == 0) ||
                    (by_gid && id->gids[k] == want)) {
                    if (why)
                        snprintf(why, whylen, "%s:%u: Group=%s (%s)", p->file,
                                 p->match_group_origins ? p->match_group_origins[g].line : 0,
                                 p->match_groups[g], k == 0 ? "primary" : "supplementary");
                    return p;
                }
        }
    }
    if (why)
        snprintf(why, whylen, "no profile matches user %s", id->name);
    return NULL;
}
