/* libFuzzer harness for proxyd/http_parse.c: request heads, response heads and chunked bodies
 * from hostile bytes.  Checks the invariants callers rely on: spans stay inside the input, a
 * parsed head never claims more bytes than given, the chunked decoder never writes past its
 * input length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "proxyd/http_parse.h"

static void check_span(struct http_span s, const char *b, size_t n)
{
    if (s.p && (s.p < b || s.p + s.n > b + n))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *b = (const char *)data;
    static struct http_request rq;
    static struct http_response rs;
    struct http_error e;
    if (http_parse_request(b, size, &rq, &e) == HTTP_OK) {
        if (rq.head_len > size)
            abort();
        check_span(rq.method, b, size);
        check_span(rq.target, b, size);
        check_span(rq.host, b, size);
        check_span(rq.path, b, size);
        for (size_t i = 0; i < rq.f.n_headers; i++) {
            check_span(rq.f.headers[i].name, b, size);
            check_span(rq.f.headers[i].value, b, size);
            (void)http_is_hop_by_hop(&rq.f, rq.f.headers[i].name);
        }
        (void)http_request_body(&rq);
    } else if (e.status == 0 && size > HTTP_MAX_HEAD) {
        abort();                /* incomplete beyond the head limit */
    }
    if (http_parse_response(b, size, &rs, &e) == HTTP_OK) {
        if (rs.head_len > size)
            abort();
        (void)http_response_body(&rs, "GET", 3);
    }
    /* chunked: feed in two pieces, in place on a copy */
    char *copy = malloc(size ? size : 1);
    memcpy(copy, b, size);
    struct http_chunked c;
    if (size & 1)
        http_chunked_init_request(&c);          /* the stricter limits of a forwarded request body */
    else
        http_chunked_init(&c);
    size_t half = size / 2, ol, total = 0;
    ssize_t k = http_chunked_feed(&c, copy, half, copy, &ol);
    if (k >= 0) {
        if ((size_t)k > half || ol > (size_t)k)
            abort();
        total += ol;
        if (!c.done) {
            ssize_t k2 = http_chunked_feed(&c, copy + half, size - half, copy + total, &ol);
            if (k2 >= 0 && ((size_t)k2 > size - half || total + ol > half + (size_t)k2))
                abort();
        }
    }
    if (c.remaining > (c.request ? HTTP_CHUNK_MAX_REQUEST : (UINT64_C(1) << 62) - 1))
        abort();                /* a size beyond its limit was taken */
    free(copy);
    return 0;
}
