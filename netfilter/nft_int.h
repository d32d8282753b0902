/* Internals of netfilter/: shared by the renderer, the loader and the UID and status calls. */
#ifndef PS_NFT_INT_H
#define PS_NFT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "common/config.h"

#define PS_NFT_TABLE "inet pam_sandbox"

/* The rendered ruleset with, for each of its lines, the config line it came from (NULL file when
 * it came from no config line), so that an error nftables reports on line N of the buffer can be
 * given back to the admin as FILE:LINE. */
struct ps_nft_rendered {
    char *text;                   /* complete "table inet pam_sandbox { ... }" */
    char *skeleton;               /* declarations only (sets, counters, empty base chains) */
    uint32_t version;             /* hash of the rules, also the element of set "version" */
    uid_t proxy_uid;
    struct ps_origin *line_origin; size_t n_lines;   /* per line of text, 1-based index - 1 */
};

int ps_nft_render_full(const struct ps_config *cfg, struct ps_nft_rendered *r, struct ps_diags *diags);
void ps_nft_rendered_free(struct ps_nft_rendered *r);

/* proxyd's account (from [Proxy] User=): 0 with *uid (PS_NFT_NO_UID when there is no such
 * account), or -1 with a message in err when NSS fails. */
#define PS_NFT_NO_UID ((uid_t)-1)
int ps_nft_proxy_uid(const struct ps_config *cfg, uid_t *uid, char *err, size_t errlen);

/* Run nft commands from buf in one libnftables call (one transaction for the batch commands).
 * out (may be NULL) receives the command's malloc'd output; err receives libnftables' error text
 * (first line of it when errlen is small).  Returns 0 or -1. */
int ps_nft_run(const char *buf, char **out, char *err, size_t errlen);

/* Same, with libnftables' whole error text (malloc'd, for line mapping) instead of a line. */
int ps_nft_run_capture(const char *buf, char **out, char **errtext);
/* The same for a whole ruleset, passed as a file so that errors name "FILE:LINE:COL". */
int ps_nft_run_file_capture(const char *buf, char **errtext);
void ps_nft_error_line(const char *errtext, char *err, size_t errlen);

/* Is table inet pam_sandbox loaded?  1 yes, 0 no, -1 cannot ask (err). */
int ps_nft_table_present(char *err, size_t errlen);

/* Where config-level messages without a line go: sandbox.conf of cfg's directory. */
const char *ps_nft_global_file(const struct ps_config *cfg);

#endif
