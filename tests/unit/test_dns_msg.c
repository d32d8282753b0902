/* Strict DNS query parser and answer builder (proxyd/dns_msg.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "proxyd/dns_msg.h"

/* A query as dig sends it: id 0x1234, RD, one question, optional OPT. */
static size_t make_query(uint8_t *b, const char *name, uint16_t qtype, bool edns)
{
    size_t o = 0;
    const uint8_t hdr[12] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, edns ? 1 : 0 };
    memcpy(b, hdr, 12);
    o = 12;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        b[o++] = (uint8_t)l;
        memcpy(b + o, p, l);
        o += l;
        p += l + (dot ? 1 : 0);
    }
    b[o++] = 0;
    b[o++] = (uint8_t)(qtype >> 8); b[o++] = (uint8_t)qtype;
    b[o++] = 0; b[o++] = 1;
    if (edns) {
        const uint8_t opt[11] = { 0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0, 0, 0 };
        memcpy(b + o, opt, 11);
        o += 11;
    }
    return o;
}

static void parses_plain_query(void **state)
{
    uint8_t b[512];
    struct dns_query q;
    size_t n = make_query(b, "GitHub.com", DNS_TYPE_A, false);
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_OK);
    assert_int_equal(q.id, 0x1234);
    assert_string_equal(q.name, "GitHub.com");      /* case kept; normalisation is policy's job */
    assert_true(q.name_plain);
    assert_int_equal(q.qtype, DNS_TYPE_A);
    assert_int_equal(q.qclass, DNS_CLASS_IN);
    assert_false(q.edns);
    assert_int_equal(q.question_len, n - 12);
}

static void parses_edns_query(void **state)
{
    uint8_t b[512];
    struct dns_query q;
    size_t n = make_query(b, "example.org", DNS_TYPE_AAAA, true);
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_OK);
    assert_true(q.edns);
    assert_int_equal(q.edns_udp_size, 4096);
    assert_int_equal(q.qtype, DNS_TYPE_AAAA);
}

static void rejects_short_and_responses(void **state)
{
    uint8_t b[512];
    struct dns_query q;
    size_t n = make_query(b, "a.b", DNS_TYPE_A, false);
    assert_int_equal(dns_parse_query(b, 11, &q), DNS_PARSE_DROP);
    assert_int_equal(dns_parse_query(b, 0, &q), DNS_PARSE_DROP);
    b[2] |= 0x80;                                      /* QR: an answer, never answered */
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_DROP);
}

static void rejects_odd_headers(void **state)
{
    uint8_t b[512];
    struct dns_query q;
    size_t n = make_query(b, "a.b", DNS_TYPE_A, false);
    b[5] = 2;                                          /* QDCOUNT 2 */
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_FORMERR);
    b[5] = 0;                                          /* QDCOUNT 0 */
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_FORMERR);
    b[5] = 1; b[7] = 1;                                /* ANCOUNT 1 */
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_FORMERR);
    b[7] = 0; b[4] = 0xff; b[5] = 0xff;                /* huge QDCOUNT */
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_FORMERR);
    b[4] = 0; b[5] = 1; b[10] = 0xff; b[11] = 0xff;    /* huge ARCOUNT */
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_FORMERR);
    b[10] = 0; b[11] = 0; b[2] = 0x01 | (2 << 3);      /* opcode STATUS */
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_NOTIMP);
    b[2] = 0x03;                                       /* TC in a query */
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_FORMERR);
}

static void rejects_truncation_everywhere(void **state)
{
    uint8_t b[512];
    struct dns_query q;
    size_t n = make_query(b, "www.example.com", DNS_TYPE_A, true);
    for (size_t cut = 12; cut < n; cut++)
        assert_int_equal(dns_parse_query(b, cut, &q), DNS_PARSE_FORMERR);
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_OK);
    b[n] = 0;                                          /* one trailing byte */
    assert_int_equal(dns_parse_query(b, n + 1, &q), DNS_PARSE_FORMERR);
}

static void rejects_compression_in_query(void **state)
{
    uint8_t b[64] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                      0xc0, 12, 0, 1, 0, 1 };          /* the name points at itself */
    struct dns_query q;
    assert_int_equal(dns_parse_query(b, 18, &q), DNS_PARSE_FORMERR);
    b[13] = 0;                                         /* points into the header */
    assert_int_equal(dns_parse_query(b, 18, &q), DNS_PARSE_FORMERR);
    b[12] = 0x40;                                      /* obsolete extended label type */
    assert_int_equal(dns_parse_query(b, 18, &q), DNS_PARSE_FORMERR);
}

