/* Loading the table atomically (sandboxctl apply) and removing it (sandboxctl flush).
 *
 * One libnftables buffer, one transaction: declare the table, its sets and its base chains (a
 * no-op for what exists), flush the chains and the version set, and add the new rules.  The
 * set of sandboxed UIDs is declared but never flushed or deleted, so UIDs added by a login that
 * races with the reload are kept (deleting and re-creating the table would lose them, and that
 * session would run unsteered).  If the kernel refuses anything, nothing changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "netfilter/nft.h"
#include "netfilter/nft_int.h"

static const char flushes[] =
    "flush chain inet pam_sandbox steer\n"
    "flush chain inet pam_sandbox egress\n"
    "flush chain inet pam_sandbox leave\n"
    "flush chain inet pam_sandbox remapped\n"
    "flush chain inet pam_sandbox refuse_remapped\n"
    "flush chain inet pam_sandbox listeners\n"
    "flush chain inet pam_sandbox refuse_squatter\n"
    "flush set inet pam_sandbox version\n";

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* libnftables names a file's lines "PATH:N:COL-COL: Error: ..."; N of the first location, or 0. */
static size_t error_line(const char *errtext)
{
    for (const char *p = errtext; (p = strchr(p, ':')); p++) {
        char *end;
        unsigned long n = strtoul(p + 1, &end, 10);
        if (end != p + 1 && *end == ':' && n > 0)
            return n;
    }
    return 0;
}

/* Line n (1-based) of buf, trimmed, into out. */
static void nth_line(const char *buf, size_t n, char *out, size_t outlen)
{
    out[0] = '\0';
    for (size_t i = 1; buf && *buf && i < n; i++) {
        buf = strchr(buf, '\n');
        buf = buf ? buf + 1 : NULL;
    }
    if (!buf || n == 0)
        return;
    buf += strspn(buf, " \t");
    snprintf(out, outlen, "%.*s", (int)strcspn(buf, "\n"), buf);
}

/* After the commit: the version element and the log rule are really there (DESIGN.md §5.1:
 * "prefix verified to be installed"). */
static int verify_loaded(uint32_t version, char *err, size_t errlen)
{
    char cmd[128], *out = NULL;
    snprintf(cmd, sizeof cmd, "get element inet pam_sandbox version { 0x%08x }", version);
    if (ps_nft_run(cmd, NULL, err, errlen) < 0)
        return -1;
    if (ps_nft_run("list chain inet pam_sandbox egress", &out, err, errlen) < 0) {
        free(out);
        return -1;
    }
    int ok = strstr(out, "log prefix \"" PS_NFT_LOG_PREFIX "\"") != NULL &&
             strstr(out, "reject with tcp reset") != NULL;
    free(out);
    if (!ok) {
        snprintf(err, errlen, "the loaded chain egress lacks its log or reject rule");
        return -1;
    }
    return 0;
}

int ps_nft_load(const struct ps_config *cfg, struct ps_diags *diags)
{
    struct ps_nft_rendered r;
    if (ps_nft_render_full(cfg, &r, diags) < 0)
        return -1;
    size_t head = count_lines(r.skeleton) + count_lines(flushes);
    size_t len = strlen(r.skeleton) + strlen(flushes) + strlen(r.text) + 1;
    char *buf = ps_xmalloc(len);
    snprintf(buf, len, "%s%s%s", r.skeleton, flushes, r.text);

    char *errtext = NULL;
    int rc = ps_nft_run_file_capture(buf, &errtext);
    if (rc < 0) {
        char msg[512];
        ps_nft_error_line(errtext, msg, sizeof msg);
        size_t line = error_line(errtext);
        const struct ps_origin *o = NULL;
        if (line > head && line - head <= r.n_lines && r.line_origin[line - head - 1].file)
            o = &r.line_origin[line - head - 1];
        if (o)
            ps_diags_add(diags, o->file, o->line, "nftables refused the rule rendered from this "
                         "line: %s; the previous ruleset stays in force", msg);
        else {
            char text[160];
            nth_line(buf, line, text, sizeof text);
            ps_diags_add(diags, ps_nft_global_file(cfg), 0, "nftables refused the ruleset at "
                         "\"%s\": %s; the previous ruleset stays in force", text[0] ? text : "?", msg);
        }
    } else {
        char err[512];
        if (verify_loaded(r.version, err, sizeof err) < 0) {
            ps_diags_add(diags, ps_nft_global_file(cfg), 0, "table inet pam_sandbox: %s", err);
            rc = -1;
        }
    }
    free(errtext);
    free(buf);
    ps_nft_rendered_free(&r);
    return rc;
}

int ps_nft_flush(char *err, size_t errlen)
{
    int present = ps_nft_table_present(err, errlen);
    if (present <= 0)
        return present;           /* absent: nothing to do; -1: cannot ask */
    return ps_nft_run("delete table inet pam_sandbox", NULL, err, errlen) < 0 ? -1 : 1;
}
