/* One libnftables call, with output and errors captured (never printed by the library: the PAM
 * module has no terminal to print to, and sandboxctl formats errors itself). */
#include <nftables/libnftables.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "netfilter/nft_int.h"

/* as_file: hand libnftables the buffer as a file (a memfd), because only then do its error messages
 * carry "FILE:LINE:COL" — for a plain buffer they carry no line at all. */
static int run(const char *buf, bool as_file, char **out, char **errtext)
{
    if (out)
        *out = NULL;
    if (errtext)
        *errtext = NULL;
    struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!ctx) {
        if (errtext)
            *errtext = ps_xstrdup("cannot create a libnftables context");
        return -1;
    }
    /* Default output flags: UIDs print as numbers (no NFT_CTX_OUTPUT_GUID), which status parses. */
    if (nft_ctx_buffer_output(ctx) < 0 || nft_ctx_buffer_error(ctx) < 0) {
        nft_ctx_free(ctx);
        if (errtext)
            *errtext = ps_xstrdup("cannot buffer libnftables output");
        return -1;
    }
    int rc, fd = as_file ? memfd_create("pam_sandbox.nft", MFD_CLOEXEC) : -1;
    if (fd >= 0) {
        size_t len = strlen(buf), off = 0;
        while (off < len) {
            ssize_t n = write(fd, buf + off, len - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        rc = off == len ? nft_run_cmd_from_filename(ctx, path) : nft_run_cmd_from_buffer(ctx, buf);
        close(fd);
    } else {
        rc = nft_run_cmd_from_buffer(ctx, buf);
    }
    if (out) {
        /* Each get_*_buffer call hands over and resets the buffer: call it once. */
        const char *o = nft_ctx_get_output_buffer(ctx);
        *out = ps_xstrdup(o ? o : "");
    }
    if (errtext && rc != 0) {
        const char *e = nft_ctx_get_error_buffer(ctx);
        *errtext = ps_xstrdup(e && *e ? e : "nftables failed without a message");
    }
    nft_ctx_free(ctx);
    return rc == 0 ? 0 : -1;
}

int ps_nft_run_capture(const char *buf, char **out, char **errtext)
{
    return run(buf, false, out, errtext);
}

int ps_nft_run_file_capture(const char *buf, char **errtext)
{
    return run(buf, true, NULL, errtext);
}

/* The "Error: ..." line of a libnftables error text (the rest repeats the input with carets). */
void ps_nft_error_line(const char *errtext, char *err, size_t errlen)
{
    const char *e = strstr(errtext, "Error: ");
    e = e ? e + 7 : errtext;
    size_t n = strcspn(e, "\n");
    snprintf(err, errlen, "%.*s", (int)n, e);
}

int ps_nft_run(const char *buf, char **out, char *err, size_t errlen)
{
    char *errtext = NULL;
    int rc = ps_nft_run_capture(buf, out, &errtext);
    if (rc < 0 && err && errlen)
        ps_nft_error_line(errtext, err, errlen);
    free(errtext);
    return rc;
}

int ps_nft_table_present(char *err, size_t errlen)
{
    char *out = NULL;
    int rc = ps_nft_run("list tables inet", &out, err, errlen);
    if (rc < 0) {
        free(out);
        return -1;
    }
    /* One "table inet NAME" per line. */
    int present = 0;
    for (const char *p = out; p && *p; p += strcspn(p, "\n") + (p[strcspn(p, "\n")] ? 1 : 0))
        if (strncmp(p, "table inet pam_sandbox", 22) == 0 && (p[22] == '\n' || p[22] == '\0'))
            present = 1;
    free(out);
    return present;
}
