/* Loading /etc/pam_sandbox (or -c DIR): which files are read, in what order, and the ownership
 * and mode rules (DESIGN.md §2, like OpenSSH StrictModes).  Every file is opened once and checked
 * with fstat() on the open descriptor, so what is checked is what is read. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/config_int.h"
#include "common/util.h"

struct ps_config *ps_config_new_empty(const char *dir)
{
    struct ps_config *cfg = ps_xcalloc(1, sizeof *cfg);
    cfg->dir = ps_xstrdup(dir ? dir : PS_DEFAULT_CONFDIR);
    ps_global_defaults(&cfg->global);
    return cfg;
}

void ps_config_free(struct ps_config *cfg)
{
    if (!cfg)
        return;
    ps_global_free(&cfg->global);
    for (size_t i = 0; i < cfg->n_profiles; i++)
        ps_profile_free(&cfg->profiles[i]);
    free(cfg->profiles);
    for (size_t i = 0; i < cfg->n_backends; i++)
        ps_backend_free(&cfg->backends[i]);
    free(cfg->backends);
    for (size_t i = 0; i < cfg->n_files; i++)
        free(cfg->files[i]);
    free(cfg->files);
    free(cfg->global_file);
    free(cfg->dir);
    free(cfg);
}

static char *join(const char *a, const char *b)
{
    char *s;
    size_t n = strlen(a);
    if (asprintf(&s, "%s%s%s", a, n && a[n - 1] == '/' ? "" : "/", b) < 0)
        return ps_xstrdup(b);
    return s;
}

enum kind { K_DIR, K_FILE, K_SECRET };

/* Owner root, not group/other-writable; a secret also not other-readable. */
static int check_mode(const struct stat *st, const char *path, enum kind k, struct ps_diags *d)
{
    int bad = 0;
    if (k == K_DIR && !S_ISDIR(st->st_mode)) {
        ps_diags_add(d, path, 0, "not a directory");
        return -1;
    }
    if (k != K_DIR && !S_ISREG(st->st_mode)) {
        ps_diags_add(d, path, 0, "not a regular file");
        return -1;
    }
    if (st->st_uid != 0) {
        ps_diags_add(d, path, 0, "owned by uid %u, not root: configuration must be root-owned",
                     (unsigned)st->st_uid);
        bad = -1;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        ps_diags_add(d, path, 0, "%s (mode %04o): must not be writable by group or others",
                     st->st_mode & S_IWOTH ? "world-writable" : "group-writable",
                     (unsigned)(st->st_mode & 07777));
        bad = -1;
    }
    if (k == K_SECRET && (st->st_mode & S_IROTH)) {
        ps_diags_add(d, path, 0, "readable by others (mode %04o): a key or secret file must not be",
                     (unsigned)(st->st_mode & 07777));
        bad = -1;
    }
    return bad;
}

/* A secret that cannot be opened for lack of permission, while another party vouches for it. */
static bool vouched_elsewhere(unsigned flags, int err)
{
    return (flags & PS_LOAD_SECRETS_ELSEWHERE) && err == EACCES;
}

static int check_secret_file(const char *path, unsigned flags, struct ps_diags *diags)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (vouched_elsewhere(flags, errno))
            return 0;
        ps_diags_add(diags, path, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    int r = fstat(fd, &st) < 0 ? -1 : check_mode(&st, path, K_SECRET, diags);
    close(fd);
    return r;
}

int ps_check_secret_file(const char *path, struct ps_diags *diags)
{
    return check_secret_file(path, 0, diags);
}

/* Open a directory under dfd (or the absolute path when dfd<0) and check it.  ENOENT: returns -1
 * with *missing set and no error. */
static int open_dir(int dfd, const char *name, const char *path, bool *missing,
                    struct ps_diags *d)
{
    struct stat st;
    *missing = false;
    int fd = dfd < 0 ? open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                     : openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            *missing = true;
            return -1;
        }
        ps_diags_add(d, path, 0, "cannot open directory: %s", strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || check_mode(&st, path, K_DIR, d) < 0) {
        close(fd);
        return -2;                          /* checked and bad: do not read it */
    }
    return fd;
}

/* Read a whole checked file into a new buffer.  -1 on error (reported). */
static int read_file(int dfd, const char *name, const char *path, enum kind k, char **buf,
                     size_t *len, bool *missing, struct ps_diags *d)
{
    struct stat st;
    *missing = false;
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT) {
            *missing = true;
            return -1;
        }
        ps_diags_add(d, path, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || check_mode(&st, path, k, d) < 0) {
        close(fd);
        return -1;
    }
    if (st.st_size > PS_MAX_FILE_SIZE) {
        ps_diags_add(d, path, 0, "file is larger than %u bytes", PS_MAX_FILE_SIZE);
        close(fd);
        return -1;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *b = ps_xmalloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap > PS_MAX_FILE_SIZE) {
                ps_diags_add(d, path, 0, "file is larger than %u bytes", PS_MAX_FILE_SIZE);
                break;
            }
            cap *= 2;
            b = ps_xrealloc(b, cap, 1);
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ps_diags_add(d, path, 0, "read error: %s", strerror(errno));
            break;
        }
        if (r == 0) {
            close(fd);
            *buf = b;
            *len = n;
            return 0;
        }
        n += (size_t)r;
    }
    close(fd);
    free(b);
    return -1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in a directory ending in suffix (NULL: every file), sorted bytewise; hidden ones skipped.
 * A directory that cannot be listed whole is an error, reported on path: read as empty, profiles/
 * would mean "nobody is sandboxed", and a caller short of descriptors (su inherits the rlimits of
 * whoever runs it) could pick that outcome for itself. */
