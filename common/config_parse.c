/* The line grammar shared by every config file (DESIGN.md §3): "[Section]", "Key=Value", '#' and
 * ';' comments, a '#' after whitespace starts a comment too (the examples in the design use them).
 * Every line is checked before it is interpreted: length, NUL, control characters, UTF-8.  Every
 * error is reported, and parsing goes on with the next line, so that one run shows them all. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/config_int.h"
#include "common/util.h"

void ps_perr(struct pctx *c, unsigned line, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    ps_diags_add(c->diags, c->file, line, "%s", msg ? msg : "(out of memory)");
    free(msg);
    c->errors++;
}

struct ps_origin ps_origin_at(const struct pctx *c, unsigned line)
{
    struct ps_origin o = { c->origin_file, line };
    return o;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid.  Strict: no overlong
 * forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len;
    unsigned cp;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) { len = 2; cp = s[0] & 0x1f; }
    else if (s[0] >= 0xe0 && s[0] <= 0xef) { len = 3; cp = s[0] & 0x0f; }
    else if (s[0] >= 0xf0 && s[0] <= 0xf4) { len = 4; cp = s[0] & 0x07; }
    else return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* 0 when the raw line is acceptable; otherwise reports and returns -1. */
static int check_line_bytes(struct pctx *c, const char *s, size_t n, unsigned line)
{
    if (n > PS_MAX_LINE) {
        ps_perr(c, line, "line is longer than %d bytes", PS_MAX_LINE);
        return -1;
    }
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == 0) {
            ps_perr(c, line, "NUL byte at column %zu", i + 1);
            return -1;
        }
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            ps_perr(c, line, "control character 0x%02x at column %zu%s", ch, i + 1,
                    ch == '\r' ? " (DOS line ending?)" : "");
            return -1;
        }
        size_t l = utf8_len((const unsigned char *)s + i, n - i);
        if (!l) {
            ps_perr(c, line, "invalid UTF-8 at column %zu", i + 1);
            return -1;
        }
        i += l;
    }
    return 0;
}

static char *trim(char *s)
{
    while (ps_is_space(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && ps_is_space(s[n - 1]))
        s[--n] = 0;
    return s;
}

static const char *const *sections_of(enum ps_file_kind kind)
{
    return kind == PS_FILE_GLOBAL ? ps_global_sections
         : kind == PS_FILE_PROFILE ? ps_profile_sections : ps_backend_sections;
}

static void handle_section(struct pctx *c, char *s, unsigned line)
{
    size_t n = strlen(s);
    c->section = NULL;
    if (n < 2 || s[n - 1] != ']') {
        ps_perr(c, line, "malformed section header '%s' (expected [Name])", s);
        return;
    }
    s[n - 1] = 0;
    const char *name = s + 1;
    const char *const *secs = sections_of(c->kind);
    for (size_t i = 0; secs[i]; i++)
        if (strcmp(secs[i], name) == 0) {
            c->section = secs[i];
            if (strcmp(name, "Match") == 0 && !c->match_line)
                c->match_line = line;
            return;
        }
    char known[256] = "";
    for (size_t i = 0; secs[i]; i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s[%s]", i ? ", " : "",
                 secs[i]);
    ps_perr(c, line, "unknown section [%s] (known here: %s)", name, known);
}

static void handle_assignment(struct pctx *c, char *s, unsigned line, bool *in_unknown)
{
    char *eq = strchr(s, '=');
    if (!eq) {
        ps_perr(c, line, "expected Key=Value or [Section], got '%.60s'", s);
        return;
    }
    *eq = 0;
    char *key = trim(s), *val = trim(eq + 1);
    if (!*key) {
        ps_perr(c, line, "missing key before '='");
        return;
    }
    if (*in_unknown)
        return;                    /* already reported: the unknown section */
    if (!c->section) {
        ps_perr(c, line, "%s= appears before any [Section]", key);
        return;
    }
    const char *elsewhere = NULL;
    for (size_t i = 0; i < c->n_keys; i++) {
        const struct ps_key *k = &c->keys[i];
        if (strcmp(k->name, key) != 0)
            continue;
        if (strcmp(k->section, c->section) != 0) {
            elsewhere = k->section;
            continue;
        }
        if (c->seen[i] && !(k->flags & KEY_REPEAT)) {
            ps_perr(c, line, "duplicate %s= (first set at line %u; it may be set only once)", key,
                    c->seen[i]);
            return;
        }
        c->first = !c->seen[i];
        if (!c->seen[i])
            c->seen[i] = line;
        k->fn(c, k, val, line);
        return;
    }
    if (elsewhere)
        ps_perr(c, line, "unknown key %s= in [%s] (it belongs in [%s])", key, c->section, elsewhere);
    else
        ps_perr(c, line, "unknown key %s= in [%s]", key, c->section);
}

static void parse_lines(struct pctx *c, const char *buf, size_t len)
{
    unsigned line = 0;
    bool in_unknown = false;
    char *copy = ps_xmalloc(PS_MAX_LINE + 1);
    for (size_t off = 0; off < len;) {
        const char *s = buf + off, *nl = memchr(s, '\n', len - off);
        size_t n = nl ? (size_t)(nl - s) : len - off;
        off += n + (nl ? 1 : 0);
        if (++line == 0)
            break;
        if (check_line_bytes(c, s, n, line) < 0)
            continue;
        memcpy(copy, s, n);
        copy[n] = 0;
        /* comments: a line starting with # or ;, or " #..." after content */
        for (char *h = copy; (h = strchr(h, '#')); h++)
            if (h == copy || ps_is_space(h[-1])) {
                *h = 0;
                break;
            }
        char *t = trim(copy);
        if (!*t || *t == ';')
            continue;
        if (*t == '[') {
            handle_section(c, t, line);
            in_unknown = c->section == NULL;
            continue;
        }
        handle_assignment(c, t, line, &in_unknown);
    }
    free(copy);
}

static char *profile_name_of(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".conf") == 0)
        n -= 5;
    return ps_xstrndup(base, n);
}

