/* Strict HTTP/1.1 head parser and chunked decoder (see http_parse.h for the rules). */
#include <arpa/inet.h>
#include <string.h>
#include "proxyd/http_parse.h"

#define ERR(st, why) do { err->status = (st); err->reason = (why); return HTTP_ERROR; } while (0)

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_field_char(unsigned char c)     /* field-content: VCHAR, obs-text, SP, HTAB */
{
    return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7f);
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

bool http_span_eq(struct http_span s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.n != n || !s.p)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s.p[i]) != lower(lit[i]))
            return false;
    return true;
}

bool http_span_eq_exact(struct http_span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p && s.n == n && memcmp(s.p, lit, n) == 0;
}

/* Find the end of the line starting at buf[pos]: returns the index of its CR (the LF follows),
 * -1 when the buffer ends first (incomplete), -2 on a bare LF or bare CR, -3 when too long. */
static long line_end(const char *buf, size_t len, size_t pos, size_t max)
{
    for (size_t i = pos; i < len; i++) {
        if (buf[i] == '\n')
            return -2;
        if (buf[i] == '\r') {
            if (i + 1 >= len)
                return (i - pos > max) ? -3 : -1;
            if (buf[i + 1] != '\n')
                return -2;
            return (i - pos > max) ? -3 : (long)i;
        }
        if (i - pos >= max)
            return -3;
    }
    return -1;
}

static int parse_version(const char *p, size_t n, int *minor)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.')
        return -1;                                  /* not a version at all: 400 */
    if (p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
        return -1;
    if (p[5] != '1')
        return -2;                                  /* HTTP/2.0, HTTP/0.9, ...: 505 */
    /* RFC 9110 §2.5: a higher minor version is handled as the highest one we implement, so
     * "HTTP/1.7" gets every HTTP/1.1 rule (Host required, chunked allowed), not none of them. */
    *minor = p[7] == '0' ? 0 : 1;
    return 0;
}

/* host[:port] or [v6][:port].  port_required for CONNECT; else default_port when absent. */
static int parse_authority(const char *p, size_t n, bool port_required, uint16_t default_port,
                           struct http_span *host, bool *is_v6, uint16_t *port)
{
    size_t i = 0, hlen;
    *is_v6 = false;
    if (n == 0)
        return -1;
    if (p[0] == '[') {
        const char *close = memchr(p, ']', n);
        if (!close)
            return -1;
        hlen = (size_t)(close - p) - 1;
        if (hlen == 0 || hlen > 45)
            return -1;
        char tmp[46];
        struct in6_addr a6;
        memcpy(tmp, p + 1, hlen);
        tmp[hlen] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1)    /* also rejects zone ids ("%eth0") */
            return -1;
        host->p = p + 1;
        host->n = hlen;
        *is_v6 = true;
        i = hlen + 2;
    } else {
        while (i < n && p[i] != ':') {
            unsigned char c = (unsigned char)p[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_'))
                return -1;                          /* no userinfo, no %-encoding, no sub-delims */
            i++;
        }
        if (i == 0 || i > 253)
            return -1;
        host->p = p;
        host->n = i;
    }
    if (i == n) {
        if (port_required)
            return -1;
        *port = default_port;
        return 0;
    }
    if (p[i] != ':')
        return -1;
    i++;
    if (i == n || n - i > 5)
        return -1;
    unsigned v = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

static int parse_target(struct http_request *r)
{
    const char *t = r->target.p;
    size_t n = r->target.n;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c < 0x21 || c > 0x7e || c == '#')
            return -1;
    }
    if (http_span_eq_exact(r->method, "CONNECT")) {
        r->form = HTTP_FORM_AUTHORITY;
        return parse_authority(t, n, true, 0, &r->host, &r->host_is_v6, &r->port);
    }
    if (n == 1 && t[0] == '*') {
        if (!http_span_eq_exact(r->method, "OPTIONS"))
            return -1;
        r->form = HTTP_FORM_ASTERISK;
        return 0;
    }
    if (t[0] == '/') {
        r->form = HTTP_FORM_ORIGIN;
        r->path = r->target;
        return 0;
    }
    /* absolute-form: scheme "://" authority path-abempty [ "?" query ] */
    const char *sep = NULL;
    for (size_t i = 0; i + 2 < n; i++)
        if (t[i] == ':' && t[i + 1] == '/' && t[i + 2] == '/') {
            sep = t + i;
            break;
        }
    if (!sep)
        return -1;
    r->scheme.p = t;
    r->scheme.n = (size_t)(sep - t);
    uint16_t defport;
    if (http_span_eq(r->scheme, "http"))
        defport = 80;
    else if (http_span_eq(r->scheme, "https"))
        defport = 443;
    else
        return -1;
    const char *auth = sep + 3, *end = t + n;
    const char *slash = auth;
    while (slash < end && *slash != '/' && *slash != '?')
        slash++;
    if (parse_authority(auth, (size_t)(slash - auth), false, defport, &r->host, &r->host_is_v6,
                        &r->port) < 0)
        return -1;
    r->form = HTTP_FORM_ABSOLUTE;
    if (slash == end || *slash == '?') {
        /* "http://h" or "http://h?q": the origin-form path is "/" (the caller prepends it). */
        r->path.p = slash;
        r->path.n = (size_t)(end - slash);
    } else {
        r->path.p = slash;
        r->path.n = (size_t)(end - slash);
    }
    return 0;
}