static char **list_dir(int fd, const char *suffix, const char *path, size_t *n, bool *failed,
                       struct ps_diags *d)
{
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    *n = 0;
    *failed = false;
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    DIR *dir = dup >= 0 ? fdopendir(dup) : NULL;
    if (!dir) {
        ps_diags_add(d, path, 0, "cannot list directory: %s", strerror(errno));
        if (dup >= 0)
            close(dup);
        *failed = true;
        return NULL;
    }
    struct dirent *e;
    for (;;) {
        errno = 0;
        if (!(e = readdir(dir)))
            break;
        size_t l = strlen(e->d_name), sl = suffix ? strlen(suffix) : 0;
        if (e->d_name[0] == '.')
            continue;
        if (suffix && (l <= sl || strcmp(e->d_name + l - sl, suffix) != 0))
            continue;
        *(char **)ps_vec_push(&v, &cnt, &cap, sizeof *v) = ps_xstrdup(e->d_name);
    }
    if (errno) {
        ps_diags_add(d, path, 0, "cannot list directory: %s", strerror(errno));
        *failed = true;
    }
    closedir(dir);
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_str);
    *n = cnt;
    return v;
}

static unsigned load_dir(struct ps_config *cfg, int dfd, const char *sub, enum ps_file_kind kind,
                         struct ps_diags *d)
{
    unsigned errors = 0;
    bool missing;
    char *path = join(cfg->dir, sub);
    int fd = open_dir(dfd, sub, path, &missing, d);
    if (fd < 0) {
        free(path);
        return missing ? 0 : 1;
    }
    size_t n;
    bool failed;
    char **names = list_dir(fd, ".conf", path, &n, &failed, d);
    errors += failed;
    for (size_t i = 0; i < n; i++) {
        char *fpath = join(path, names[i]), *buf;
        size_t len;
        if (read_file(fd, names[i], fpath, K_FILE, &buf, &len, &missing, d) < 0)
            errors++;
        else {
            if (ps_config_parse_buffer(cfg, kind, fpath, buf, len, d) < 0)
                errors++;
            free(buf);
        }
        free(fpath);
        free(names[i]);
    }
    free(names);
    close(fd);
    free(path);
    return errors;
}

/* ca/ (made by `sandboxctl ca init`): the directory and its files as any config file; private
 * keys (*.key) also not readable by others. */
static unsigned check_ca(struct ps_config *cfg, int dfd, unsigned flags, struct ps_diags *d)
{
    unsigned errors = 0;
    bool missing;
    char *path = join(cfg->dir, "ca");
    int fd = open_dir(dfd, "ca", path, &missing, d);
    if (fd < 0) {
        free(path);
        return missing ? 0 : 1;
    }
    size_t n;
    bool failed;
    char **names = list_dir(fd, NULL, path, &n, &failed, d);
    errors += failed;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        bool key = l > 4 && strcmp(names[i] + l - 4, ".key") == 0;
        char *fpath = join(path, names[i]);
        struct stat st;
        int f = openat(fd, names[i], O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (f < 0) {
            if (!(key && vouched_elsewhere(flags, errno))) {
                ps_diags_add(d, fpath, 0, "cannot open: %s", strerror(errno));
                errors++;
            }
        } else {
            if (fstat(f, &st) < 0 || check_mode(&st, fpath, key ? K_SECRET : K_FILE, d) < 0)
                errors++;
            close(f);
        }
        free(fpath);
        free(names[i]);
    }
    free(names);
    close(fd);
    free(path);
    return errors;
}

struct ps_config *ps_config_load(const char *dir, struct ps_diags *d)
{
    return ps_config_load_flags(dir, 0, d);
}

struct ps_config *ps_config_load_flags(const char *dir, unsigned flags, struct ps_diags *d)
{
    struct ps_config *cfg = ps_config_new_empty(dir);
    unsigned errors = 0;
    bool missing;
    int dfd = open_dir(-1, NULL, cfg->dir, &missing, d);
    if (dfd < 0) {
        if (missing)
            ps_diags_add(d, cfg->dir, 0, "configuration directory does not exist");
        ps_config_free(cfg);
        return NULL;
    }
    char *gpath = join(cfg->dir, "sandbox.conf"), *buf;
    size_t len;
    if (read_file(dfd, "sandbox.conf", gpath, K_FILE, &buf, &len, &missing, d) == 0) {
        cfg->global_file = ps_xstrdup(gpath);
        if (ps_config_parse_buffer(cfg, PS_FILE_GLOBAL, gpath, buf, len, d) < 0)
            errors++;
        free(buf);
    } else if (!missing) {
        errors++;
    }
    free(gpath);
    errors += load_dir(cfg, dfd, "profiles", PS_FILE_PROFILE, d);
    errors += load_dir(cfg, dfd, "inference.d", PS_FILE_BACKEND, d);
    for (size_t i = 0; i < cfg->n_backends; i++)
        if (cfg->backends[i].api_key_file &&
            check_secret_file(cfg->backends[i].api_key_file, flags, d) < 0)
            errors++;
    errors += check_ca(cfg, dfd, flags, d);
    close(dfd);
    if (errors) {
        ps_config_free(cfg);
        return NULL;
    }
    return cfg;
}
