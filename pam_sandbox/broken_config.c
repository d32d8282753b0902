/* When the configuration does not load, who may still log in?  The module cannot apply a profile
 * it cannot read, and it must not let a sandboxed account in unconfined (fail closed); but a typo
 * in one profile must not lock out every account of the host either.  So, using common/'s own
 * parser on each profile file:
 *   - a profile file that parses is used as is;
 *   - a file that does not is parsed again with everything but its [Match] sections blanked out
 *     (line numbers kept), which tells whom it was meant for;
 *   - an account matched by any of these is refused;
 *   - if some profile file cannot be read, is not trusted (owner/mode), or even its [Match] part
 *     fails, nobody can tell whom it matches: every account except root is refused;
 *   - root (uid 0) is never refused here, so the admin can log in and fix the files;
 *   - everyone else is left alone (PAM_IGNORE), with the error logged.
 * The trust rules (root-owned, not group/other-writable) are applied as the loader applies them:
 * a file anybody could edit must not decide that an account is not sandboxed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/config.h"
#include "common/resolve.h"
#include "pam_sandbox/sandbox.h"

#define MAX_PROFILE_BYTES (1u << 20)

static bool trusted(int fd, bool dir)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return false;
    if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return false;
    return st.st_uid == 0 && !(st.st_mode & (S_IWGRP | S_IWOTH)) &&
           (dir || st.st_size <= (off_t)MAX_PROFILE_BYTES);
}

static char *read_all(int fd, size_t *len)
{
    size_t cap = MAX_PROFILE_BYTES + 1, n = 0;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    for (;;) {
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || (r > 0 && n + (size_t)r >= cap)) {
            free(b);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *len = n;
    return b;
}

/* Does the line s..e set User= or Group=?  (Outside [Match] that is an error the loader reports,
 * but the admin meant an account by it.) */
static bool names_accounts(const char *s, const char *e)
{
    const char *eq = memchr(s, '=', (size_t)(e - s));
    if (!eq)
        return false;
    const char *k = eq;
    while (k > s && (k[-1] == ' ' || k[-1] == '\t'))
        k--;
    return (k - s == 4 && memcmp(s, "User", 4) == 0) || (k - s == 5 && memcmp(s, "Group", 5) == 0);
}

/* Blank every line outside a [Match] section, keeping the newlines so FILE:LINE stays true.
 * false when a line outside [Match] names accounts (User=, Group= before any section or in
 * another one): whom the admin meant cannot be told, and dropping the line would leave that
 * account unconfined. */
static bool keep_match_sections(char *buf, size_t len)
{
    bool in_match = false, stray = false;
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && buf[e] != '\n')
            e++;
        size_t s = i;
        while (s < e && (buf[s] == ' ' || buf[s] == '\t'))
            s++;
        if (s < e && buf[s] == '[') {
            size_t t = e;
            while (t > s && (buf[t - 1] == ' ' || buf[t - 1] == '\t' || buf[t - 1] == '\r'))
                t--;
            in_match = t - s == 7 && memcmp(buf + s, "[Match]", 7) == 0;
            if (in_match) {
                i = e + 1;
                continue;
            }
        }
        if (!in_match) {
            stray |= names_accounts(buf + s, buf + e);
            memset(buf + i, ' ', e - i);
        }
        i = e + 1;
    }
    return !stray;
}

/* Add what can be learnt from one profile file to scratch.  false: nothing can be learnt. */
static bool salvage_file(struct ps_config *scratch, int dfd, const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/profiles/%s", dir, name);
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return false;
    size_t len = 0;
    char *buf = trusted(fd, false) ? read_all(fd, &len) : NULL;
    close(fd);
    if (!buf)
        return false;
    struct ps_diags d = { 0 };
    bool ok = ps_config_parse_buffer(scratch, PS_FILE_PROFILE, path, buf, len, &d) == 0;
    ps_diags_free(&d);
    if (!ok && keep_match_sections(buf, len)) {
        struct ps_diags d2 = { 0 };
        ok = ps_config_parse_buffer(scratch, PS_FILE_PROFILE, path, buf, len, &d2) == 0;
        ps_diags_free(&d2);
    }
    free(buf);
    return ok;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Fills scratch from CONFDIR/profiles.  Returns the name of the first file nothing could be
 * learnt from (static storage), "" when all were usable, or NULL when the directory itself is
 * unusable. */
static const char *salvage_profiles(struct ps_config *scratch, const char *confdir)
{
    static char unknown[512];
    int cfd = open(confdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cfd < 0 || !trusted(cfd, true)) {
        if (cfd >= 0)
            close(cfd);
        return NULL;
    }
    int pfd = openat(cfd, "profiles", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    close(cfd);
    if (pfd < 0)
        return errno == ENOENT ? "" : NULL;
    int dup = trusted(pfd, true) ? fcntl(pfd, F_DUPFD_CLOEXEC, 0) : -1;
    DIR *dir = dup >= 0 ? fdopendir(dup) : NULL;
    if (!dir) {
        if (dup >= 0)
            close(dup);
        close(pfd);
        return NULL;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    bool oom = false;                   /* or the listing broke off: the directory is unusable */
    for (;;) {
        errno = 0;
        if (!(e = readdir(dir))) {
            oom = errno != 0;
            break;
        }
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l <= 5 || strcmp(e->d_name + l - 5, ".conf") != 0)
            continue;
        char **nv = realloc(names, (n + 1) * sizeof *names);
        char *s = strdup(e->d_name);
        if (!nv || !s) {
            free(s);
            if (nv)
                names = nv;
            oom = true;
            break;
        }
        names = nv;
        names[n++] = s;
    }
    closedir(dir);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    const char *res = oom ? NULL : "";
    for (size_t i = 0; i < n; i++) {
        if (res && !*res && !salvage_file(scratch, pfd, confdir, names[i])) {
            snprintf(unknown, sizeof unknown, "%s/profiles/%s", confdir, names[i]);
            res = unknown;
        }
        free(names[i]);
    }
    free(names);
    close(pfd);
    return res;
}

int ps_broken_config_might_match(const char *confdir, const char *user, char *why, size_t whylen)
{
    struct ps_identity id;
    if (ps_identity_lookup(user, &id) < 0) {
        snprintf(why, whylen, "account lookup failed (%s): cannot tell whether it is sandboxed",
                 strerror(errno));
        return 1;
    }
    struct ps_config *scratch = ps_config_new_empty(confdir);
    const char *unknown = salvage_profiles(scratch, confdir);
    char mwhy[512];
    const struct ps_profile *p = ps_resolve_profile(scratch, &id, mwhy, sizeof mwhy);
    int r;
    if (p) {
        snprintf(why, whylen, "the account is sandboxed (%s)", mwhy);
        r = 1;
    } else if (id.uid == 0) {
        snprintf(why, whylen, "root is never refused for a broken configuration");
        r = 0;
    } else if (!unknown) {
        snprintf(why, whylen, "%s or %s/profiles is unreadable or not trusted: cannot tell "
                 "which accounts are sandboxed", confdir, confdir);
        r = 1;
    } else if (*unknown) {
        snprintf(why, whylen, "cannot tell whom %s matches (unreadable, not trusted, or its "
                 "[Match] is invalid)", unknown);
        r = 1;
    } else {
        snprintf(why, whylen, "no profile's [Match] matches %s", user);
        r = 0;
    }
    ps_config_free(scratch);
    ps_identity_free(&id);
    return r;
}
