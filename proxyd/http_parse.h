/* Strict HTTP/1.1 message-head parsing for proxyd (explicit proxy) and inference.local.
 *
 * Everything here is pure: buffers in, spans into those buffers out, no allocation, no I/O, so
 * unit tests and fuzz/fuzz_http.c drive it directly.  Strictness is the point (request smuggling
 * lives in the gaps between two lenient parsers): a bare LF, obs-fold, a control character, a
 * duplicate or malformed Content-Length, Content-Length together with Transfer-Encoding, any
 * Transfer-Encoding but a lone "chunked", oversize lines/heads and too many headers are errors.
 * Every error carries the status an answer should use (400, 414, 417, 431, 501, 505; 502 for a
 * bad response head) and a reason. */
#ifndef PD_HTTP_PARSE_H
#define PD_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP_MAX_HEADERS 100        /* header fields per message head */
#define HTTP_MAX_LINE 8192          /* request/status line and each header line, CRLF excluded */
#define HTTP_MAX_HEAD 65536         /* the whole head, final CRLF included */

struct http_span {
    const char *p;                  /* into the parsed buffer; NULL when absent */
    size_t n;
};

struct http_header {
    struct http_span name, value;   /* value without leading/trailing spaces and tabs */
};

enum http_result {
    HTTP_OK = 0,                    /* a complete head was parsed */
    HTTP_INCOMPLETE = 1,            /* valid so far; read more and call again with the whole buffer */
    HTTP_ERROR = -1,                /* see err */
};

struct http_error {
    int status;                     /* 400, 414, 431, 501, 505 */
    const char *reason;             /* static, e.g. "bare_lf", "duplicate_content_length" */
};

enum http_target_form {
    HTTP_FORM_ORIGIN,               /* "/path?q" */
    HTTP_FORM_ABSOLUTE,             /* "http://host[:port]/path?q" */
    HTTP_FORM_AUTHORITY,            /* "host:port" (CONNECT only) */
    HTTP_FORM_ASTERISK,             /* "*" (OPTIONS only) */
};

/* Fields common to requests and responses. */
struct http_fields {
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t n_headers;
    int64_t content_length;         /* -1: no Content-Length */
    bool chunked;                   /* Transfer-Encoding: chunked */
    bool conn_close;                /* Connection: close (or HTTP/1.0 without keep-alive) */
    bool conn_keep_alive;           /* Connection: keep-alive */
    bool expect_continue;           /* Expect: 100-continue */
    bool upgrade;                   /* Connection: upgrade */
};

struct http_request {
    struct http_span method;
    struct http_span target;        /* as sent */
    enum http_target_form form;
    int minor;                      /* HTTP/1.<minor>: 0 or 1 */
    /* absolute-form and authority-form: the authority, split.  host is without brackets
     * for IPv6 literals (host_is_v6 then).  port: explicit, or 80/443 from the scheme. */
    struct http_span scheme;        /* "http" / "https" (absolute-form), else absent */
    struct http_span host;
    bool host_is_v6;
    uint16_t port;
    struct http_span path;          /* origin-form part of the target ("/" when empty) */
    struct http_fields f;
    size_t head_len;                /* bytes of the head, final CRLF included */
};

struct http_response {
    int minor;
    int status;                     /* 100..599 */
    struct http_span reason;
    struct http_fields f;
    size_t head_len;
};

/* Parse a request head at the start of buf[0..len).  On HTTP_OK, req spans point into buf. */
enum http_result http_parse_request(const char *buf, size_t len, struct http_request *req,
                                    struct http_error *err);

/* Parse a response head.  The caller decides whether a body follows (http_response_has_body). */
enum http_result http_parse_response(const char *buf, size_t len, struct http_response *resp,
                                     struct http_error *err);

/* Body framing of a response to a request with method METHOD (RFC 9112 §6.3). */
enum http_body_kind {
    HTTP_BODY_NONE,                 /* 1xx, 204, 304, HEAD, 2xx to CONNECT */
    HTTP_BODY_LENGTH,               /* Content-Length bytes */
    HTTP_BODY_CHUNKED,
    HTTP_BODY_UNTIL_CLOSE,          /* read until the server closes */
};
enum http_body_kind http_response_body(const struct http_response *r, const char *method, size_t mlen);
/* Body framing of a request: NONE, LENGTH or CHUNKED. */
enum http_body_kind http_request_body(const struct http_request *r);

/* Case-insensitive header lookup: the first field named NAME, or NULL. */
const struct http_header *http_find_header(const struct http_fields *f, const char *name);
bool http_span_eq(struct http_span s, const char *lit);     /* case-insensitive */
bool http_span_eq_exact(struct http_span s, const char *lit);

/* Hop-by-hop fields a proxy must not forward (Connection, Keep-Alive, Proxy-*, TE, Trailer,
 * Transfer-Encoding, Upgrade), plus any field named in a Connection header. */
bool http_is_hop_by_hop(const struct http_fields *f, struct http_span name);

/* ---- chunked transfer coding (RFC 9112 §7.1), streaming ----
 * Feed the body bytes as they arrive.  With out == NULL the decoder only tracks framing (a proxy
 * passing the bytes on verbatim learns where the message ends); otherwise the chunk data is
 * written to out, which may be the input buffer itself (the output never runs ahead of the
 * input).  Limits: chunk-size at most 16 hex digits and below 2^62, chunk line (extensions
 * included) HTTP_CHUNK_MAX_LINE, trailers HTTP_CHUNK_MAX_TRAILER in all.
 * A request body that proxyd passes on as written (http_chunked_init_request) is held to less: a
 * chunk-size of at most 8 hex digits (leading zeros included) and at most HTTP_CHUNK_MAX_REQUEST,
 * no chunk extensions.  The origin reads the same framing proxyd checked, and one that keeps the
 * size in 32 bits (signed or not) or skips extensions its own way cannot read it differently. */
#define HTTP_CHUNK_MAX_LINE 1024
#define HTTP_CHUNK_MAX_TRAILER 8192
#define HTTP_CHUNK_MAX_REQUEST 0x7fffffffu

struct http_chunked {
    int state;
    uint64_t remaining;             /* data bytes left in the current chunk */
    size_t line_len;                /* bytes of the current size/trailer line */
    size_t trailer_len;
    unsigned digits;
    bool in_ext;
    bool request;                   /* the stricter limits of a request body */
    char tr_name[20];               /* a trailer field's name so far, lower case (first 20 bytes) */
    bool done;                      /* the last chunk and the trailers were seen */
    const char *error;              /* static reason once an error happened */
};
void http_chunked_init(struct http_chunked *c);
void http_chunked_init_request(struct http_chunked *c);     /* a request body passed on as written */
/* Returns the number of input bytes consumed (all of len unless the body ended inside it, then the
 * bytes up to and including its final CRLF), or -1 on a framing error (c->error).  *outlen: data
 * bytes written to out (0 when out is NULL). */
ssize_t http_chunked_feed(struct http_chunked *c, const char *in, size_t len, char *out,
                          size_t *outlen);

#endif
