/* sandboxctl doctor: limits.conf entries that pam_limits, running after pam_sandbox.so in a session
 * stack, would apply to a sandboxed account and that raise a limit its profile sets.  pam_limits
 * runs as root, and root may raise a hard limit: such an entry undoes the module (DESIGN.md §9.4).
 * Lowering a limit is harmless and not reported. */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "common/util.h"
#include "ctl/doctor_int.h"

static const struct {
    const char *item;
    int resource;
    rlim_t unit;                  /* limits.conf unit in bytes (KB items) or 1 */
} items[] = {
    { "core", RLIMIT_CORE, 1024 },   { "data", RLIMIT_DATA, 1024 },
    { "fsize", RLIMIT_FSIZE, 1024 }, { "memlock", RLIMIT_MEMLOCK, 1024 },
    { "nofile", RLIMIT_NOFILE, 1 },  { "rss", RLIMIT_RSS, 1024 },
    { "stack", RLIMIT_STACK, 1024 }, { "cpu", RLIMIT_CPU, 60 },
    { "nproc", RLIMIT_NPROC, 1 },    { "as", RLIMIT_AS, 1024 },
    { "locks", RLIMIT_LOCKS, 1 },    { "sigpending", RLIMIT_SIGPENDING, 1 },
    { "msgqueue", RLIMIT_MSGQUEUE, 1 }, { "nice", RLIMIT_NICE, 1 },
    { "rtprio", RLIMIT_RTPRIO, 1 },
};

/* "N:M", "N:", ":M" (uid or gid range), parsed into [lo, hi]; false if not a range. */
static bool parse_range(const char *s, unsigned long *lo, unsigned long *hi)
{
    const char *colon = strchr(s, ':');
    if (!colon)
        return false;
    char *end;
    *lo = 0;
    *hi = ULONG_MAX;
    if (colon != s) {
        *lo = strtoul(s, &end, 10);
        if (end != colon)
            return false;
    }
    if (colon[1]) {
        *hi = strtoul(colon + 1, &end, 10);
        if (*end)
            return false;
    }
    return true;
}

static bool in_group_named(const struct doc_account *a, const char *name)
{
    for (int g = 0; g < a->id.n_gids; g++)
        if (a->id.group_names[g] && strcmp(a->id.group_names[g], name) == 0)
            return true;
    return false;
}

/* Does the limits.conf domain apply to account a?  (pam_limits: "*", user, @group, uid range,
 * @gid range; "%group" only limits logins.) */
static bool domain_matches(const char *dom, const struct doc_account *a)
{
    unsigned long lo, hi;
    if (strcmp(dom, "*") == 0)
        return a->id.uid != 0;    /* pam_limits never applies "*" to root */
    if (dom[0] == '%')
        return false;
    if (dom[0] == '@') {
        if (parse_range(dom + 1, &lo, &hi)) {
            for (int g = 0; g < a->id.n_gids; g++)
                if (a->id.gids[g] >= lo && a->id.gids[g] <= hi)
                    return true;
            return false;
        }
        return in_group_named(a, dom + 1);
    }
    if (parse_range(dom, &lo, &hi))
        return a->id.uid >= lo && a->id.uid <= hi;
    return strcmp(dom, a->id.name) == 0;
}

/* The value in rlimit units; RLIM_INFINITY for unlimited.  false: not a number. */
static bool parse_value(const char *v, rlim_t unit, rlim_t *out)
{
    if (strcmp(v, "unlimited") == 0 || strcmp(v, "infinity") == 0 || strcmp(v, "-1") == 0) {
        *out = RLIM_INFINITY;
        return true;
    }
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || end == v)
        return false;
    *out = n > RLIM_INFINITY / unit ? RLIM_INFINITY : (rlim_t)n * unit;
    return true;
}

static void fmt_limit(rlim_t v, char *buf, size_t len)
{
    if (v == RLIM_INFINITY)
        snprintf(buf, len, "infinity");
    else
        snprintf(buf, len, "%llu", (unsigned long long)v);
}

static void check_file(struct doctor *d, const char *path, const char *stack_file)
{
    char *buf = doc_read(d, path);
    if (!buf)
        return;
    unsigned lineno = 0;
    char *p = buf;
    while (*p) {
        char *line = p, *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        p = nl ? nl + 1 : p + strlen(p);
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char dom[256], type[32], item[32], value[64];
        if (sscanf(line, "%255s %31s %31s %63s", dom, type, item, value) != 4)
            continue;
        if (strcmp(type, "hard") != 0 && strcmp(type, "-") != 0)
            continue;             /* a soft limit stays under the hard one the module set */
        int res = -1;
        rlim_t unit = 1, v;
        for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
            if (strcmp(items[i].item, item) == 0) {
                res = items[i].resource;
                unit = items[i].unit;
            }
        if (res < 0 || !parse_value(value, unit, &v))
            continue;
        for (size_t i = 0; i < d->n_acct; i++) {
            const struct doc_account *a = &d->acct[i];
            const struct ps_limit *lim = &a->profile->limits[res];
            if (!lim->set || v <= lim->hard || !domain_matches(dom, a))
                continue;
            char mine[32], theirs[32];
            fmt_limit(lim->hard, mine, sizeof mine);
            fmt_limit(v, theirs, sizeof theirs);
            doc_finding(d, path, lineno, "\"%s %s %s %s\" raises %s of sandboxed account %s "
                        "(profile %s: %s) to %s, because pam_limits runs after pam_sandbox.so in %s; "
                        "fix: remove the entry or exclude the sandboxed accounts from it",
                        dom, type, item, value, ps_limit_name(res) ? ps_limit_name(res) : item,
                        a->id.name, a->profile->name, mine, theirs, stack_file);
            break;                /* one line per entry */
        }
    }
    free(buf);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void doc_check_limits(struct doctor *d, const char *conf_path, const char *stack_file)
{
    if (!d->n_acct)
        return;
    check_file(d, conf_path, stack_file);
    if (strcmp(conf_path, "/etc/security/limits.conf") != 0)
        return;                   /* pam_limits reads limits.d only with its default file */
    char full[4096];
    DIR *dir = opendir(doc_path(d, "/etc/security/limits.d", full, sizeof full));
    if (!dir)
        return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] != '.' && l > 5 && strcmp(e->d_name + l - 5, ".conf") == 0)
            *(char **)ps_vec_push(&names, &n, &cap, sizeof *names) = ps_xstrdup(e->d_name);
    }
    closedir(dir);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "/etc/security/limits.d/%s", names[i]);
        check_file(d, path, stack_file);
        free(names[i]);
    }
    free(names);
}
