/* The nftables side of pam_sandbox (DESIGN.md §5.1): table inet pam_sandbox. */
#ifndef PS_NFT_H
#define PS_NFT_H

#include <stddef.h>
#include <sys/types.h>
#include "common/config.h"

/* Render the complete ruleset text for cfg (for `sandboxctl apply`, and shown by tests).
 * Returns a malloc'd string or NULL with a "FILE:LINE: message" in diags. */
char *ps_nft_render(const struct ps_config *cfg, struct ps_diags *diags);

/* Replace the table atomically with cfg's ruleset, keeping the UIDs already in the set
 * (one transaction: either the new table is in force or the old one stays). 0 or -1 + diags. */
int ps_nft_load(const struct ps_config *cfg, struct ps_diags *diags);

/* Called by pam_sandbox.so at open_session, while still root and before seccomp: verify that the
 * table is present and was rendered from a config compatible with cfg (version element), and add
 * uid to the set of sandboxed UIDs.  0, or -1 with a message in err (the login is then refused). */
int ps_nft_ensure_uid(const struct ps_config *cfg, uid_t uid, char *err, size_t errlen);

/* Remove the table (sandboxctl flush): 1 removed, 0 there was none, -1 with err. */
int ps_nft_flush(char *err, size_t errlen);

/* ---- additions (netfilter/ owner) ---- */
#include <stdbool.h>
#include <stdint.h>

/* Every rejection and drop is logged (rate-limited) with this prefix, twice: to the kernel log
 * ("log ... flags skuid": the line carries UID=N) and to NFLOG group PS_NFT_NFLOG_GROUP for a
 * userspace reader (ulogd2; the integration tests, since a non-initial network namespace logs
 * nothing to the kernel log unless the host sets net.netfilter.nf_log_all_netns). */
#define PS_NFT_LOG_PREFIX "pam_sandbox reject: "
#define PS_NFT_NFLOG_GROUP 7100

/* The version element the table carries for cfg (a hash of the rendered rules). 0 or -1 + diags. */
int ps_nft_config_version(const struct ps_config *cfg, uint32_t *version, struct ps_diags *diags);

/* The UIDs logins have added since boot (ps_nft_ensure_uid records each), for sandboxctl apply to
 * add again after the table was flushed.  0 (none recorded: *n == 0), or -1 with err. */
int ps_nft_recorded_uids(uid_t **uids, size_t *n, char *err, size_t errlen);
/* Forget them (sandboxctl flush: the admin empties the set on purpose).  0, or -1 with err. */
int ps_nft_forget_recorded(char *err, size_t errlen);

/* Add uids to the set in one transaction (sandboxctl apply).  Refuses uid 0 and proxyd's account
 * (their traffic is never steered).  0, or -1 with a message in err. */
int ps_nft_add_uids(const struct ps_config *cfg, const uid_t *uids, size_t n, char *err, size_t errlen);

/* What `sandboxctl status` shows. */
struct ps_nft_status {
    bool loaded;
    uint32_t version;             /* 0 when the table carries none */
    uid_t *uids; size_t n_uids;   /* the set of sandboxed UIDs */
    uint64_t rejected_tcp, rejected_udp, dropped_other;   /* packets, from the named counters */
    uint64_t remapped;            /* steered flows refused: conntrack rewrote their source port */
    uint64_t squatter;            /* packets refused: to proxyd's ports, not proxyd's socket */
    uint64_t off_loopback;        /* packets dropped: a sandboxed socket bound to another device */
};
int ps_nft_status_read(struct ps_nft_status *st, char *err, size_t errlen);
void ps_nft_status_free(struct ps_nft_status *st);

#endif
