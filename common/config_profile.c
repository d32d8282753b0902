/* profiles/NAME.conf (DESIGN.md §3.2): the keyword table, its handlers and the defaults. */
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include "common/config_int.h"
#include "common/util.h"
#include "common/values.h"

const char *const ps_profile_sections[] = { "Match", "Limits", "Process", "Seccomp", "Network",
                                            "Inference", NULL };

bool ps_valid_account_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] == '-' || s[0] == '+' || s[0] == '~')
        return false;
    bool all_digits = true;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '_' || ch == '-' || ch == '.' || (ch == '$' && i == n - 1);
        if (!ok)
            return false;
        if (ch < '0' || ch > '9')
            all_digits = false;
    }
    return !all_digits && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static int too_many(struct pctx *c, size_t n, const char *key, unsigned line)
{
    if (n < PS_MAX_LIST)
        return 0;
    ps_perr(c, line, "too many %s= entries (at most %d)", key, PS_MAX_LIST);
    return -1;
}

static int key_match(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    bool group = k->arg;
    char ***list = group ? &c->p->match_groups : &c->p->match_users;
    size_t *n = group ? &c->p->n_match_groups : &c->p->n_match_users;
    struct ps_origin **orig = group ? &c->p->match_group_origins : &c->p->match_user_origins;
    const char *p = val;
    char *w;
    if (!*val) {
        ps_perr(c, line, "%s= needs at least one name", k->name);
        return -1;
    }
    while ((w = ps_next_word(&p))) {
        if (!ps_valid_account_name(w)) {
            ps_perr(c, line, "%s=: '%s' is not a valid %s name", k->name, w, group ? "group" : "user");
            free(w);
            continue;
        }
        if (!group && strcmp(w, "root") == 0) {
            /* A root session cannot be confined (it owns the files that define the confinement)
             * and the ruleset never steers UID 0, so the module would refuse every root login. */
            ps_perr(c, line, "User=root: root (UID 0) is never sandboxed; matching it would refuse "
                             "every root login");
            free(w);
            continue;
        }
        if (too_many(c, *n, k->name, line) < 0) {
            free(w);
            return -1;
        }
        *list = ps_xrealloc(*list, *n + 1, sizeof **list);
        *orig = ps_xrealloc(*orig, *n + 1, sizeof **orig);
        (*list)[*n] = w;
        (*orig)[*n] = ps_origin_at(c, line);
        (*n)++;
    }
    return 0;
}

static int key_nnp(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    char err[200];
    if (ps_parse_bool(val, &c->p->no_new_privs, err, sizeof err) < 0) {
        ps_perr(c, line, "%s=: %s", k->name, err);
        return -1;
    }
    c->p->no_new_privs_origin = ps_origin_at(c, line);
    return 0;
}

static int key_caps(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    const char *p = val;
    char *w;
    if (c->first || !*val)
        c->p->cap_keep = 0;            /* the first assignment replaces the default; empty resets */
    c->p->cap_keep_origin = ps_origin_at(c, line);
    while ((w = ps_next_word(&p))) {
        cap_value_t cv;
        if (strncasecmp(w, "CAP_", 4) != 0 || cap_from_name(w, &cv) < 0 || cv < 0 || cv > 63) {
            ps_perr(c, line, "%s=: unknown capability '%s' (names like CAP_NET_BIND_SERVICE)",
                    k->name, w);
        } else {
            c->p->cap_keep |= 1ull << cv;
        }
        free(w);
    }
    return 0;
}

static int key_umask(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    size_t n = strlen(val);
    if (n == 0 || n > 4 || strspn(val, "01234567") != n) {
        ps_perr(c, line, "%s=%s: expected an octal mode such as 0077", k->name, val);
        return -1;
    }
    long m = strtol(val, NULL, 8);
    if (m > 0777) {
        ps_perr(c, line, "%s=%s: out of range (0000-0777)", k->name, val);
        return -1;
    }
    c->p->umask = (int)m;
    c->p->umask_origin = ps_origin_at(c, line);
    return 0;
}

static int key_network(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    if (strcmp(val, "proxy") == 0)
        c->p->network = PS_NET_PROXY;
    else if (strcmp(val, "block") == 0)
        c->p->network = PS_NET_BLOCK;
    else {
        ps_perr(c, line, "%s=%s: expected proxy or block", k->name, val);
        return -1;
    }
    c->p->network_origin = ps_origin_at(c, line);
    return 0;
}

