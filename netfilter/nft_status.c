/* Reading the loaded table back for sandboxctl status: the set's UIDs, the version element and
 * the named counters of rejected packets.  Parses nft's text listing (default flags print UIDs as
 * numbers). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "netfilter/nft.h"
#include "netfilter/nft_int.h"

/* The numbers inside "elements = { ... }" of a set listing, in base 0 (0x... for marks). */
static int parse_elements(const char *listing, uint64_t **vals, size_t *n)
{
    size_t cap = 0;
    *vals = NULL;
    *n = 0;
    const char *p = strstr(listing, "elements = {");
    if (!p)
        return 0;                 /* empty set */
    p += strlen("elements = {");
    const char *end = strchr(p, '}');
    if (!end) {
        errno = EPROTO;
        return -1;
    }
    while (p < end) {
        if (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n') {
            p++;
            continue;
        }
        char *e;
        errno = 0;
        unsigned long long v = strtoull(p, &e, 0);
        if (e == p || errno) {
            free(*vals);
            *vals = NULL;
            *n = 0;
            errno = EPROTO;
            return -1;
        }
        uint64_t *slot = ps_vec_push(vals, n, &cap, sizeof **vals);
        *slot = v;
        p = e;
    }
    return 0;
}

static int read_counter(const char *name, uint64_t *packets, char *err, size_t errlen)
{
    char cmd[96], *out = NULL;
    snprintf(cmd, sizeof cmd, "list counter inet pam_sandbox %s", name);
    *packets = 0;
    if (ps_nft_run(cmd, &out, err, errlen) < 0) {
        free(out);
        return -1;
    }
    const char *p = strstr(out, "packets ");
    if (p)
        *packets = strtoull(p + 8, NULL, 10);
    free(out);
    return 0;
}

int ps_nft_status_read(struct ps_nft_status *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    int present = ps_nft_table_present(err, errlen);
    if (present < 0)
        return -1;
    if (!present)
        return 0;
    st->loaded = true;

    char *out = NULL;
    uint64_t *vals = NULL;
    size_t n = 0;
    if (ps_nft_run("list set inet pam_sandbox users", &out, err, errlen) < 0 ||
        parse_elements(out, &vals, &n) < 0) {
        if (!out || !*err)
            snprintf(err, errlen, "cannot parse the listing of set users");
        free(out);
        return -1;
    }
    free(out);
    st->uids = ps_xcalloc(n ? n : 1, sizeof *st->uids);
    for (size_t i = 0; i < n; i++)
        st->uids[i] = (uid_t)vals[i];
    st->n_uids = n;
    free(vals);

    out = NULL;
    if (ps_nft_run("list set inet pam_sandbox version", &out, err, errlen) == 0 &&
        parse_elements(out, &vals, &n) == 0 && n > 0)
        st->version = (uint32_t)vals[0];
    free(vals);
    free(out);

    if (read_counter("rejected_tcp", &st->rejected_tcp, err, errlen) < 0 ||
        read_counter("rejected_udp", &st->rejected_udp, err, errlen) < 0 ||
        read_counter("dropped_other", &st->dropped_other, err, errlen) < 0) {
        ps_nft_status_free(st);
        return -1;
    }
    /* a table loaded by an older version has no such counter (status then says STALE anyway) */
    char ignored[256];
    if (read_counter("remapped", &st->remapped, ignored, sizeof ignored) < 0)
        st->remapped = 0;
    if (read_counter("squatter", &st->squatter, ignored, sizeof ignored) < 0)
        st->squatter = 0;
    if (read_counter("off_loopback", &st->off_loopback, ignored, sizeof ignored) < 0)
        st->off_loopback = 0;
    return 0;
}

void ps_nft_status_free(struct ps_nft_status *st)
{
    free(st->uids);
    memset(st, 0, sizeof *st);
}