/* Comma-separated tokens of a Connection header. */
static void scan_connection(struct http_span v, struct http_fields *f)
{
    size_t i = 0;
    while (i < v.n) {
        while (i < v.n && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        size_t s = i;
        while (i < v.n && v.p[i] != ',' && v.p[i] != ' ' && v.p[i] != '\t')
            i++;
        struct http_span tok = { v.p + s, i - s };
        if (http_span_eq(tok, "close"))
            f->conn_close = true;
        else if (http_span_eq(tok, "keep-alive"))
            f->conn_keep_alive = true;
        else if (http_span_eq(tok, "upgrade"))
            f->upgrade = true;
    }
}

/* Header lines from pos up to and including the empty line.  is_request selects error statuses
 * (a bad response head is the upstream's fault: 502). */
static enum http_result parse_fields(const char *buf, size_t len, size_t pos, struct http_fields *f,
                                     size_t *head_len, bool is_request, int minor,
                                     struct http_error *err)
{
    int bad = is_request ? 400 : 502;
    bool seen_te = false, seen_host = false;
    f->n_headers = 0;
    f->content_length = -1;
    f->chunked = f->conn_close = f->conn_keep_alive = f->expect_continue = f->upgrade = false;
    for (;;) {
        if (pos >= HTTP_MAX_HEAD)
            ERR(is_request ? 431 : 502, "head_too_large");
        long e = line_end(buf, len, pos, HTTP_MAX_LINE);
        if (e == -1) {
            if (len >= HTTP_MAX_HEAD)
                ERR(is_request ? 431 : 502, "head_too_large");
            return HTTP_INCOMPLETE;
        }
        if (e == -2)
            ERR(bad, "bare_lf_or_cr");
        if (e == -3)
            ERR(is_request ? 431 : 502, "header_line_too_long");
        size_t end = (size_t)e;
        if (end == pos) {                           /* the empty line: end of head */
            if (end + 2 > HTTP_MAX_HEAD)
                ERR(is_request ? 431 : 502, "head_too_large");
            *head_len = end + 2;
            break;
        }
        const char *l = buf + pos;
        size_t ln = end - pos;
        if (l[0] == ' ' || l[0] == '\t')
            ERR(bad, "obs_fold");
        size_t c = 0;
        while (c < ln && is_tchar((unsigned char)l[c]))
            c++;
        if (c == 0 || c == ln || l[c] != ':')
            ERR(bad, "bad_header_name");
        size_t vs = c + 1, ve = ln;
        while (vs < ve && (l[vs] == ' ' || l[vs] == '\t'))
            vs++;
        while (ve > vs && (l[ve - 1] == ' ' || l[ve - 1] == '\t'))
            ve--;
        for (size_t k = vs; k < ve; k++)
            if (!is_field_char((unsigned char)l[k]))
                ERR(bad, "bad_header_value");
        if (f->n_headers >= HTTP_MAX_HEADERS)
            ERR(is_request ? 431 : 502, "too_many_headers");
        struct http_header *h = &f->headers[f->n_headers++];
        h->name.p = l;
        h->name.n = c;
        h->value.p = l + vs;
        h->value.n = ve - vs;

        if (http_span_eq(h->name, "content-length")) {
            if (f->content_length >= 0)
                ERR(bad, "duplicate_content_length");
            if (h->value.n == 0 || h->value.n > 18)
                ERR(bad, "bad_content_length");
            int64_t v = 0;
            for (size_t k = 0; k < h->value.n; k++) {
                if (h->value.p[k] < '0' || h->value.p[k] > '9')
                    ERR(bad, "bad_content_length");
                v = v * 10 + (h->value.p[k] - '0');
            }
            f->content_length = v;
        } else if (http_span_eq(h->name, "transfer-encoding")) {
            if (seen_te)
                ERR(bad, "duplicate_transfer_encoding");
            seen_te = true;
            if (!http_span_eq(h->value, "chunked"))
                ERR(is_request ? 501 : 502, "unsupported_transfer_encoding");
            f->chunked = true;
        } else if (http_span_eq(h->name, "connection")) {
            scan_connection(h->value, f);
        } else if (is_request && http_span_eq(h->name, "host")) {
            if (seen_host)
                ERR(400, "duplicate_host");
            seen_host = true;
        } else if (is_request && http_span_eq(h->name, "expect")) {
            if (!http_span_eq(h->value, "100-continue"))
                ERR(417, "unsupported_expect");
            f->expect_continue = true;
        }
        pos = end + 2;
    }
    if (f->chunked && f->content_length >= 0)
        ERR(bad, "content_length_with_transfer_encoding");
    if (f->chunked && minor == 0)
        ERR(bad, "transfer_encoding_in_http10");
    if (is_request && minor == 1 && !seen_host)
        ERR(400, "missing_host");
    if (minor == 0 && !f->conn_keep_alive)
        f->conn_close = true;
    return HTTP_OK;
}

enum http_result http_parse_request(const char *buf, size_t len, struct http_request *req,
                                    struct http_error *err)
{
    memset(req, 0, sizeof(*req));
    err->status = 0;
    err->reason = NULL;
    long e = line_end(buf, len, 0, HTTP_MAX_LINE);
    if (e == -1) {
        /* Reject garbage early instead of waiting for a line end that a hostile client never
         * sends: the method so far must be a token. */
        for (size_t i = 0; i < len && buf[i] != ' '; i++)
            if (!is_tchar((unsigned char)buf[i]) && buf[i] != '\r')
                ERR(400, "bad_method");
        return HTTP_INCOMPLETE;
    }
    if (e == -2)
        ERR(400, "bare_lf_or_cr");
    if (e == -3)
        ERR(414, "request_line_too_long");
    size_t ln = (size_t)e;
    const char *sp1 = memchr(buf, ' ', ln);
    if (!sp1 || sp1 == buf)
        ERR(400, "bad_request_line");
    const char *sp2 = memchr(sp1 + 1, ' ', ln - (size_t)(sp1 + 1 - buf));
    if (!sp2 || sp2 == sp1 + 1)
        ERR(400, "bad_request_line");
    if (memchr(sp2 + 1, ' ', ln - (size_t)(sp2 + 1 - buf)))
        ERR(400, "bad_request_line");
    req->method.p = buf;
    req->method.n = (size_t)(sp1 - buf);
    for (size_t i = 0; i < req->method.n; i++)
        if (!is_tchar((unsigned char)buf[i]))
            ERR(400, "bad_method");
    req->target.p = sp1 + 1;
    req->target.n = (size_t)(sp2 - sp1 - 1);
    int v = parse_version(sp2 + 1, ln - (size_t)(sp2 + 1 - buf), &req->minor);
    if (v == -1)
        ERR(400, "bad_version");
    if (v == -2)
        ERR(505, "unsupported_version");
    if (parse_target(req) < 0)
        ERR(400, "bad_target");
    enum http_result r = parse_fields(buf, len, ln + 2, &req->f, &req->head_len, true, req->minor, err);
    if (r != HTTP_OK)
        return r;
    return HTTP_OK;
}

enum http_result http_parse_response(const char *buf, size_t len, struct http_response *resp,
                                     struct http_error *err)
{
    memset(resp, 0, sizeof(*resp));
    err->status = 0;
    err->reason = NULL;
    long e = line_end(buf, len, 0, HTTP_MAX_LINE);
    if (e == -1)
        return HTTP_INCOMPLETE;
    if (e == -2)
        ERR(502, "bare_lf_or_cr");
    if (e == -3)
        ERR(502, "status_line_too_long");
    size_t ln = (size_t)e;
    if (ln < 12 || buf[8] != ' ')
        ERR(502, "bad_status_line");
    int v = parse_version(buf, 8, &resp->minor);
    if (v < 0)
        ERR(502, "bad_version");
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            ERR(502, "bad_status");
        st = st * 10 + (buf[i] - '0');
    }
    if (st < 100 || st > 599)
        ERR(502, "bad_status");
    resp->status = st;
    if (ln > 12) {
        if (buf[12] != ' ')
            ERR(502, "bad_status_line");
        for (size_t i = 13; i < ln; i++)
            if (!is_field_char((unsigned char)buf[i]))
                ERR(502, "bad_reason");
        resp->reason.p = buf + 13;
        resp->reason.n = ln - 13;
    }
    return parse_fields(buf, len, ln + 2, &resp->f, &resp->head_len, false, resp->minor, err);
}