static int key_netlink(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    const char *p = val;
    char *w;
    if (c->first || !*val)
        c->p->allow_netlink = 0;
    c->p->allow_netlink_origin = ps_origin_at(c, line);
    while ((w = ps_next_word(&p))) {
        if (strcmp(w, "audit") == 0)
            c->p->allow_netlink |= PS_NETLINK_AUDIT;
        else if (strcmp(w, "route") == 0)
            c->p->allow_netlink |= PS_NETLINK_ROUTE;
        else
            ps_perr(c, line, "%s=: unknown netlink protocol '%s' (only audit and route may be "
                    "kept)", k->name, w);
        free(w);
    }
    return 0;
}

static int key_syscalls(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    bool deny = k->arg;
    int **list = deny ? &c->p->deny_syscalls : &c->p->allow_syscalls;
    size_t *n = deny ? &c->p->n_deny_syscalls : &c->p->n_allow_syscalls;
    const char *p = val;
    char *w;
    if (!*val) {
        *n = 0;                          /* empty resets the list, as in systemd */
        return 0;
    }
    while ((w = ps_next_word(&p))) {
        int nr = -1;
        if (strlen(w) < 64 && strspn(w, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(w))
            nr = seccomp_syscall_resolve_name(w);
        if (nr < 0)
            ps_perr(c, line, "%s=: unknown system call '%s' on this architecture", k->name, w);
        else if (too_many(c, *n, k->name, line) == 0) {
            *list = ps_xrealloc(*list, *n + 1, sizeof **list);
            (*list)[(*n)++] = nr;
            if (!deny && nr == SCMP_SYS(clone3))
                c->p->allow_clone3_line = line;
        }
        free(w);
    }
    return 0;
}

static int key_rule(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    struct ps_rule r;
    char err[512];
    if (ps_rule_parse(val, k->arg ? PS_RULE_DENY : PS_RULE_ALLOW, &r, err, sizeof err) < 0) {
        ps_perr(c, line, "%s=%s: %s", k->name, val, err);
        return -1;
    }
    if (too_many(c, c->p->n_rules, k->name, line) < 0) {
        ps_rule_free(&r);
        return -1;
    }
    r.origin = ps_origin_at(c, line);
    c->p->rules = ps_xrealloc(c->p->rules, c->p->n_rules + 1, sizeof *c->p->rules);
    c->p->rules[c->p->n_rules++] = r;
    return 0;
}

static int key_mode(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    if (strcmp(val, "enforce") == 0)
        c->p->mode = PS_MODE_ENFORCE;
    else if (strcmp(val, "report") == 0)
        c->p->mode = PS_MODE_REPORT;
    else {
        ps_perr(c, line, "%s=%s: expected enforce or report", k->name, val);
        return -1;
    }
    c->p->mode_origin = ps_origin_at(c, line);
    return 0;
}

/* A model name as requests carry it: printable, no spaces, no '=' (used for NAME=UPSTREAM). */
bool ps_valid_model_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f || s[i] == '=' || s[i] == '"' ||
            s[i] == '\\')
            return false;
    return true;
}

static int key_models(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    const char *p = val;
    char *w;
    c->p->has_models = true;
    c->p->models_origin = ps_origin_at(c, line);
    while ((w = ps_next_word(&p))) {
        if (strcmp(w, "*") == 0) {
            c->p->all_models = true;
            free(w);
        } else if (!ps_valid_model_name(w)) {
            ps_perr(c, line, "%s=: '%s' is not a valid model name", k->name, w);
            free(w);
        } else if (too_many(c, c->p->n_models, k->name, line) < 0) {
            free(w);
        } else {
            c->p->models = ps_xrealloc(c->p->models, c->p->n_models + 1, sizeof *c->p->models);
            c->p->models[c->p->n_models++] = w;
        }
    }
    return 0;
}

static int key_rpm(struct pctx *c, const struct ps_key *k, const char *val, unsigned line)
{
    uint64_t v;
    char err[200];
    if (ps_parse_uint(val, 1000000, &v, err, sizeof err) < 0) {
        ps_perr(c, line, "%s=: %s", k->name, err);
        return -1;
    }
    c->p->requests_per_minute = (unsigned)v;
    c->p->rpm_origin = ps_origin_at(c, line);
    return 0;
}