static void name_decode_follows_backward_pointers_only(void **state)
{
    /* 12..: "a.example" ; 23..: "www" + pointer to 14 ("example") ; 29..: pointer loop at 29 */
    uint8_t m[64] = { 0 };
    size_t o = 12;
    const uint8_t n1[] = { 1, 'a', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0 };
    memcpy(m + o, n1, sizeof n1); o += sizeof n1;                  /* 12..22 */
    const uint8_t n2[] = { 3, 'w', 'w', 'w', 0xc0, 14 };
    memcpy(m + o, n2, sizeof n2); o += sizeof n2;                  /* 23..28 */
    m[o] = 0xc0; m[o + 1] = (uint8_t)o;                           /* 29: points at itself */
    m[o + 2] = 0xc0; m[o + 3] = (uint8_t)(o + 4);                 /* 31: points forward */
    size_t len = o + 6;
    char out[DNS_MAX_NAME_TEXT];
    bool plain;
    size_t off = 23;
    assert_int_equal(dns_name_decode(m, len, &off, 12, out, sizeof out, &plain), 0);
    assert_string_equal(out, "www.example");
    assert_int_equal(off, 29);                         /* past the pointer, not the target */
    off = 29;
    assert_int_equal(dns_name_decode(m, len, &off, 12, out, sizeof out, &plain), -1);
    off = 31;
    assert_int_equal(dns_name_decode(m, len, &off, 12, out, sizeof out, &plain), -1);

    /* A long chain of pointers, each one hop back: terminates (strictly backwards), gives root. */
    uint8_t c[600] = { 0 };
    size_t last = 13;
    c[12] = 0;                                         /* the root name at 12 */
    c[13] = 0xc0; c[14] = 12;
    for (size_t p = 15; p + 1 < sizeof c; p += 2) {
        c[p] = (uint8_t)(0xc0 | ((p - 2) >> 8));
        c[p + 1] = (uint8_t)(p - 2);
        last = p;
    }
    off = last;
    assert_int_equal(dns_name_decode(c, sizeof c, &off, 12, out, sizeof out, &plain), 0);
    assert_string_equal(out, "");
    assert_int_equal(off, last + 2);
}

static void label_and_name_limits(void **state)
{
    uint8_t b[600];
    struct dns_query q;
    char name[300];
    memset(name, 'a', 63); name[63] = '\0';
    size_t n = make_query(b, name, DNS_TYPE_A, false);
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_OK);
    b[12] = 64;                                        /* label length 64: reserved bits 01 */
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_FORMERR);

    /* 4 labels of 63 = 4*64 + 1 = 257 wire bytes > 255 */
    char big[300];
    size_t o = 0;
    for (int i = 0; i < 4; i++) { memset(big + o, 'b', 63); o += 63; big[o++] = '.'; }
    big[o - 1] = '\0';
    n = make_query(b, big, DNS_TYPE_A, false);
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_FORMERR);
    /* 3*64 + 62 (61-byte label) + 1 = 255: the longest legal name */
    big[63 * 3 + 3 + 61] = '\0';
    n = make_query(b, big, DNS_TYPE_A, false);
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_OK);
    assert_int_equal(strlen(q.name), 253);
}

static void odd_bytes_are_escaped_not_trusted(void **state)
{
    uint8_t b[512];
    struct dns_query q;
    size_t n = make_query(b, "xxxxxx.com", DNS_TYPE_A, false);
    b[13 + 3] = '.';                                   /* a dot inside a label */
    b[13 + 4] = 0;                                     /* and a NUL */
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_OK);
    assert_false(q.name_plain);
    assert_string_equal(q.name, "xxx\\046\\000x.com");
}

static void rejects_bad_opt(void **state)
{
    uint8_t b[512];
    struct dns_query q;
    size_t n = make_query(b, "a.b", DNS_TYPE_A, true);
    size_t opt = n - 11;
    b[opt + 6] = 1;                                    /* EDNS version 1: not ours, but well-formed */
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_BADVERS);
    uint8_t out[512];
    size_t m = dns_build_badvers(&q, b, out, sizeof out);
    assert_int_equal(m, n);                            /* question echoed, our own OPT record */
    assert_int_equal(out[2] & 0x80, 0x80);             /* a response */
    assert_int_equal(out[3] & 0xf, 0);                 /* BADVERS = 16: 0 in the header ... */
    assert_int_equal(out[7], 0);                       /* no answer */
    assert_int_equal(out[11], 1);                      /* the OPT record */
    assert_int_equal(out[opt + 5], 1);                 /* ... 1 in the extended rcode */
    assert_int_equal(out[opt + 6], 0);                 /* version 0, the one we speak */
    assert_int_equal(out[opt + 7], 0);                 /* the query's DO bit not echoed (see dns_msg.c) */
    assert_int_equal(dns_build_badvers(&q, b, out, n - 1), 0);
    b[opt + 10] = 4;                                   /* a higher version does not excuse RDLENGTH */
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_FORMERR);
    b[opt + 10] = 0;
    b[opt + 6] = 0;
    b[opt + 2] = 1;                                    /* additional record is not OPT */
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_FORMERR);
    b[opt + 2] = 41;
    b[opt + 10] = 4;                                   /* RDLENGTH 4 beyond the end */
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_FORMERR);
    /* a well-formed option (cookie, 8 bytes) */
    const uint8_t cookie[12] = { 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8 };
    b[opt + 10] = 12;
    memcpy(b + n, cookie, 12);
    assert_int_equal(dns_parse_query(b, n + 12, &q), DNS_PARSE_OK);
    b[n + 3] = 9;                                      /* option longer than RDATA */
    assert_int_equal(dns_parse_query(b, n + 12, &q), DNS_PARSE_FORMERR);
}

