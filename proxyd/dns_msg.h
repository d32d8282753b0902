/* DNS wire format for policy DNS: a strict parser of queries and a builder of the few answers
 * proxyd gives (RFC 1035, EDNS0 RFC 6891).  Every read is bounds-checked; anything a stub resolver
 * would not send (QDCOUNT != 1, answer or authority records, a truncated query, records after the
 * end, compression in a query, bad label lengths) is rejected.  No allocation, no I/O. */
#ifndef PD_DNS_MSG_H
#define PD_DNS_MSG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_HEADER_LEN 12
#define DNS_MAX_NAME_WIRE 255     /* RFC 1035 2.3.4, including the root label */
#define DNS_MAX_LABEL 63
#define DNS_MAX_QUERY 4096        /* larger queries (UDP or TCP) are dropped: no stub needs them */
#define DNS_EDNS_UDP_SIZE 1232    /* what we advertise back (DNS flag day 2020) */
#define DNS_MAX_NAME_TEXT 1024    /* presentation form of a 255-byte name, with \DDD escapes */

enum { DNS_TYPE_A = 1, DNS_TYPE_NS = 2, DNS_TYPE_CNAME = 5, DNS_TYPE_SOA = 6, DNS_TYPE_PTR = 12,
       DNS_TYPE_MX = 15, DNS_TYPE_TXT = 16, DNS_TYPE_AAAA = 28, DNS_TYPE_OPT = 41,
       DNS_TYPE_HTTPS = 65, DNS_TYPE_ANY = 255 };
enum { DNS_CLASS_IN = 1 };
enum { DNS_RCODE_NOERROR = 0, DNS_RCODE_FORMERR = 1, DNS_RCODE_SERVFAIL = 2, DNS_RCODE_NXDOMAIN = 3,
       DNS_RCODE_NOTIMP = 4, DNS_RCODE_REFUSED = 5 };
enum { DNS_EXT_RCODE_BADVERS = 16 };        /* 12 bits: 4 in the header, 8 in the OPT record */

/* Header flag bits (host order of the 16-bit flags word). */
#define DNS_FLAG_QR 0x8000u
#define DNS_FLAG_AA 0x0400u
#define DNS_FLAG_TC 0x0200u
#define DNS_FLAG_RD 0x0100u
#define DNS_FLAG_RA 0x0080u
#define DNS_OPCODE(f) (((f) >> 11) & 0xfu)

enum dns_parse_status {
    DNS_PARSE_OK,
    DNS_PARSE_DROP,      /* not worth an answer: shorter than a header, or a response (QR=1) */
    DNS_PARSE_FORMERR,   /* header readable: answer FORMERR with an empty question section */
    DNS_PARSE_NOTIMP,    /* an opcode other than QUERY: answer NOTIMP */
    DNS_PARSE_BADVERS,   /* well-formed, but an EDNS version other than 0: dns_build_badvers() */
};

struct dns_query {
    uint16_t id;
    uint16_t flags;               /* as received */
    uint16_t qtype, qclass;
    /* The question name in presentation form, no trailing dot ("" is the root).  Bytes outside
     * printable ASCII, '.' and '\\' inside a label are written as \DDD, so such a name never
     * passes ps_name_normalize() and can never match a policy rule. */
    char name[DNS_MAX_NAME_TEXT];
    bool name_plain;              /* no \DDD escape was needed */
    size_t question_len;          /* wire bytes of the question (name+type+class) after the header */
    bool edns;                    /* the query carried an OPT record (then the answer carries one) */
    uint16_t edns_udp_size;       /* the client's advertised size (>= 512), 512 without EDNS */
};

enum dns_parse_status dns_parse_query(const uint8_t *msg, size_t len, struct dns_query *q);

/* The answer to a query whose EDNS version we do not implement (RFC 6891 6.1.3): extended RCODE
 * BADVERS (16: 0 in the header, 1 in the OPT record's upper bits), the question echoed, and an OPT
 * record of version 0, the one we speak, so that the client can retry with it.  Nothing was looked
 * up.  Returns the length, 0 if cap is too small. */
size_t dns_build_badvers(const struct dns_query *q, const uint8_t *msg, uint8_t *out, size_t cap);

/* Decode the (possibly compressed) name at *off into presentation form.  Compression pointers
 * must point strictly backwards and at least to min_ptr (so a pointer can never loop, and a name
 * can never be read out of the header); the total is bounded by DNS_MAX_NAME_WIRE.  On success
 * *off moves past the name as it appears at the original position.  0, or -1 (malformed). */
int dns_name_decode(const uint8_t *msg, size_t len, size_t *off, size_t min_ptr, char *out,
                    size_t outlen, bool *plain);

/* Build the answer to q (which came from msg, whose question section is echoed verbatim so the
 * client's 0x20 case randomisation survives).  a != NULL adds one A record for the question name
 * with ttl.  Returns the length written, or 0 when cap is too small. */
size_t dns_build_answer(const struct dns_query *q, const uint8_t *msg, int rcode,
                        const struct in_addr *a, uint32_t ttl, uint8_t *out, size_t cap);

/* A header-only answer (FORMERR, NOTIMP) to a message whose question could not be used.
 * msg must hold at least DNS_HEADER_LEN bytes.  Returns the length (12), or 0 if cap < 12. */
size_t dns_build_error(const uint8_t *msg, int rcode, uint8_t *out, size_t cap);

const char *dns_rcode_name(int rcode);
const char *dns_type_name(uint16_t t, char buf[16]);   /* "A", "AAAA", ..., or "TYPE<n>" in buf */

#endif
