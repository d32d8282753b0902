/* sandboxctl apply: validate -> load table inet pam_sandbox atomically -> add the UID of every
 * account that currently matches a profile -> SIGHUP a running proxyd (found by its pid file,
 * /run/pam_sandbox/proxyd.pid, the default of sandbox-proxyd -p; --proxyd-pidfile overrides).
 * UIDs already in the set stay there: a session that was confined keeps being steered even when
 * its account no longer matches (`sandboxctl flush` empties everything). */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/resolve.h"
#include "common/util.h"
#include "common/sockdiag.h"
#include "ctl/ctl.h"
#include "netfilter/nft.h"

#define PROXYD_PIDFILE "/run/pam_sandbox/proxyd.pid"

struct account {
    char *name;
    uid_t uid;
};

/* Names first, resolution after endpwent(): resolution calls getpwnam/getgrouplist, which must
 * not run in the middle of a getpwent() walk. */
static struct account *all_accounts(size_t *n)
{
    struct account *v = NULL;
    size_t cap = 0;
    *n = 0;
    setpwent();
    struct passwd *pw;
    while ((pw = getpwent()) != NULL) {
        struct account *a = ps_vec_push(&v, n, &cap, sizeof *v);
        a->name = ps_xstrdup(pw->pw_name);
        a->uid = pw->pw_uid;
    }
    endpwent();
    return v;
}

/* UIDs of the accounts that match a profile, without root and proxyd's account (announced). */
static uid_t *matching_uids(const struct ps_config *cfg, size_t *n, size_t *failed)
{
    size_t na, cap = 0;
    struct account *acc = all_accounts(&na);
    uid_t *uids = NULL;
    *n = 0;
    struct passwd *proxy = getpwnam(cfg->global.proxy_user);
    uid_t proxy_uid = proxy ? proxy->pw_uid : (uid_t)-1;
    if (!proxy)
        fprintf(stderr, "sandboxctl: warning: [Proxy] User=%s: no such account; proxyd cannot run "
                "as it, so sandboxed TCP is refused until it exists\n", cfg->global.proxy_user);
    struct ps_identity *id = ps_xcalloc(1, sizeof *id);
    for (size_t i = 0; i < na; i++) {
        if (ps_identity_lookup(acc[i].name, id) < 0) {
            /* cannot tell whether it is sandboxed: its logins are refused until it can be told,
             * but its running sessions stay as steered as the record of logins makes them */
            fprintf(stderr, "sandboxctl: %s (uid %u): account lookup failed (%s): not added\n",
                    acc[i].name, (unsigned)acc[i].uid, strerror(errno));
            (*failed)++;
            continue;
        }
        char why[512];
        const struct ps_profile *p = ps_resolve_profile(cfg, id, why, sizeof why);
        if (p && (id->uid == 0 || id->uid == proxy_uid))
            fprintf(stderr, "sandboxctl: %s (uid %u) matches profile %s but is %s: never steered\n",
                    acc[i].name, (unsigned)id->uid, p->name,
                    id->uid == 0 ? "root" : "proxyd's own account");
        else if (p) {
            bool dup = false;
            for (size_t j = 0; j < *n && !dup; j++)
                dup = uids[j] == id->uid;
            if (!dup) {
                uid_t *slot = ps_vec_push(&uids, n, &cap, sizeof *uids);
                *slot = id->uid;
                printf("  %s (uid %u): profile %s\n", acc[i].name, (unsigned)id->uid, p->name);
            }
        }
        ps_identity_free(id);
        memset(id, 0, sizeof *id);
    }
    free(id);
    for (size_t i = 0; i < na; i++)
        free(acc[i].name);
    free(acc);
    return uids;
}

/* The UIDs logins added since boot that are not in uids[] yet: after the table was flushed
 * (Debian's nftables.service does so on stop, start and reload), sessions of accounts that NSS does
 * not list or that no longer match a profile must be steered again.  Root and proxyd's account are
 * never in the record (the login refused them); if proxyd's account changed since, it is skipped. */
static int add_recorded(const struct ps_config *cfg, uid_t **uids, size_t *n, size_t *added,
                        char *err, size_t errlen)
{
    uid_t *rec;
    size_t nrec, cap = *n;
    *added = 0;
    if (ps_nft_recorded_uids(&rec, &nrec, err, errlen) < 0)
        return -1;
    struct passwd *proxy = getpwnam(cfg->global.proxy_user);
    for (size_t i = 0; i < nrec; i++) {
        bool dup = rec[i] == 0 || (proxy && rec[i] == proxy->pw_uid);
        for (size_t j = 0; j < *n && !dup; j++)
            dup = (*uids)[j] == rec[i];
        if (dup)
            continue;
        *(uid_t *)ps_vec_push(uids, n, &cap, sizeof **uids) = rec[i];
        (*added)++;
        printf("  uid %u: steered by a session since boot\n", (unsigned)rec[i]);
    }
    free(rec);
    return 0;
}

