/* Server-sent events framing of a backend's streamed answer: split the byte stream into events
 * (an event ends at a blank line; lines end in CRLF, LF or CR, per the HTML spec) so each one is
 * forwarded as soon as it is complete, and read an event's data for usage.  Bounded: an event
 * larger than INF_SSE_MAX_EVENT means a broken or hostile backend. */
#include <stdlib.h>
#include <string.h>
#include "common/util.h"
#include "proxyd/inference_int.h"

/* Forget the event returned last (it stayed valid until this call). */
static void compact(struct inf_sse *s)
{
    if (!s->off)
        return;
    memmove(s->buf, s->buf + s->off, s->len - s->off);
    s->len -= s->off;
    s->scan -= s->off;
    s->off = 0;
}

int inf_sse_feed(struct inf_sse *s, const char *data, size_t len)
{
    compact(s);
    if (len > INF_SSE_MAX_EVENT || s->len + len > INF_SSE_MAX_EVENT)
        return -1;
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + len)
            cap *= 2;
        s->buf = ps_xrealloc(s->buf, cap, 1);
        s->cap = cap;
    }
    if (len)
        memcpy(s->buf + s->len, data, len);
    s->len += len;
    return 0;
}

/* The length of the first event (through the break that ends its empty line), or 0. */
static size_t find_end(struct inf_sse *s)
{
    int prev = s->prev;
    size_t i;
    for (i = s->scan; i < s->len; i++) {
        char c = s->buf[i];
        if (prev == 'r' && c == '\n') {        /* the LF of a CRLF whose CR ended a line */
            prev = 0;
            continue;
        }
        if (c != '\r' && c != '\n') {
            prev = 'x';
            continue;
        }
        if (prev == 'x') {                     /* the end of a non-empty line */
            prev = c == '\r' ? 'r' : 0;
            continue;
        }
        /* The end of an empty line: the event is complete.  A CR may still have its LF to come,
         * which belongs to this event; wait for the next byte rather than start the next event
         * with a stray line break. */
        if (c == '\r') {
            if (i + 1 >= s->len)
                break;
            if (s->buf[i + 1] == '\n')
                i++;
        }
        s->scan = i + 1;       /* the next event starts here (compact() rebases it) */
        s->prev = 0;
        return i + 1;
    }
    s->scan = i;
    s->prev = prev;
    return 0;
}

size_t inf_sse_next(struct inf_sse *s, const char **ev)
{
    compact(s);
    size_t n = find_end(s);
    *ev = s->buf;
    if (n)
        s->off = n;
    return n;
}

size_t inf_sse_pending(const struct inf_sse *s)
{
    return s->len - s->off;
}

void inf_sse_free(struct inf_sse *s)
{
    free(s->buf);
    memset(s, 0, sizeof *s);
}

char *inf_sse_data(const char *ev, size_t len, size_t *datalen, char *name, size_t namecap)
{
    char *out = NULL;
    size_t n = 0;
    bool have = false;
    if (namecap)
        name[0] = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && ev[j] != '\r' && ev[j] != '\n')
            j++;
        const char *line = ev + i;
        size_t ll = j - i;
        const char *colon = memchr(line, ':', ll);
        size_t fl = colon ? (size_t)(colon - line) : ll;
        const char *val = colon ? colon + 1 : line + ll;
        size_t vl = colon ? ll - fl - 1 : 0;
        if (vl && *val == ' ') {
            val++;
            vl--;
        }
        if (fl == 4 && memcmp(line, "data", 4) == 0) {
            out = ps_xrealloc(out, n + vl + 2, 1);
            if (have)
                out[n++] = '\n';
            memcpy(out + n, val, vl);
            n += vl;
            out[n] = 0;
            have = true;
        } else if (fl == 5 && memcmp(line, "event", 5) == 0 && namecap) {
            size_t c = vl < namecap - 1 ? vl : namecap - 1;
            memcpy(name, val, c);
            name[c] = 0;
        }
        if (j + 1 < len && ev[j] == '\r' && ev[j + 1] == '\n')
            j++;
        i = j + 1;
    }
    if (!have) {
        free(out);
        return NULL;
    }
    *datalen = n;
    return out;
}
