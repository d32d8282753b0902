/* Strict HTTP/1.1 parsing (proxyd/http_parse.c): every smuggling-shaped input is rejected with the
 * status and reason the proxy answers with; valid heads are split correctly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxyd/http_parse.h"

static enum http_result req(const char *s, struct http_request *r, struct http_error *e)
{
    return http_parse_request(s, strlen(s), r, e);
}

static void expect_error(const char *s, int status, const char *reason)
{
    struct http_request *r = malloc(sizeof(*r));
    struct http_error e;
    enum http_result res = req(s, r, &e);
    if (res != HTTP_ERROR || e.status != status || strcmp(e.reason, reason) != 0)
        fail_msg("input [%s]: res %d status %d reason %s (wanted %d %s)", s, res, e.status,
                 e.reason ? e.reason : "-", status, reason);
    free(r);
}

static void connect_authority_form(void **state)
{
    struct http_request r;
    struct http_error e;
    assert_int_equal(req("CONNECT github.com:443 HTTP/1.1\r\nHost: github.com:443\r\n\r\n", &r, &e), HTTP_OK);
    assert_int_equal(r.form, HTTP_FORM_AUTHORITY);
    assert_true(http_span_eq(r.host, "github.com"));
    assert_int_equal(r.port, 443);
    assert_int_equal(r.head_len, strlen("CONNECT github.com:443 HTTP/1.1\r\nHost: github.com:443\r\n\r\n"));
    assert_int_equal(req("CONNECT [2001:db8::10]:8443 HTTP/1.1\r\nHost: x\r\n\r\n", &r, &e), HTTP_OK);
    assert_true(r.host_is_v6);
    assert_true(http_span_eq(r.host, "2001:db8::10"));
    assert_int_equal(r.port, 8443);
    /* CONNECT needs a port; no userinfo, no zone id, no junk */
    expect_error("CONNECT github.com HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_target");
    expect_error("CONNECT u@github.com:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_target");
    expect_error("CONNECT [fe80::1%eth0]:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_target");
    expect_error("CONNECT github.com:0 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_target");
    expect_error("CONNECT github.com:65536 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_target");
    expect_error("CONNECT github.com: HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_target");
}

static void absolute_form(void **state)
{
    struct http_request r;
    struct http_error e;
    assert_int_equal(req("GET http://Example.COM/a/b?c=d HTTP/1.1\r\nHost: example.com\r\n"
                         "Connection: keep-alive\r\n\r\n", &r, &e), HTTP_OK);
    assert_int_equal(r.form, HTTP_FORM_ABSOLUTE);
    assert_true(http_span_eq(r.host, "example.com"));
    assert_int_equal(r.port, 80);
    assert_true(http_span_eq_exact(r.path, "/a/b?c=d"));
    assert_true(r.f.conn_keep_alive);
    assert_false(r.f.conn_close);
    assert_int_equal(http_request_body(&r), HTTP_BODY_NONE);

    assert_int_equal(req("GET http://10.0.0.1:8080 HTTP/1.0\r\n\r\n", &r, &e), HTTP_OK);
    assert_int_equal(r.port, 8080);
    assert_int_equal(r.path.n, 0);          /* caller sends "/" */
    assert_true(r.f.conn_close);             /* 1.0 without keep-alive */

    expect_error("GET ftp://example.com/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_target");
    expect_error("GET http://user:pw@example.com/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_target");
    expect_error("GET http://exa%6dple.com/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_target");
    expect_error("GET http:///x HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_target");
    expect_error("GET /x#frag HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_target");
    expect_error("GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_target");
}