#define LIMIT(n) { "Limits", n, 0, ps_key_limit, 0 }
const struct ps_key ps_profile_keys[] = {
    { "Match", "Group", KEY_REPEAT, key_match, 1 },
    { "Match", "User", KEY_REPEAT, key_match, 0 },
    LIMIT("LimitCPU"), LIMIT("LimitFSIZE"), LIMIT("LimitDATA"), LIMIT("LimitSTACK"),
    LIMIT("LimitCORE"), LIMIT("LimitRSS"), LIMIT("LimitNOFILE"), LIMIT("LimitAS"),
    LIMIT("LimitNPROC"), LIMIT("LimitMEMLOCK"), LIMIT("LimitLOCKS"), LIMIT("LimitSIGPENDING"),
    LIMIT("LimitMSGQUEUE"), LIMIT("LimitNICE"), LIMIT("LimitRTPRIO"), LIMIT("LimitRTTIME"),
    { "Process", "NoNewPrivileges", 0, key_nnp, 0 },
    { "Process", "CapabilityBoundingSet", KEY_REPEAT, key_caps, 0 },
    { "Process", "Umask", 0, key_umask, 0 },
    { "Seccomp", "Network", 0, key_network, 0 },
    { "Seccomp", "AllowNetlink", KEY_REPEAT, key_netlink, 0 },
    { "Seccomp", "DenySyscalls", KEY_REPEAT, key_syscalls, 1 },
    { "Seccomp", "AllowSyscalls", KEY_REPEAT, key_syscalls, 0 },
    { "Network", "Allow", KEY_REPEAT, key_rule, 0 },
    { "Network", "Deny", KEY_REPEAT, key_rule, 1 },
    { "Network", "Mode", 0, key_mode, 0 },
    { "Inference", "Models", KEY_REPEAT, key_models, 0 },
    { "Inference", "RequestsPerMinute", 0, key_rpm, 0 },
};
const size_t ps_n_profile_keys = sizeof ps_profile_keys / sizeof ps_profile_keys[0];

void ps_profile_defaults(struct ps_profile *p)
{
    for (int i = 0; i < RLIM_NLIMITS; i++)
        p->limits[i].set = false;
    p->limits[RLIMIT_NPROC] = (struct ps_limit){ true, PS_DEFAULT_NPROC, PS_DEFAULT_NPROC, { 0 } };
    p->limits[RLIMIT_CORE] = (struct ps_limit){ true, 0, 0, { 0 } };
    p->no_new_privs = true;
    p->cap_keep = 0;
    p->umask = -1;
    p->network = PS_NET_PROXY;
    p->allow_netlink = PS_NETLINK_AUDIT;
    p->mode = PS_MODE_ENFORCE;
}

void ps_profile_finish(struct pctx *c)
{
    struct ps_profile *p = c->p;
    if (p->n_match_groups == 0 && p->n_match_users == 0)
        ps_perr(c, c->match_line, "no Group= or User= in [Match]: this profile would match no "
                "account");
    /* clone3's flags are in memory the filter cannot read: lifting its ENOSYS allows new user
     * namespaces through it, which is what lifting clone and unshare means, and nothing less. */
    bool clone3 = false, clone = false, unshare = false;
    for (size_t j = 0; j < p->n_allow_syscalls; j++) {
        clone3 |= p->allow_syscalls[j] == SCMP_SYS(clone3);
        clone |= p->allow_syscalls[j] == SCMP_SYS(clone);
        unshare |= p->allow_syscalls[j] == SCMP_SYS(unshare);
    }
    if (clone3 && !(clone && unshare))
        ps_perr(c, p->allow_clone3_line, "AllowSyscalls=clone3 would allow new user namespaces "
                "(the filter cannot see clone3's flags) while clone and unshare still deny them; "
                "lift all three, or none (programs fall back to clone when clone3 fails)");
    for (size_t i = 0; i < p->n_deny_syscalls; i++)
        for (size_t j = 0; j < p->n_allow_syscalls; j++)
            if (p->deny_syscalls[i] == p->allow_syscalls[j]) {
                char *nm = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, p->deny_syscalls[i]);
                ps_perr(c, 0, "system call '%s' is in both DenySyscalls= and AllowSyscalls=",
                        nm ? nm : "?");
                free(nm);
            }
}

void ps_profile_free(struct ps_profile *p)
{
    free(p->name);
    free(p->file);
    for (size_t i = 0; i < p->n_match_groups; i++)
        free(p->match_groups[i]);
    for (size_t i = 0; i < p->n_match_users; i++)
        free(p->match_users[i]);
    free(p->match_groups);
    free(p->match_users);
    free(p->match_group_origins);
    free(p->match_user_origins);
    free(p->deny_syscalls);
    free(p->allow_syscalls);
    for (size_t i = 0; i < p->n_rules; i++)
        ps_rule_free(&p->rules[i]);
    free(p->rules);
    for (size_t i = 0; i < p->n_models; i++)
        free(p->models[i]);
    free(p->models);
    memset(p, 0, sizeof *p);
}
