/* Step 4 of open_session: resource limits and umask.  Both soft and hard limits are set while the
 * process is still root: afterwards the user can lower them but never raise the hard limit
 * (DESIGN.md invariant 3).  RLIMIT_NPROC is not enforced for root, so the root session parent is
 * not hindered; it bites as soon as the session's processes run as the user (§9.6). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include "pam_sandbox/sandbox.h"

int ps_apply_rlimits(const struct ps_profile *p, char *err, size_t errlen)
{
    for (int r = 0; r < RLIM_NLIMITS; r++) {
        const struct ps_limit *l = &p->limits[r];
        if (!l->set)
            continue;
        struct rlimit rl = { .rlim_cur = l->soft, .rlim_max = l->hard };
        if (setrlimit(r, &rl) < 0) {
            const char *n = ps_limit_name(r);
            snprintf(err, errlen, "setrlimit(%s, soft %llu, hard %llu): %s", n ? n : "?",
                     (unsigned long long)l->soft, (unsigned long long)l->hard, strerror(errno));
            return -1;
        }
    }
    return 0;
}

void ps_apply_umask(const struct ps_profile *p)
{
    if (p->umask >= 0)
        umask((mode_t)p->umask);
}
