/* pam_sandbox.so entry points and arguments (DESIGN.md §4.1).  open_session runs in the root
 * process that stays the parent of the whole session (§9.1), so everything done here (limits,
 * bounding set, no_new_privs, seccomp) is inherited by every process of the session.
 *
 * Failure policy: any failure for a matched account returns PAM_SYSTEM_ERR, never
 * PAM_SESSION_ERR, because sudo treats PAM_SESSION_ERR as non-fatal and would run the command
 * unconfined (§9.3). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <sys/prctl.h>
#include "common/config.h"
#include "common/resolve.h"
#include "netfilter/nft.h"
#include "pam_sandbox/sandbox.h"

struct args {
    const char *confdir;
    bool debug;
};

static void parse_args(pam_handle_t *pamh, int argc, const char **argv, struct args *a)
{
    a->confdir = PS_DEFAULT_CONFDIR;
    a->debug = false;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "conf=", 5) == 0 && argv[i][5] == '/')
            a->confdir = argv[i] + 5;
        else if (strncmp(argv[i], "conf=", 5) == 0)
            pam_syslog(pamh, LOG_ERR, "conf= needs an absolute path; ignored, using %s: %s",
                       PS_DEFAULT_CONFDIR, argv[i]);
        else if (strcmp(argv[i], "debug") == 0)
            a->debug = true;
        else /* like pam_limits: say so and go on; a typo must not lock everyone out */
            pam_syslog(pamh, LOG_ERR, "unknown argument ignored: %s", argv[i]);
    }
}

/* The first diagnostic of a failed load, as "FILE:LINE: message", for the log. */
static void first_diag(const struct ps_diags *d, char *out, size_t outlen)
{
    if (d->n == 0)
        snprintf(out, outlen, "configuration did not load (no diagnostic)");
    else if (d->v[0].line)
        snprintf(out, outlen, "%s:%u: %s%s", d->v[0].file, d->v[0].line, d->v[0].msg,
                 d->n > 1 ? " (and more; run sandboxctl check)" : "");
    else
        snprintf(out, outlen, "%s: %s%s", d->v[0].file, d->v[0].msg,
                 d->n > 1 ? " (and more; run sandboxctl check)" : "");
}

/* Config failed to load: refuse whoever might be sandboxed (fail closed), leave others alone. */
static int broken_config(pam_handle_t *pamh, const struct args *a, const char *user,
                         const struct ps_diags *d)
{
    char cause[1024], why[512];
    first_diag(d, cause, sizeof cause);
    if (ps_broken_config_might_match(a->confdir, user, why, sizeof why)) {
        pam_syslog(pamh, LOG_ERR, "refusing session of %s: configuration in %s is invalid: %s; %s",
                   user, a->confdir, cause, why);
        return PAM_SYSTEM_ERR;
    }
    pam_syslog(pamh, LOG_WARNING, "configuration in %s is invalid: %s; %s: session not confined",
               a->confdir, cause, why);
    return PAM_IGNORE;
}

/* Steps 2-7 for a matched account.  Returns 0, or -1 with the cause in err. */
static int confine(pam_handle_t *pamh, const struct args *a, const struct ps_config *cfg,
                   const struct ps_profile *p, const struct ps_identity *id, char *err,
                   size_t errlen)
{
    char step[768];
    /* 2: egress steering first; an account whose traffic is not steered must not get a shell. */
    if (ps_nft_ensure_uid(cfg, id->uid, step, sizeof step) < 0) {
        snprintf(err, errlen, "nftables: cannot add uid %u to the sandboxed set: %s",
                 (unsigned)id->uid, step);
        return -1;
    }
    if (a->debug)
        pam_syslog(pamh, LOG_DEBUG, "uid %u is in the nftables set", (unsigned)id->uid);
    /* 3 */
    if (ps_session_env(pamh, cfg, p, err, errlen) < 0)
        return -1;
    /* 4 */
    if (ps_apply_rlimits(p, err, errlen) < 0)
        return -1;
    ps_apply_umask(p);
    /* 5 */
    if (ps_drop_capabilities(p, err, errlen) < 0)
        return -1;
    /* 6 */
    if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        snprintf(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
        return -1;
    }
    /* 7 */
    if (ps_seccomp_install(p, err, errlen) < 0)
        return -1;
    return 0;
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    struct args a;
    const char *user = NULL;
    parse_args(pamh, argc, argv, &a);

    int r = pam_get_user(pamh, &user, NULL);
    if (r != PAM_SUCCESS || !user || !*user) {
        pam_syslog(pamh, LOG_ERR, "cannot determine the user: %s", pam_strerror(pamh, r));
        return PAM_SYSTEM_ERR;    /* cannot tell whether this account is sandboxed */
    }

    /* 1: config and profile */
    struct ps_diags diags = { 0 };
    struct ps_config *cfg = ps_config_load(a.confdir, &diags);
    if (!cfg) {
        r = broken_config(pamh, &a, user, &diags);
        ps_diags_free(&diags);
        return r;
    }
    ps_diags_free(&diags);

    struct ps_identity id;
    if (ps_identity_lookup(user, &id) < 0) {
        pam_syslog(pamh, LOG_ERR, "refusing session of %s: account lookup failed (%s): cannot "
                   "tell whether it is sandboxed", user, strerror(errno));
        ps_config_free(cfg);
        return PAM_SYSTEM_ERR;
    }
    char why[512], err[1024];
    const struct ps_profile *p = ps_resolve_profile(cfg, &id, why, sizeof why);
    if (!p) {
        if (a.debug)
            pam_syslog(pamh, LOG_DEBUG, "%s", why);
        ps_identity_free(&id);
        ps_config_free(cfg);
        return PAM_IGNORE;
    }
    if (a.debug)
        pam_syslog(pamh, LOG_DEBUG, "user %s: profile %s (%s)", user, p->name, why);

    if (confine(pamh, &a, cfg, p, &id, err, sizeof err) < 0) {
        pam_syslog(pamh, LOG_ERR, "refusing session of %s (profile %s): %s", user, p->name, err);
        r = PAM_SYSTEM_ERR;
    } else {
        pam_syslog(pamh, LOG_INFO, "session of %s confined by profile %s", user, p->name);
        r = PAM_SUCCESS;
    }
    ps_identity_free(&id);
    ps_config_free(cfg);
    return r;
}

/* Runs under the filter open_session installed, in the same process: it must not need anything
 * that filter denies, so it only logs.  The UID stays in the nftables set (other sessions of the
 * account may still run; `sandboxctl apply` rebuilds the set). */
PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    struct args a;
    parse_args(pamh, argc, argv, &a);
    if (a.debug)
        pam_syslog(pamh, LOG_DEBUG, "close_session");
    return PAM_SUCCESS;
}
