/* libFuzzer harness for the policy DNS parser and builder (proxyd/dns_msg.c): any input must be
 * parsed or rejected without reading out of bounds, and every accepted query must produce a
 * well-formed answer that our own parser recognises as an answer (and so never answers). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proxyd/dns_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dns_query q;
    uint8_t out[DNS_HEADER_LEN + 600];
    enum dns_parse_status st = dns_parse_query(data, size, &q);
    if (st == DNS_PARSE_OK) {
        struct in_addr a = { .s_addr = 0x07001262 };
        if (strlen(q.name) >= sizeof q.name) __builtin_trap();
        size_t n = dns_build_answer(&q, data, DNS_RCODE_NOERROR, &a, 10, out, sizeof out);
        if (n == 0 || n > sizeof out) __builtin_trap();
        struct dns_query back;
        if (dns_parse_query(out, n, &back) != DNS_PARSE_DROP) __builtin_trap();
    } else if (st == DNS_PARSE_BADVERS) {
        size_t n = dns_build_badvers(&q, data, out, sizeof out);
        if (n == 0 || n > sizeof out || !q.edns) __builtin_trap();
        struct dns_query back;
        if (dns_parse_query(out, n, &back) != DNS_PARSE_DROP) __builtin_trap();
    } else if (st == DNS_PARSE_FORMERR || st == DNS_PARSE_NOTIMP) {
        if (dns_build_error(data, DNS_RCODE_FORMERR, out, sizeof out) != DNS_HEADER_LEN) __builtin_trap();
    }
    /* The general name decoder, from every start offset the input allows (compression allowed). */
    if (size > DNS_HEADER_LEN) {
        char name[DNS_MAX_NAME_TEXT];
        bool plain;
        size_t off = DNS_HEADER_LEN + data[0] % (size - DNS_HEADER_LEN);
        size_t start = off;
        if (dns_name_decode(data, size, &off, DNS_HEADER_LEN, name, sizeof name, &plain) == 0 &&
            (off <= start || off > size))
            __builtin_trap();
    }
    return 0;
}