int ps_config_parse_buffer(struct ps_config *cfg, enum ps_file_kind kind, const char *name,
                           const char *buf, size_t len, struct ps_diags *diags)
{
    struct pctx c = { .cfg = cfg, .kind = kind, .file = name, .diags = diags };
    struct ps_profile prof;
    struct ps_backend be;
    switch (kind) {
    case PS_FILE_GLOBAL:
        c.keys = ps_global_keys;
        c.n_keys = ps_n_global_keys;
        c.origin_file = *(char **)ps_vec_push(&cfg->files, &cfg->n_files, &cfg->cap_files,
                                              sizeof(char *)) = ps_xstrdup(name);
        break;
    case PS_FILE_PROFILE:
        memset(&prof, 0, sizeof prof);
        ps_profile_defaults(&prof);
        prof.file = ps_xstrdup(name);
        prof.name = profile_name_of(name);
        c.p = &prof;
        c.origin_file = prof.file;
        c.keys = ps_profile_keys;
        c.n_keys = ps_n_profile_keys;
        break;
    case PS_FILE_BACKEND:
        memset(&be, 0, sizeof be);
        be.file = ps_xstrdup(name);
        be.name = profile_name_of(name);
        c.b = &be;
        c.origin_file = be.file;
        c.keys = ps_backend_keys;
        c.n_keys = ps_n_backend_keys;
        break;
    default:
        ps_diags_add(diags, name, 0, "internal error: unknown file kind");
        return -1;
    }
    c.seen = ps_xcalloc(c.n_keys, sizeof *c.seen);
    if (len > PS_MAX_FILE_SIZE)
        ps_perr(&c, 0, "file is larger than %u bytes", PS_MAX_FILE_SIZE);
    else
        parse_lines(&c, buf, len);

    if (kind == PS_FILE_GLOBAL) {
        ps_global_finish(&c);
    } else if (kind == PS_FILE_PROFILE) {
        ps_profile_finish(&c);
        if (c.errors)
            ps_profile_free(&prof);
        else {
            cfg->profiles = ps_xrealloc(cfg->profiles, cfg->n_profiles + 1, sizeof prof);
            cfg->profiles[cfg->n_profiles++] = prof;
        }
    } else if (kind == PS_FILE_BACKEND) {
        ps_backend_finish(&c);
        if (c.errors)
            ps_backend_free(&be);
        else {
            cfg->backends = ps_xrealloc(cfg->backends, cfg->n_backends + 1, sizeof be);
            cfg->backends[cfg->n_backends++] = be;
        }
    }
    free(c.seen);
    return c.errors ? -1 : 0;
}
