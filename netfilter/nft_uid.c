/* Adding accounts to the set of sandboxed UIDs: at login (pam_sandbox.so, still root and before
 * its seccomp filter, which denies netlink-netfilter) and from sandboxctl apply. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "netfilter/nft.h"
#include "netfilter/nft_int.h"

/* uid 0 would steer every root daemon of the host (sshd, cron, ...); proxyd's account would have
 * its upstream connections redirected to itself (DESIGN.md §9.8). */
static int steerable(uid_t uid, uid_t proxy_uid, const char *proxy_user, char *err, size_t errlen)
{
    if (uid == 0) {
        snprintf(err, errlen, "uid 0 is never steered (every root daemon of the host would be)");
        return -1;
    }
    if (uid == proxy_uid) {
        snprintf(err, errlen, "uid %u is proxyd's own account (User=%s) and is never steered",
                 (unsigned)uid, proxy_user);
        return -1;
    }
    return 0;
}

static int add_elements(const uid_t *uids, size_t n, char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    /* users and uidmark (each UID mapped to itself, for the DNS mark) in one transaction.  Per
     * UID at most ", 4294967295" (12) in users and ", 4294967295 : 4294967295" (25) in uidmark. */
    size_t len = 128 + n * 40, off = 0;
    char *cmd = ps_xmalloc(len);
    int k = snprintf(cmd, len, "add element inet pam_sandbox users { ");
    for (size_t i = 0; k >= 0 && (size_t)k < len - off && i <= n; i++) {
        off += (size_t)k;
        k = i < n ? snprintf(cmd + off, len - off, "%s%u", i ? ", " : "", (unsigned)uids[i])
                  : snprintf(cmd + off, len - off, " }; add element inet pam_sandbox uidmark { ");
    }
    for (size_t i = 0; k >= 0 && (size_t)k < len - off && i <= n; i++) {
        off += (size_t)k;
        k = i < n ? snprintf(cmd + off, len - off, "%s%u : %u", i ? ", " : "", (unsigned)uids[i],
                             (unsigned)uids[i])
                  : snprintf(cmd + off, len - off, " }");
    }
    if (k < 0 || (size_t)k >= len - off) {             /* cannot happen with the sizes above */
        free(cmd);
        snprintf(err, errlen, "internal error: nft command too long for %zu UIDs", n);
        return -1;
    }
    int rc = ps_nft_run(cmd, NULL, err, errlen);
    free(cmd);
    return rc;
}

