/* sandboxctl status: is table inet pam_sandbox loaded, is it the one the configuration renders,
 * which UIDs are steered, and how many packets were rejected.  Exit 0 when loaded and current,
 * 1 otherwise (so scripts and monitoring can test it). */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/resolve.h"
#include "common/util.h"
#include "ctl/ctl.h"
#include "netfilter/nft.h"

int cmd_status(const struct ctl_opts *o, int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "usage: sandboxctl [-c DIR] status\n");
        return 2;
    }
    struct ps_nft_status st;
    char err[512];
    if (ps_nft_status_read(&st, err, sizeof err) < 0) {
        fprintf(stderr, "sandboxctl: cannot read nftables: %s\n", err);
        return 1;
    }
    if (!st.loaded) {
        printf("table inet pam_sandbox: not loaded (sandboxed logins are refused; run "
               "'sandboxctl apply')\n");
        return 1;
    }
    int rc = 0;
    printf("table inet pam_sandbox: loaded, version 0x%08x\n", st.version);
    /* Compare with what the configuration renders, quietly when the config is broken. */
    struct ps_diags d = { 0 };
    struct ps_config *cfg = ps_config_load(o->confdir, &d);
    uint32_t want = 0;
    if (cfg && !d.n && ps_nft_config_version(cfg, &want, &d) == 0) {
        if (want == st.version) {
            printf("configuration %s: current\n", o->confdir);
        } else {
            printf("configuration %s: STALE (it renders version 0x%08x; sandboxed logins are "
                   "refused until 'sandboxctl apply')\n", o->confdir, want);
            rc = 1;
        }
    } else {
        printf("configuration %s: invalid (run 'sandboxctl check')\n", o->confdir);
        rc = 1;
    }
    printf("sandboxed UIDs: %zu\n", st.n_uids);
    struct ps_identity *id = ps_xcalloc(1, sizeof *id);
    for (size_t i = 0; i < st.n_uids; i++) {
        struct passwd *pw = getpwuid(st.uids[i]);
        printf("  %u %s", (unsigned)st.uids[i], pw ? pw->pw_name : "(no such account)");
        /* A UID stays in the set after its account stops matching (its sessions may still run). */
        if (cfg && !d.n && ps_identity_lookup_uid(st.uids[i], id) == 0) {
            const struct ps_profile *p = ps_resolve_profile(cfg, id, NULL, 0);
            printf(p ? " (profile %s)" : " (matches no profile now; kept until 'sandboxctl flush')",
                   p ? p->name : "");
            ps_identity_free(id);
            memset(id, 0, sizeof *id);
        }
        putchar('\n');
    }
    free(id);
    ps_config_free(cfg);
    ps_diags_free(&d);
    printf("rejected packets: tcp %llu, udp %llu, other (dropped) %llu\n",
           (unsigned long long)st.rejected_tcp, (unsigned long long)st.rejected_udp,
           (unsigned long long)st.dropped_other);
    printf("refused before proxyd, source port rewritten by conntrack: %llu\n",
           (unsigned long long)st.remapped);
    printf("refused, to proxyd's ports but not proxyd's socket (a port squatter): %llu\n",
           (unsigned long long)st.squatter);
    printf("dropped, leaving by another device than lo (a socket bound to it): %llu\n",
           (unsigned long long)st.off_loopback);
    ps_nft_status_free(&st);
    return rc;
}
