/* Strict DNS query parser and answer builder (see dns_msg.h). */
#include "proxyd/dns_msg.h"

#include <stdio.h>
#include <string.h>

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* Append one label byte in presentation form; false when out is full. */
static bool emit_byte(char *out, size_t outlen, size_t *o, uint8_t c, bool *plain)
{
    char tmp[5];
    size_t n;
    if (c > 0x20 && c < 0x7f && c != '.' && c != '\\') {
        tmp[0] = (char)c; n = 1;
    } else {
        snprintf(tmp, sizeof tmp, "\\%03u", c); n = 4;
        *plain = false;
    }
    if (*o + n >= outlen) return false;
    memcpy(out + *o, tmp, n);
    *o += n;
    return true;
}

int dns_name_decode(const uint8_t *msg, size_t len, size_t *off, size_t min_ptr, char *out,
                    size_t outlen, bool *plain)
{
    size_t pos = *off, end_after = 0, wire = 0, o = 0;
    size_t floor = pos;           /* a pointer must land strictly before this: no loops */
    bool jumped = false;
    *plain = true;
    if (outlen == 0) return -1;
    for (;;) {
        if (pos >= len) return -1;
        uint8_t l = msg[pos];
        if ((l & 0xc0) == 0xc0) {
            if (pos + 1 >= len) return -1;
            size_t target = (size_t)((l & 0x3f) << 8 | msg[pos + 1]);
            if (target < min_ptr || target >= floor) return -1;
            if (!jumped) { end_after = pos + 2; jumped = true; }
            floor = target;
            pos = target;
            continue;
        }
        if (l & 0xc0) return -1;                    /* 0x40/0x80: extended label types, obsolete */
        wire += (size_t)l + 1;
        if (wire > DNS_MAX_NAME_WIRE) return -1;
        if (l == 0) { pos++; break; }
        if (pos + 1 + l > len) return -1;
        if (o > 0) {                                /* the separator, not an escaped dot */
            if (o + 1 >= outlen) return -1;
            out[o++] = '.';
        }
        for (size_t i = 0; i < l; i++)
            if (!emit_byte(out, outlen, &o, msg[pos + 1 + i], plain)) return -1;
        pos += 1 + (size_t)l;
    }
    out[o] = '\0';
    *off = jumped ? end_after : pos;
    return 0;
}

/* The OPT pseudo-record (RFC 6891 6.1.2): root owner, TYPE 41, CLASS = UDP size,
 * TTL = extended rcode / version / flags, RDATA = options that must exactly fill RDLENGTH.
 * 0, or 1 for a well-formed record of a version other than 0; -1 when malformed. */
static int parse_opt(const uint8_t *msg, size_t len, size_t *off, struct dns_query *q)
{
    size_t p = *off;
    if (p + 11 > len) return -1;
    if (msg[p] != 0) return -1;                     /* owner must be the root, uncompressed */
    if (get16(msg + p + 1) != DNS_TYPE_OPT) return -1;
    uint16_t size = get16(msg + p + 3);
    uint8_t version = msg[p + 6];
    uint16_t rdlen = get16(msg + p + 9);
    p += 11;
    if (rdlen > len - p) return -1;
    size_t end = p + rdlen;
    while (p < end) {                               /* each option: code, length, data */
        if (end - p < 4) return -1;
        uint16_t olen = get16(msg + p + 2);
        p += 4;
        if (olen > end - p) return -1;
        p += olen;
    }
    q->edns = true;
    q->edns_udp_size = size < 512 ? 512 : size;
    *off = end;
    return version != 0;
}

enum dns_parse_status dns_parse_query(const uint8_t *msg, size_t len, struct dns_query *q)
{
    memset(q, 0, sizeof *q);
    if (len < DNS_HEADER_LEN || len > DNS_MAX_QUERY) return DNS_PARSE_DROP;
    q->id = get16(msg);
    q->flags = get16(msg + 2);
    q->edns_udp_size = 512;
    if (q->flags & DNS_FLAG_QR) return DNS_PARSE_DROP;     /* never answer an answer: no loops */
    if (DNS_OPCODE(q->flags) != 0) return DNS_PARSE_NOTIMP;
    if (q->flags & DNS_FLAG_TC) return DNS_PARSE_FORMERR;
    uint16_t qd = get16(msg + 4), an = get16(msg + 6), ns = get16(msg + 8), ar = get16(msg + 10);
    if (qd != 1 || an != 0 || ns != 0 || ar > 1) return DNS_PARSE_FORMERR;