int ps_nft_add_uids(const struct ps_config *cfg, const uid_t *uids, size_t n, char *err, size_t errlen)
{
    uid_t proxy_uid;
    if (ps_nft_proxy_uid(cfg, &proxy_uid, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (steerable(uids[i], proxy_uid, cfg->global.proxy_user, err, errlen) < 0)
            return -1;
    if (add_elements(uids, n, err, errlen) < 0) {
        char why[384];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "cannot add to set users of table inet pam_sandbox: %s", why);
        return -1;
    }
    return 0;
}

/* Every UID a login adds is also recorded here (tmpfs: a reboot ends its sessions too).  Debian's
 * nftables.service flushes the whole ruleset when it stops, starts or reloads, and the table goes
 * with it; apply can list only the accounts NSS enumerates (not sssd's by default) and adds only
 * those that match a profile now.  Running sessions of the others would stay unsteered, so apply
 * re-adds every recorded UID as well. */
#define STEERED_DIR "/run/pam_sandbox/steered"

static int record_uid(uid_t uid, char *err, size_t errlen)
{
    char path[64];
    snprintf(path, sizeof path, STEERED_DIR "/%u", (unsigned)uid);
    if ((mkdir("/run/pam_sandbox", 0755) < 0 && errno != EEXIST) ||
        (mkdir(STEERED_DIR, 0700) < 0 && errno != EEXIST)) {
        snprintf(err, errlen, "cannot record uid %u for sandboxctl apply: mkdir %s: %s",
                 (unsigned)uid, STEERED_DIR, strerror(errno));
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot record uid %u for sandboxctl apply: %s: %s", (unsigned)uid,
                 path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

/* The record's directory: 1 open in *d, 0 none yet, -1 with err. */
static int open_record(DIR **d, char *err, size_t errlen)
{
    *d = opendir(STEERED_DIR);
    if (*d)
        return 1;
    if (errno == ENOENT)
        return 0;
    snprintf(err, errlen, "%s: %s", STEERED_DIR, strerror(errno));
    return -1;
}

int ps_nft_recorded_uids(uid_t **uids, size_t *n, char *err, size_t errlen)
{
    *uids = NULL;
    *n = 0;
    DIR *d;
    int o = open_record(&d, err, errlen);
    if (o <= 0)
        return o;
    size_t cap = 0;
    struct dirent *e;
    for (;;) {
        errno = 0;
        if (!(e = readdir(d)))
            break;
        char *end;
        errno = 0;
        unsigned long v = strtoul(e->d_name, &end, 10);
        if (e->d_name[0] < '1' || e->d_name[0] > '9' || *end || errno || v >= (uid_t)-1)
            continue;                                  /* ".", "..", anything not ours */
        *(uid_t *)ps_vec_push(uids, n, &cap, sizeof **uids) = (uid_t)v;
    }
    int e2 = errno;
    closedir(d);
    if (e2) {
        snprintf(err, errlen, "%s: %s", STEERED_DIR, strerror(e2));
        free(*uids);
        *uids = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

int ps_nft_ensure_uid(const struct ps_config *cfg, uid_t uid, char *err, size_t errlen)
{
    struct ps_diags d = { 0 };
    uint32_t version;
    if (ps_nft_config_version(cfg, &version, &d) < 0) {
        snprintf(err, errlen, "the ruleset cannot be rendered from the configuration: %s:%u: %s",
                 d.n ? d.v[0].file : "?", d.n ? d.v[0].line : 0, d.n ? d.v[0].msg : "?");
        ps_diags_free(&d);
        return -1;
    }
    ps_diags_free(&d);
    uid_t proxy_uid;
    if (ps_nft_proxy_uid(cfg, &proxy_uid, err, errlen) < 0 ||
        steerable(uid, proxy_uid, cfg->global.proxy_user, err, errlen) < 0)
        return -1;

    char cmd[128], why[384];
    snprintf(cmd, sizeof cmd, "get element inet pam_sandbox version { 0x%08x }", version);
    if (ps_nft_run(cmd, NULL, why, sizeof why) < 0) {
        int present = ps_nft_table_present(why, sizeof why);
        if (present == 0)
            snprintf(err, errlen, "table inet pam_sandbox is not loaded, so egress would not be "
                     "steered (run 'sandboxctl apply' or start pam-sandbox-ruleset.service)");
        else if (present > 0)
            snprintf(err, errlen, "the loaded table inet pam_sandbox was rendered from another "
                     "configuration (this one has version 0x%08x); run 'sandboxctl apply'", version);
        else
            snprintf(err, errlen, "cannot read nftables: %s", why);
        return -1;
    }
    /* recorded first: a flush between the two (nftables.service restarting) must find the
     * record when its apply runs, or this session would start unsteered */
    if (record_uid(uid, err, errlen) < 0)
        return -1;
    if (add_elements(&uid, 1, why, sizeof why) < 0) {
        snprintf(err, errlen, "cannot add uid %u to set users of table inet pam_sandbox: %s",
                 (unsigned)uid, why);
        return -1;
    }
    return 0;
}

int ps_nft_forget_recorded(char *err, size_t errlen)
{
    DIR *d;
    int o = open_record(&d, err, errlen);
    if (o <= 0)
        return o;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && unlinkat(dirfd(d), e->d_name, 0) < 0 && rc == 0) {
            snprintf(err, errlen, "%s/%s: %s", STEERED_DIR, e->d_name, strerror(errno));
            rc = -1;
        }
    closedir(d);
    return rc;
}