/* 1 signalled, 0 not running, -1 error (message printed). */
static int reload_proxyd(const char *pidfile)
{
    FILE *f = fopen(pidfile, "re");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        fprintf(stderr, "sandboxctl: %s: %s\n", pidfile, strerror(errno));
        return -1;
    }
    long pid = 0;
    int got = fscanf(f, "%ld", &pid);
    fclose(f);
    if (got != 1 || pid <= 1) {
        fprintf(stderr, "sandboxctl: %s: no process id in it\n", pidfile);
        return -1;
    }
    /* A stale pid file may name a recycled pid: signal only a process that is sandbox-proxyd. */
    char path[64], comm[64] = "";
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    f = fopen(path, "re");
    if (!f)
        return 0;
    if (!fgets(comm, sizeof comm, f))
        comm[0] = '\0';
    fclose(f);
    comm[strcspn(comm, "\n")] = '\0';
    if (strcmp(comm, "sandbox-proxyd") != 0)
        return 0;
    if (kill((pid_t)pid, SIGHUP) < 0) {
        fprintf(stderr, "sandboxctl: kill(%ld, SIGHUP): %s\n", pid, strerror(errno));
        return -1;
    }
    printf("proxyd (pid %ld) asked to reload its configuration\n", pid);
    return 1;
}

static void warn_unmarked(void *arg, const struct ps_bound_socket *s, const char *where,
                          const char *key, const struct ps_origin *origin)
{
    (void)arg;
    (void)origin;
    fprintf(stderr, "sandboxctl: warning: %s (%s=) is held by a socket without proxyd's mark "
            "(uid %u, inode %llu): everything steered there is refused; stop a squatter, restart "
            "sandbox-proxyd (sandboxctl doctor says more)\n", where, key, (unsigned)s->uid,
            (unsigned long long)s->inode);
}

int cmd_apply(const struct ctl_opts *o, int argc, char **argv)
{
    const char *pidfile = PROXYD_PIDFILE;
    static const struct option longopts[] = {
        { "proxyd-pidfile", required_argument, NULL, 'p' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+p:", longopts, NULL)) != -1) {
        if (c != 'p') {
            fprintf(stderr, "usage: sandboxctl [-c DIR] apply [--proxyd-pidfile PATH]\n");
            return 2;
        }
        pidfile = optarg;
    }
    if (optind != argc) {
        fprintf(stderr, "usage: sandboxctl [-c DIR] apply [--proxyd-pidfile PATH]\n");
        return 2;
    }
    struct ps_config *cfg = ctl_load_config(o);
    if (!cfg)
        return 1;
    struct ps_diags d = { 0 };
    if (ps_nft_load(cfg, &d) < 0) {
        ps_diags_print(&d, stderr);
        /* the messages above say whether the previous ruleset stayed in force */
        fprintf(stderr, "sandboxctl: apply failed\n");
        ps_diags_free(&d);
        ps_config_free(cfg);
        return 1;
    }
    uint32_t version = 0;
    ps_nft_config_version(cfg, &version, &d);
    ps_diags_free(&d);
    printf("table inet pam_sandbox loaded (version 0x%08x)\n", version);

    size_t n;
    size_t lookups_failed = 0;
    uid_t *uids = matching_uids(cfg, &n, &lookups_failed);
    char err[512];
    int rc = 0;
    size_t n_matching = n, n_recorded = 0;
    if (lookups_failed)
        rc = 1;
    if (add_recorded(cfg, &uids, &n, &n_recorded, err, sizeof err) < 0) {
        fprintf(stderr, "sandboxctl: %s\n", err);
        rc = 1;
    }
    if (ps_nft_add_uids(cfg, uids, n, err, sizeof err) < 0) {
        fprintf(stderr, "sandboxctl: %s\n", err);
        rc = 1;
    } else {
        printf("%zu account%s in the set of sandboxed UIDs (%zu matching a profile now, %zu more "
               "from sessions since boot)\n", n, n == 1 ? "" : "s", n_matching, n_recorded);
    }
    free(uids);
    /* The ruleset just loaded refuses traffic to proxyd's ports unless the socket there carries
     * proxyd's mark: say so now if one does not (a squatter, or a proxyd started by a version
     * without the mark, which needs a restart, not the reload below). */
    ctl_unmarked_listeners(cfg, warn_unmarked, NULL);
    int r = reload_proxyd(pidfile);
    if (r == 0)
        printf("proxyd is not running (%s): nothing to reload\n", pidfile);
    else if (r < 0)
        rc = 1;
    ps_config_free(cfg);
    return rc;
}
