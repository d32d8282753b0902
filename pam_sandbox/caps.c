/* Step 5 of open_session: capabilities.  The bounding set caps what any later execve() can grant
 * (setuid-root binaries, file capabilities), so a session keeps only what the profile names.  The
 * ambient set survives execve() of ordinary binaries and the inheritable set is not masked by the
 * bounding set, so both are cleared too.  The root process itself keeps its effective set: it
 * still has to set up the session (setuid to the user, and so on). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include "pam_sandbox/sandbox.h"

int ps_drop_capabilities(const struct ps_profile *p, char *err, size_t errlen)
{
    cap_value_t last = (cap_value_t)cap_max_bits();   /* what the running kernel knows */
    for (cap_value_t c = 0; c < last; c++) {
        if (c < 64 && (p->cap_keep & (1ull << c)))
            continue;
        if (prctl(PR_CAPBSET_DROP, (unsigned long)c, 0, 0, 0) < 0 && errno != EINVAL) {
            char *name = cap_to_name(c);
            snprintf(err, errlen, "prctl(PR_CAPBSET_DROP, %s): %s", name ? name : "?",
                     strerror(errno));
            cap_free(name);
            return -1;
        }
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
        snprintf(err, errlen, "prctl(PR_CAP_AMBIENT_CLEAR_ALL): %s", strerror(errno));
        return -1;
    }
    cap_t caps = cap_get_proc();
    if (!caps || cap_clear_flag(caps, CAP_INHERITABLE) < 0 || cap_set_proc(caps) < 0) {
        snprintf(err, errlen, "clearing the inheritable capability set: %s", strerror(errno));
        if (caps)
            cap_free(caps);
        return -1;
    }
    cap_free(caps);
    return 0;
}