enum http_body_kind http_response_body(const struct http_response *r, const char *method, size_t mlen)
{
    struct http_span m = { method, mlen };
    if (r->status < 200 || r->status == 204 || r->status == 304 || http_span_eq_exact(m, "HEAD"))
        return HTTP_BODY_NONE;
    if (http_span_eq_exact(m, "CONNECT") && r->status < 300)
        return HTTP_BODY_NONE;
    if (r->f.chunked)
        return HTTP_BODY_CHUNKED;
    if (r->f.content_length >= 0)
        return r->f.content_length ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
    return HTTP_BODY_UNTIL_CLOSE;
}

enum http_body_kind http_request_body(const struct http_request *r)
{
    if (r->f.chunked)
        return HTTP_BODY_CHUNKED;
    if (r->f.content_length > 0)
        return HTTP_BODY_LENGTH;
    return HTTP_BODY_NONE;
}

const struct http_header *http_find_header(const struct http_fields *f, const char *name)
{
    for (size_t i = 0; i < f->n_headers; i++)
        if (http_span_eq(f->headers[i].name, name))
            return &f->headers[i];
    return NULL;
}

static bool listed_in_connection(const struct http_fields *f, struct http_span name)
{
    for (size_t h = 0; h < f->n_headers; h++) {
        if (!http_span_eq(f->headers[h].name, "connection"))
            continue;
        struct http_span v = f->headers[h].value;
        size_t i = 0;
        while (i < v.n) {
            while (i < v.n && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
                i++;
            size_t s = i;
            while (i < v.n && v.p[i] != ',' && v.p[i] != ' ' && v.p[i] != '\t')
                i++;
            struct http_span tok = { v.p + s, i - s };
            if (tok.n == name.n && tok.n) {
                bool eq = true;
                for (size_t k = 0; k < tok.n && eq; k++)
                    eq = lower(tok.p[k]) == lower(name.p[k]);
                if (eq)
                    return true;
            }
        }
    }
    return false;
}

bool http_is_hop_by_hop(const struct http_fields *f, struct http_span name)
{
    static const char *const hop[] = { "connection", "keep-alive", "proxy-connection",
        "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding",
        "upgrade" };
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (http_span_eq(name, hop[i]))
            return true;
    return listed_in_connection(f, name);
}

/* ---- chunked ---- */
enum { C_SIZE, C_EXT, C_SIZE_LF, C_DATA, C_DATA_CR, C_DATA_LF, C_TR_START, C_TR_NAME, C_TR_LINE, C_TR_LF,
       C_END_LF, C_DONE, C_ERROR };

void http_chunked_init(struct http_chunked *c)
{
    memset(c, 0, sizeof(*c));
    c->state = C_SIZE;
}

void http_chunked_init_request(struct http_chunked *c)
{
    http_chunked_init(c);
    c->request = true;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Fields that frame or route a message: never accepted from a trailer, where a recipient that
 * merges trailers into the head would let them re-frame the message after the fact. */
static bool trailer_name_is_framing(const struct http_chunked *c)
{
    static const char *const framing[] = { "content-length", "transfer-encoding", "host" };
    for (size_t k = 0; k < sizeof framing / sizeof framing[0]; k++)
        if (c->line_len == strlen(framing[k]) && memcmp(c->tr_name, framing[k], c->line_len) == 0)
            return true;
    return false;
}

/* One more hex digit of a chunk size; false when the size breaks its limit (http_parse.h).  The
 * bound is checked before the size grows, so it can never wrap. */
static bool chunk_size_digit(struct http_chunked *c, int h)
{
    uint64_t max = c->request ? HTTP_CHUNK_MAX_REQUEST : (UINT64_C(1) << 62) - 1;
    if (++c->digits > (c->request ? 8u : 16u) || c->remaining > (max - (uint64_t)h) / 16)
        return false;
    c->remaining = c->remaining * 16 + (uint64_t)h;
    return true;
}

#define CFAIL(why) do { c->state = C_ERROR; c->error = (why); return -1; } while (0)

ssize_t http_chunked_feed(struct http_chunked *c, const char *in, size_t len, char *out,
                          size_t *outlen)
{
    size_t i = 0, o = 0;
    *outlen = 0;
    if (c->state == C_ERROR)
        return -1;
    while (i < len && c->state != C_DONE) {
        char ch = in[i];
        switch (c->state) {
        case C_SIZE: {
            int h = hexval(ch);
            if (h >= 0) {
                if (!chunk_size_digit(c, h))
                    CFAIL("chunk_size_too_large");
                c->line_len++;
                i++;
                break;
            }
            if (c->digits == 0)
                CFAIL("bad_chunk_size");
            if (ch == ';' && c->request)
                CFAIL("chunk_extension_in_request");
            if (ch == ';') {
                c->state = C_EXT;
                c->line_len++;
                i++;
            } else if (ch == '\r') {
                c->state = C_SIZE_LF;
                i++;
            } else {
                CFAIL("bad_chunk_size");
            }
            break;
        }
        case C_EXT:
            if (ch == '\r') {
                c->state = C_SIZE_LF;
            } else if (!is_field_char((unsigned char)ch)) {
                CFAIL("bad_chunk_extension");
            } else if (++c->line_len > HTTP_CHUNK_MAX_LINE) {
                CFAIL("chunk_line_too_long");
            }
            i++;
            break;
        case C_SIZE_LF:
            if (ch != '\n')
                CFAIL("bare_cr");
            i++;
            c->line_len = 0;
            c->digits = 0;
            c->state = c->remaining ? C_DATA : C_TR_START;
            break;
        case C_DATA: {
            size_t take = len - i;
            if ((uint64_t)take > c->remaining)
                take = (size_t)c->remaining;
            if (out) {
                memmove(out + o, in + i, take);
                o += take;
            }
            i += take;
            c->remaining -= take;
            if (c->remaining == 0)
                c->state = C_DATA_CR;
            break;
        }
        case C_DATA_CR:
            if (ch != '\r')
                CFAIL("missing_chunk_crlf");
            c->state = C_DATA_LF;
            i++;
            break;
        case C_DATA_LF:
            if (ch != '\n')
                CFAIL("missing_chunk_crlf");
            c->state = C_SIZE;
            i++;
            break;
        case C_TR_START:
            if (ch == '\r') {
                c->state = C_END_LF;
                i++;
                break;
            }
            c->state = C_TR_NAME;
            c->line_len = 0;
            /* fall through: the byte starts a trailer field's name */
            /* FALLTHROUGH */
        case C_TR_NAME:
            /* A trailer line is a field (name ":" value), as in a head: anything else (a request
             * line, a bare word) would be read differently by the next parser down the line. */
            if (++c->trailer_len > HTTP_CHUNK_MAX_TRAILER)
                CFAIL("trailer_too_large");
            if (ch == ':') {
                if (c->line_len == 0)
                    CFAIL("bad_trailer");
                if (trailer_name_is_framing(c))
                    CFAIL("framing_field_in_trailer");
                c->state = C_TR_LINE;
            } else if (is_tchar((unsigned char)ch)) {
                if (c->line_len < sizeof c->tr_name)
                    c->tr_name[c->line_len] = lower(ch);
                c->line_len++;
            } else {
                CFAIL("bad_trailer");
            }
            i++;
            break;
        case C_TR_LINE:
            if (ch == '\r') {
                c->state = C_TR_LF;
            } else if (!is_field_char((unsigned char)ch) || ch == '\n') {
                CFAIL("bad_trailer");
            } else if (++c->trailer_len > HTTP_CHUNK_MAX_TRAILER) {
                CFAIL("trailer_too_large");
            }
            i++;
            break;
        case C_TR_LF:
            if (ch != '\n')
                CFAIL("bare_cr");
            c->state = C_TR_START;
            i++;
            break;
        case C_END_LF:
            if (ch != '\n')
                CFAIL("bare_cr");
            c->state = C_DONE;
            c->done = true;
            i++;
            break;
        default:
            CFAIL("internal");
        }
    }
    *outlen = o;
    return (ssize_t)i;
}
