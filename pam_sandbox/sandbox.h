/* Internal interfaces of pam_sandbox.so (DESIGN.md §4).  Each step of pam_sm_open_session lives in
 * its own file; every step returns 0, or -1 with a one-line cause in err that the caller hands to
 * pam_syslog (the cause names the step, the resource or syscall, and errno). */
#ifndef PS_SANDBOX_H
#define PS_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <seccomp.h>
#include <security/pam_modules.h>
#include "common/config.h"
#include "common/resolve.h"

/* Step 3: HTTP(S)_PROXY, NO_PROXY, the CA variables and, with inference, the SDK variables. */
int ps_session_env(pam_handle_t *pamh, const struct ps_config *cfg, const struct ps_profile *p,
                   char *err, size_t errlen);

/* Step 4: every Limit* of the profile, soft and hard (while root, so the user cannot raise a hard
 * limit later), then the umask. */
int ps_apply_rlimits(const struct ps_profile *p, char *err, size_t errlen);
void ps_apply_umask(const struct ps_profile *p);

/* Step 5: drop every capability from the bounding set except those the profile keeps, and clear
 * the ambient and inheritable sets (which the bounding set alone does not cover). */
int ps_drop_capabilities(const struct ps_profile *p, char *err, size_t errlen);

/* Step 7: the two seccomp filters (DESIGN.md §4.2-4.3).  Build both without loading them, so that
 * a unit test can load them in a forked child.  On success both contexts are set (release them
 * with seccomp_release). */
int ps_seccomp_build(const struct ps_profile *p, scmp_filter_ctx *clone3_filter,
                     scmp_filter_ctx *main_filter, char *err, size_t errlen);
/* Load clone3_filter first, then main_filter, into the calling process (all its threads). */
int ps_seccomp_load(scmp_filter_ctx clone3_filter, scmp_filter_ctx main_filter, char *err,
                    size_t errlen);
/* Build and load; releases the contexts. */
int ps_seccomp_install(const struct ps_profile *p, char *err, size_t errlen);

/* The errno each kind of denial returns (also what tests expect). */
#define PS_ERRNO_FAMILY  EAFNOSUPPORT   /* socket families and netlink protocols (§9.2) */
#define PS_ERRNO_SYSCALL EPERM          /* the §4.2 syscall list and DenySyscalls= */
#define PS_ERRNO_CLONE3  ENOSYS         /* so that glibc falls back to clone(2) */

/* A configuration that did not load: decide whether user might be one of the sandboxed accounts.
 * Returns 1 (matched by a profile file's [Match], or it cannot be told: refuse), 0 (no profile
 * file could match this account: leave it alone).  why receives the reason for the log. */
int ps_broken_config_might_match(const char *confdir, const char *user, char *why, size_t whylen);

#endif