    size_t off = DNS_HEADER_LEN;
    /* min_ptr = off: a query's only name comes first, so no compression pointer can be valid. */
    if (dns_name_decode(msg, len, &off, off, q->name, sizeof q->name, &q->name_plain) < 0)
        return DNS_PARSE_FORMERR;
    if (len - off < 4) return DNS_PARSE_FORMERR;
    q->qtype = get16(msg + off);
    q->qclass = get16(msg + off + 2);
    off += 4;
    q->question_len = off - DNS_HEADER_LEN;
    if (q->qtype == DNS_TYPE_OPT) return DNS_PARSE_FORMERR;
    int opt = ar == 1 ? parse_opt(msg, len, &off, q) : 0;
    if (opt < 0) return DNS_PARSE_FORMERR;
    if (off != len) return DNS_PARSE_FORMERR;             /* trailing garbage */
    return opt ? DNS_PARSE_BADVERS : DNS_PARSE_OK;
}

static size_t put_header(uint8_t *out, uint16_t id, uint16_t qflags, int rcode, uint16_t qd,
                         uint16_t an, uint16_t ar)
{
    /* QR, the client's opcode and RD echoed, RA: we do recurse for allowed names. */
    uint16_t f = (uint16_t)(DNS_FLAG_QR | (qflags & (0x7800u | DNS_FLAG_RD)) | DNS_FLAG_RA |
                            (rcode & 0xf));
    put16(out, id); put16(out + 2, f); put16(out + 4, qd); put16(out + 6, an);
    put16(out + 8, 0); put16(out + 10, ar);
    return DNS_HEADER_LEN;
}

size_t dns_build_answer(const struct dns_query *q, const uint8_t *msg, int rcode,
                        const struct in_addr *a, uint32_t ttl, uint8_t *out, size_t cap)
{
    size_t need = DNS_HEADER_LEN + q->question_len + (a ? 16 : 0) + (q->edns ? 11 : 0);
    if (cap < need || DNS_HEADER_LEN + q->question_len > 0xffff) return 0;
    size_t o = put_header(out, q->id, q->flags, rcode, 1, a ? 1 : 0, q->edns ? 1 : 0);
    memcpy(out + o, msg + DNS_HEADER_LEN, q->question_len);
    o += q->question_len;
    if (a) {
        put16(out + o, 0xc000 | DNS_HEADER_LEN);         /* owner: pointer to the question name */
        put16(out + o + 2, DNS_TYPE_A);
        put16(out + o + 4, DNS_CLASS_IN);
        put32(out + o + 6, ttl);
        put16(out + o + 10, 4);
        memcpy(out + o + 12, &a->s_addr, 4);
        o += 16;
    }
    if (q->edns) {
        out[o] = 0;
        put16(out + o + 1, DNS_TYPE_OPT);
        put16(out + o + 3, DNS_EDNS_UDP_SIZE);
        /* Extended rcode 0, version 0, and no DO bit even when the query set it: answers here are
         * synthetic and can never carry valid signatures, and a validating stub (systemd-resolved
         * with DNSSEC=allow-downgrade) takes a DO bit that comes back as a server that does DNSSEC,
         * and then holds the missing signatures against the answers. */
        put32(out + o + 5, 0);
        put16(out + o + 9, 0);
        o += 11;
    }
    return o;
}

size_t dns_build_badvers(const struct dns_query *q, const uint8_t *msg, uint8_t *out, size_t cap)
{
    size_t n = dns_build_answer(q, msg, DNS_RCODE_NOERROR, NULL, 0, out, cap);
    if (n)                                               /* the OPT record is the last 11 bytes */
        out[n - 11 + 5] = DNS_EXT_RCODE_BADVERS >> 4;    /* TTL: extended rcode, version 0, flags 0 */
    return n;
}

size_t dns_build_error(const uint8_t *msg, int rcode, uint8_t *out, size_t cap)
{
    if (cap < DNS_HEADER_LEN) return 0;
    return put_header(out, get16(msg), get16(msg + 2), rcode, 0, 0, 0);
}

const char *dns_rcode_name(int rcode)
{
    switch (rcode) {
    case DNS_RCODE_NOERROR: return "NOERROR";
    case DNS_RCODE_FORMERR: return "FORMERR";
    case DNS_RCODE_SERVFAIL: return "SERVFAIL";
    case DNS_RCODE_NXDOMAIN: return "NXDOMAIN";
    case DNS_RCODE_NOTIMP: return "NOTIMP";
    case DNS_RCODE_REFUSED: return "REFUSED";
    default: return "RCODE?";
    }
}

const char *dns_type_name(uint16_t t, char buf[16])
{
    switch (t) {
    case DNS_TYPE_A: return "A";
    case DNS_TYPE_NS: return "NS";
    case DNS_TYPE_CNAME: return "CNAME";
    case DNS_TYPE_SOA: return "SOA";
    case DNS_TYPE_PTR: return "PTR";
    case DNS_TYPE_MX: return "MX";
    case DNS_TYPE_TXT: return "TXT";
    case DNS_TYPE_AAAA: return "AAAA";
    case DNS_TYPE_HTTPS: return "HTTPS";
    case DNS_TYPE_ANY: return "ANY";
    default: snprintf(buf, 16, "TYPE%u", t); return buf;
    }
}