static void builds_a_answer(void **state)
{
    uint8_t b[512], out[512];
    struct dns_query q;
    size_t n = make_query(b, "GitHub.com", DNS_TYPE_A, true);
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_OK);
    struct in_addr a;
    inet_pton(AF_INET, "198.18.0.7", &a);
    size_t m = dns_build_answer(&q, b, DNS_RCODE_NOERROR, &a, 10, out, sizeof out);
    assert_int_equal(m, 12 + q.question_len + 16 + 11);
    assert_int_equal(out[0], 0x12);
    assert_int_equal(out[1], 0x34);
    assert_int_equal(out[2], 0x81);                    /* QR, RD */
    assert_int_equal(out[3], 0x80);                    /* RA, NOERROR */
    assert_int_equal(out[7], 1);                       /* ANCOUNT */
    assert_int_equal(out[11], 1);                      /* ARCOUNT: OPT */
    assert_memory_equal(out + 12, b + 12, q.question_len);   /* 0x20 case preserved */
    const uint8_t *rr = out + 12 + q.question_len;
    assert_int_equal(rr[0], 0xc0);
    assert_int_equal(rr[1], 12);
    assert_int_equal(rr[9], 10);                       /* TTL */
    assert_memory_equal(rr + 12, &a, 4);
    const uint8_t *opt = rr + 16;
    assert_int_equal(opt[2], 41);                      /* OPT, version 0 ... */
    assert_int_equal(opt[6], 0);
    assert_int_equal(opt[7], 0);                       /* ... DO asked, not echoed: no DNSSEC here */
    /* The answer itself is not a query: our parser drops it (no answer loops). */
    assert_int_equal(dns_parse_query(out, m, &q), DNS_PARSE_DROP);
    /* Too small a buffer: nothing written. */
    assert_int_equal(dns_build_answer(&q, b, DNS_RCODE_NOERROR, &a, 10, out, 20), 0);
}

static void builds_refused_and_errors(void **state)
{
    uint8_t b[512], out[512];
    struct dns_query q;
    size_t n = make_query(b, "denied.example", DNS_TYPE_AAAA, false);
    assert_int_equal(dns_parse_query(b, n, &q), DNS_PARSE_OK);
    size_t m = dns_build_answer(&q, b, DNS_RCODE_REFUSED, NULL, 0, out, sizeof out);
    assert_int_equal(m, n);
    assert_int_equal(out[3] & 0xf, DNS_RCODE_REFUSED);
    assert_int_equal(out[7], 0);
    m = dns_build_error(b, DNS_RCODE_FORMERR, out, sizeof out);
    assert_int_equal(m, 12);
    assert_int_equal(out[3] & 0xf, DNS_RCODE_FORMERR);
    assert_int_equal(out[5], 0);                       /* no question echoed */
}

static void type_and_rcode_names(void **state)
{
    char buf[16];
    assert_string_equal(dns_type_name(DNS_TYPE_AAAA, buf), "AAAA");
    assert_string_equal(dns_type_name(999, buf), "TYPE999");
    assert_string_equal(dns_rcode_name(DNS_RCODE_REFUSED), "REFUSED");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_plain_query),
        cmocka_unit_test(parses_edns_query),
        cmocka_unit_test(rejects_short_and_responses),
        cmocka_unit_test(rejects_odd_headers),
        cmocka_unit_test(rejects_truncation_everywhere),
        cmocka_unit_test(rejects_compression_in_query),
        cmocka_unit_test(name_decode_follows_backward_pointers_only),
        cmocka_unit_test(label_and_name_limits),
        cmocka_unit_test(odd_bytes_are_escaped_not_trusted),
        cmocka_unit_test(rejects_bad_opt),
        cmocka_unit_test(builds_a_answer),
        cmocka_unit_test(builds_refused_and_errors),
        cmocka_unit_test(type_and_rcode_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