static void request_line(void **state)
{
    expect_error("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request_line");
    expect_error("GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400, "bad_request_line");
    expect_error("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_method");
    expect_error("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "unsupported_version");
    expect_error("GET / HTTQ/1.1\r\nHost: x\r\n\r\n", 400, "bad_version");
    expect_error("GET / HTTP/1.1\nHost: x\r\n\r\n", 400, "bare_lf_or_cr");
    expect_error("GET / HTTP/1.1\rHost: x\r\n\r\n", 400, "bare_lf_or_cr");
    expect_error("\x16\x03\x01\x02\x00", 400, "bad_method");   /* TLS to the plain port */
    char *big = malloc(HTTP_MAX_LINE + 64);
    strcpy(big, "GET /");
    memset(big + 5, 'a', HTTP_MAX_LINE);
    strcpy(big + 5 + HTTP_MAX_LINE, " HTTP/1.1\r\n\r\n");
    expect_error(big, 414, "request_line_too_long");
    free(big);
}

static void headers_strict(void **state)
{
    expect_error("GET / HTTP/1.1\r\nHost: x\r\nX: a\nY: b\r\n\r\n", 400, "bare_lf_or_cr");
    expect_error("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400, "obs_fold");
    expect_error("GET / HTTP/1.1\r\nHost: x\r\nX : a\r\n\r\n", 400, "bad_header_name");
    expect_error("GET / HTTP/1.1\r\nHost: x\r\nX: a\x01\r\n\r\n", 400, "bad_header_value");
    expect_error("GET / HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n\r\n", 400, "bad_header_value");
    expect_error("GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400, "bad_header_name");
    expect_error("GET / HTTP/1.1\r\n\r\n", 400, "missing_host");
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "duplicate_host");
    expect_error("POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 417, "unsupported_expect");
}

static void framing(void **state)
{
    struct http_request r;
    struct http_error e;
    expect_error("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400,
                 "duplicate_content_length");
    expect_error("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n", 400, "bad_content_length");
    expect_error("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", 400, "bad_content_length");
    expect_error("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1234567890123456789\r\n\r\n", 400,
                 "bad_content_length");
    expect_error("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                 400, "content_length_with_transfer_encoding");
    expect_error("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
                 "unsupported_transfer_encoding");
    expect_error("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                 400, "duplicate_transfer_encoding");
    expect_error("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "transfer_encoding_in_http10");
    assert_int_equal(req("POST /p HTTP/1.1\r\nHost: x\r\ncontent-length: 12\r\n\r\nbody", &r, &e), HTTP_OK);
    assert_int_equal(r.f.content_length, 12);
    assert_int_equal(http_request_body(&r), HTTP_BODY_LENGTH);
    assert_int_equal(req("POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n", &r, &e), HTTP_OK);
    assert_int_equal(http_request_body(&r), HTTP_BODY_CHUNKED);
}

static void limits(void **state)
{
    size_t cap = 200 * 16 + 64;
    char *s = malloc(cap);
    strcpy(s, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < HTTP_MAX_HEADERS; i++)
        strcat(s, "X-A: b\r\n");
    strcat(s, "\r\n");
    expect_error(s, 431, "too_many_headers");
    free(s);

    s = malloc(HTTP_MAX_LINE + 64);
    strcpy(s, "GET / HTTP/1.1\r\nX: ");
    size_t n = strlen(s);
    memset(s + n, 'v', HTTP_MAX_LINE);
    strcpy(s + n + HTTP_MAX_LINE, "\r\n\r\n");
    expect_error(s, 431, "header_line_too_long");
    free(s);

    /* A head that never ends: many short headers up to HTTP_MAX_HEAD, no empty line. */
    s = malloc(HTTP_MAX_HEAD + 64);
    strcpy(s, "GET / HTTP/1.1\r\n");
    n = strlen(s);
    while (n + 12 < HTTP_MAX_HEAD + 32) {
        memcpy(s + n, "Ab: 0123456\r\n", 13);
        n += 13;
    }
    struct http_request r;
    struct http_error e;
    assert_int_equal(http_parse_request(s, n, &r, &e), HTTP_ERROR);
    assert_int_equal(e.status, 431);
    free(s);
}

static void incomplete(void **state)
{
    const char *full = "GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n";
    struct http_request r;
    struct http_error e;
    for (size_t i = 0; i < strlen(full); i++)
        assert_int_equal(http_parse_request(full, i, &r, &e), HTTP_INCOMPLETE);
    assert_int_equal(http_parse_request(full, strlen(full), &r, &e), HTTP_OK);
}

static void hop_by_hop(void **state)
{
    struct http_request r;
    struct http_error e;
    assert_int_equal(req("GET http://h/ HTTP/1.1\r\nHost: h\r\nConnection: close, X-Secret\r\n"
                         "X-Secret: 1\r\nProxy-Authorization: Basic x\r\nAccept: */*\r\n\r\n", &r, &e), HTTP_OK);
    assert_true(r.f.conn_close);
    struct http_span s1 = { "x-secret", 8 }, s2 = { "Proxy-Authorization", 19 }, s3 = { "Accept", 6 };
    assert_true(http_is_hop_by_hop(&r.f, s1));
    assert_true(http_is_hop_by_hop(&r.f, s2));
    assert_false(http_is_hop_by_hop(&r.f, s3));
    assert_non_null(http_find_header(&r.f, "ACCEPT"));
    assert_null(http_find_header(&r.f, "Cookie"));
}

static void responses(void **state)
{
    struct http_response r;
    struct http_error e;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
    assert_int_equal(http_parse_response(s, strlen(s), &r, &e), HTTP_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.head_len, strlen(s) - 3);
    assert_int_equal(http_response_body(&r, "GET", 3), HTTP_BODY_LENGTH);
    assert_int_equal(http_response_body(&r, "HEAD", 4), HTTP_BODY_NONE);
    s = "HTTP/1.1 204\r\n\r\n";
    assert_int_equal(http_parse_response(s, strlen(s), &r, &e), HTTP_OK);
    assert_int_equal(http_response_body(&r, "GET", 3), HTTP_BODY_NONE);
    s = "HTTP/1.0 200 OK\r\n\r\n";
    assert_int_equal(http_parse_response(s, strlen(s), &r, &e), HTTP_OK);
    assert_int_equal(http_response_body(&r, "GET", 3), HTTP_BODY_UNTIL_CLOSE);
    s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(http_parse_response(s, strlen(s), &r, &e), HTTP_OK);
    assert_int_equal(http_response_body(&r, "GET", 3), HTTP_BODY_CHUNKED);
    s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n";
    assert_int_equal(http_parse_response(s, strlen(s), &r, &e), HTTP_ERROR);
    assert_int_equal(e.status, 502);
    s = "HTTP/1.1 20 OK\r\n\r\n";
    assert_int_equal(http_parse_response(s, strlen(s), &r, &e), HTTP_ERROR);
    s = "HTTP/1.1 200 OK\nX: y\r\n\r\n";
    assert_int_equal(http_parse_response(s, strlen(s), &r, &e), HTTP_ERROR);
    s = "HTTP/1.1 100 Continue\r\n\r\n";
    assert_int_equal(http_parse_response(s, strlen(s), &r, &e), HTTP_OK);
    assert_int_equal(http_response_body(&r, "POST", 4), HTTP_BODY_NONE);
}

static void chunked_decode(void **state)
{
    const char *body = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: v\r\n\r\nNEXT";
    /* byte by byte, decoding into a separate buffer */
    struct http_chunked c;
    http_chunked_init(&c);
    char out[64];
    size_t o = 0, i = 0;
    while (!c.done) {
        size_t ol;
        ssize_t k = http_chunked_feed(&c, body + i, 1, out + o, &ol);
        assert_true(k >= 0);
        i += (size_t)k;
        o += ol;
    }
    out[o] = 0;
    assert_string_equal(out, "hello world");
    assert_string_equal(body + i, "NEXT");

    /* all at once, in place */
    char buf[128];
    strcpy(buf, body);
    http_chunked_init(&c);
    size_t ol;
    ssize_t k = http_chunked_feed(&c, buf, strlen(buf), buf, &ol);
    assert_int_equal(k, (ssize_t)(strlen(body) - 4));
    assert_true(c.done);
    assert_int_equal(ol, 11);
    assert_memory_equal(buf, "hello world", 11);

    /* scan only */
    http_chunked_init(&c);
    k = http_chunked_feed(&c, body, strlen(body), NULL, &ol);
    assert_int_equal(k, (ssize_t)(strlen(body) - 4));
    assert_int_equal(ol, 0);

    static const char *const bad[] = { "g\r\n", "\r\n", "5\nhello\r\n", "5\r\nhelloX\r\n",
        "11111111111111111\r\n", "5 ;x\r\n", "0\r\nX: a\nb\r\n\r\n", "5;\x01\r\n" };
    for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
        http_chunked_init(&c);
        k = http_chunked_feed(&c, bad[b], strlen(bad[b]), NULL, &ol);
        if (k != -1)
            fail_msg("accepted bad chunked input %zu", b);
        assert_non_null(c.error);
    }
}

/* A trailer line is a field, and not one that frames or routes the message. */
static void chunked_trailers_strict(void **state)
{
    (void)state;
    struct http_chunked c;
    size_t ol;
    static const struct { const char *in, *why; } bad[] = {
        { "0\r\nGET /admin HTTP/1.1\r\nHost: internal\r\n\r\n", "bad_trailer" },
        { "0\r\n: no-name\r\n\r\n", "bad_trailer" },
        { "0\r\nno-colon\r\n\r\n", "bad_trailer" },
        { "0\r\nContent-Length: 5\r\n\r\n", "framing_field_in_trailer" },
        { "0\r\nTRANSFER-ENCODING: chunked\r\n\r\n", "framing_field_in_trailer" },
        { "0\r\nhost: elsewhere\r\n\r\n", "framing_field_in_trailer" },
    };
    for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
        http_chunked_init(&c);
        ssize_t k = http_chunked_feed(&c, bad[b].in, strlen(bad[b].in), NULL, &ol);
        if (k != -1 || !c.error || strcmp(c.error, bad[b].why) != 0)
            fail_msg("trailer %zu: k=%zd error=%s, wanted %s", b, k, c.error ? c.error : "(none)", bad[b].why);
    }
    /* fields that merely look alike pass, fed one byte at a time */
    const char *ok = "0\r\nContent-Lengthy: 1\r\nX-Host: a\r\nServer-Timing: x;dur=1\r\n\r\n";
    http_chunked_init(&c);
    for (size_t i = 0; ok[i]; i++)
        assert_int_equal(http_chunked_feed(&c, ok + i, 1, NULL, &ol), 1);
    assert_true(c.done);
}

/* Feed IN one byte at a time (limits must hold however the size line is split); the decoder's
 * error, or NULL when all of IN was taken. */
static const char *chunked_feed_bytes(struct http_chunked *c, const char *in)
{
    size_t ol;
    for (size_t i = 0; in[i]; i++)
        if (http_chunked_feed(c, in + i, 1, NULL, &ol) != 1)
            return c->error ? c->error : "(none)";
    return NULL;
}

/* The size limits: below 2^62 in at most 16 digits for a response; for a request body, which the
 * origin gets as written, at most 0x7fffffff in at most 8 digits and no extensions, so that an
 * origin keeping the size in 32 bits reads the framing proxyd checked. */
static void chunked_size_limits(void **state)
{
    (void)state;
    static const struct { bool request; const char *in, *why; } cases[] = {
        { false, "3fffffffffffffff\r\n", NULL },
        { false, "4000000000000000\r\n", "chunk_size_too_large" },       /* 2^62 */
        { false, "400000000000000f\r\n", "chunk_size_too_large" },
        { false, "ffffffffffffffff\r\n", "chunk_size_too_large" },
        { false, "0000000000000001\r\n", NULL },
        { false, "00000000000000001\r\n", "chunk_size_too_large" },      /* 17 digits */
        { false, "100000000\r\n", NULL },
        { false, "5;ext=1\r\n", NULL },
        { true, "7fffffff\r\n", NULL },
        { true, "7FFFFFFF\r\n", NULL },
        { true, "80000000\r\n", "chunk_size_too_large" },
        { true, "ffffffff\r\n", "chunk_size_too_large" },
        { true, "100000000\r\n", "chunk_size_too_large" },              /* 2^32: 0 in 32 bits */
        { true, "00000001\r\n", NULL },
        { true, "000000001\r\n", "chunk_size_too_large" },              /* 9 digits */
        { true, "5;ext=1\r\n", "chunk_extension_in_request" },
        { true, "0;x\r\n\r\n", "chunk_extension_in_request" },
        { true, "5\r\nhello\r\n0\r\nX-T: v\r\n\r\n", NULL },
    };
    int wrong = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_chunked c;
        if (cases[i].request)
            http_chunked_init_request(&c);
        else
            http_chunked_init(&c);
        const char *why = chunked_feed_bytes(&c, cases[i].in);
        if ((why == NULL) != (cases[i].why == NULL) || (why && strcmp(why, cases[i].why) != 0)) {
            print_error("case %zu (%.*s): %s, wanted %s\n", i, (int)strcspn(cases[i].in, "\r"),
                        cases[i].in, why ? why : "accepted", cases[i].why ? cases[i].why : "accepted");
            wrong++;
        }
    }
    assert_int_equal(wrong, 0);
    /* the largest sizes are the values they spell */
    struct http_chunked c;
    http_chunked_init(&c);
    assert_null(chunked_feed_bytes(&c, "3fffffffffffffff\r\n"));
    assert_true(c.remaining == (UINT64_C(1) << 62) - 1);
    http_chunked_init_request(&c);
    assert_null(chunked_feed_bytes(&c, "7fffffff\r\n"));
    assert_true(c.remaining == 0x7fffffff);
}

/* RFC 9110 §2.5: HTTP/1.7 is read as HTTP/1.1, with all of its rules. */
static void higher_minor_is_http11(void **state)
{
    (void)state;
    struct http_request rq;
    struct http_error err;
    const char *s = "GET http://a.example/ HTTP/1.7\r\n\r\n";
    assert_int_equal(http_parse_request(s, strlen(s), &rq, &err), HTTP_ERROR);
    assert_string_equal(err.reason, "missing_host");
    s = "GET http://a.example/ HTTP/1.7\r\nHost: a.example\r\n\r\n";
    assert_int_equal(http_parse_request(s, strlen(s), &rq, &err), HTTP_OK);
    assert_int_equal(rq.minor, 1);
    assert_false(rq.f.conn_close);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(connect_authority_form),
        cmocka_unit_test(absolute_form),
        cmocka_unit_test(request_line),
        cmocka_unit_test(headers_strict),
        cmocka_unit_test(framing),
        cmocka_unit_test(limits),
        cmocka_unit_test(incomplete),
        cmocka_unit_test(hop_by_hop),
        cmocka_unit_test(responses),
        cmocka_unit_test(chunked_decode),
        cmocka_unit_test(chunked_trailers_strict),
        cmocka_unit_test(chunked_size_limits),
        cmocka_unit_test(higher_minor_is_http11),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
