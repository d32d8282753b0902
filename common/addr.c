/* IP networks and the address classes of DESIGN.md §5.3 (what a name rule may never reach). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/policy.h"

int ps_cidr_parse(const char *s, struct ps_cidr *out)
{
    char buf[INET6_ADDRSTRLEN + 8];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n + 1);
    char *slash = strchr(buf, '/');
    long prefix = -1;
    if (slash) {
        *slash = 0;
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3)
            return -1;
        prefix = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            prefix = prefix * 10 + (*p - '0');
        }
    }
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        if (prefix > 32)
            return -1;
        out->prefix = (uint8_t)(prefix < 0 ? 32 : prefix);
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        if (prefix > 128)
            return -1;
        out->prefix = (uint8_t)(prefix < 0 ? 128 : prefix);
        /* An IPv4-mapped network is the IPv4 network: addresses are matched in their IPv4 form
         * (ps_cidr_contains), so a rule kept as ::ffff:a.b.c.d would never match anything. */
        static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        if (out->prefix >= 96 && memcmp(out->addr, mapped, sizeof mapped) == 0) {
            memmove(out->addr, out->addr + 12, 4);
            memset(out->addr + 4, 0, 12);
            out->family = AF_INET;
            out->prefix = (uint8_t)(out->prefix - 96);
        }
    } else {
        return -1;
    }
    return 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
    unsigned full = prefix / 8, rem = prefix % 8;
    if (memcmp(a, b, full) != 0)
        return false;
    if (rem) {
        uint8_t mask = (uint8_t)(0xff << (8 - rem));
        return (a[full] & mask) == (b[full] & mask);
    }
    return true;
}

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* The address of sa as (family, 16 bytes); an IPv4-mapped IPv6 address becomes IPv4. */
static int sa_addr(const struct sockaddr *sa, uint8_t addr[16])
{
    if (sa->sa_family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return AF_INET;
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(a, v4mapped, 12) == 0) {
            memcpy(addr, a + 12, 4);
            return AF_INET;
        }
        memcpy(addr, a, 16);
        return AF_INET6;
    }
    return -1;
}

bool ps_cidr_contains(const struct ps_cidr *net, const struct sockaddr *sa)
{
    uint8_t a[16];
    int fam = sa_addr(sa, a);
    return fam == net->family && prefix_match(net->addr, a, net->prefix);
}

static bool in4(const uint8_t *a, uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3, unsigned prefix)
{
    const uint8_t net[4] = { b0, b1, b2, b3 };
    return prefix_match(net, a, prefix);
}

static bool in_cidr(int fam, const uint8_t *a, const struct ps_cidr *c)
{
    return c && c->family == fam && prefix_match(c->addr, a, c->prefix);
}

/* This host's addresses: a connection to one of them reaches its local services (§5.3). */
static struct { int family; uint8_t a[16]; } local_addrs[PS_MAX_LOCAL_ADDRS];
static size_t n_local;

void ps_addr_set_local(const struct sockaddr_storage *addrs, size_t n)
{
    n_local = 0;
    for (size_t i = 0; i < n && n_local < PS_MAX_LOCAL_ADDRS; i++) {
        uint8_t a[16];
        int fam = sa_addr((const struct sockaddr *)&addrs[i], a);
        if (fam != AF_INET && fam != AF_INET6)
            continue;
        local_addrs[n_local].family = fam;
        memcpy(local_addrs[n_local].a, a, 16);
        n_local++;
    }
}

static bool is_local(int fam, const uint8_t *a)
{
    for (size_t i = 0; i < n_local; i++)
        if (local_addrs[i].family == fam && memcmp(local_addrs[i].a, a, fam == AF_INET ? 4 : 16) == 0)
            return true;
    return false;
}

static enum ps_addr_class classify4(const uint8_t *a, const struct ps_cidr *syn)
{
    /* Cloud metadata services first: they are link-local, private or even public addresses, and
     * no rule may open them. */
    if (in4(a, 169, 254, 169, 254, 32) || in4(a, 169, 254, 170, 2, 32) ||
        in4(a, 100, 100, 100, 200, 32) || in4(a, 168, 63, 129, 16, 32))
        return PS_ADDR_METADATA;
    if (in_cidr(AF_INET, a, syn))
        return PS_ADDR_SYNTHETIC;
    if (is_local(AF_INET, a))
        return PS_ADDR_LOOPBACK;
    if (in4(a, 0, 0, 0, 0, 8))
        return PS_ADDR_UNSPECIFIED;
    if (in4(a, 127, 0, 0, 0, 8))
        return PS_ADDR_LOOPBACK;
    if (in4(a, 169, 254, 0, 0, 16))
        return PS_ADDR_LINK_LOCAL;
    if (in4(a, 10, 0, 0, 0, 8) || in4(a, 172, 16, 0, 0, 12) || in4(a, 192, 168, 0, 0, 16))
        return PS_ADDR_PRIVATE;
    if (in4(a, 100, 64, 0, 0, 10))
        return PS_ADDR_CGNAT;
    if (in4(a, 224, 0, 0, 0, 4))
        return PS_ADDR_MULTICAST;
    /* 240/4 (incl. broadcast), IETF protocol assignments, benchmarking (the default synthetic
     * range), 6to4 relay anycast. Documentation ranges stay PUBLIC on purpose: they behave like
     * real origins in tests and are never routed on the Internet. */
    if (in4(a, 240, 0, 0, 0, 4) || in4(a, 192, 0, 0, 0, 24) || in4(a, 198, 18, 0, 0, 15) ||
        in4(a, 192, 88, 99, 0, 24))
        return PS_ADDR_RESERVED;
    return PS_ADDR_PUBLIC;
}

static bool in6(const uint8_t *a, const char *net, unsigned prefix)
{
    uint8_t n[16];
    if (inet_pton(AF_INET6, net, n) != 1)
        return false;
    return prefix_match(n, a, prefix);
}

/* The worse (non-public) of two classes. */
static enum ps_addr_class worse(enum ps_addr_class x, enum ps_addr_class y)
{
    if (x == PS_ADDR_METADATA || y == PS_ADDR_METADATA)
        return PS_ADDR_METADATA;
    return x != PS_ADDR_PUBLIC ? x : y;
}

static enum ps_addr_class classify6(const uint8_t *a, const struct ps_cidr *syn)
{
    uint8_t v4[4];
    if (in6(a, "fd00:ec2::254", 128))
        return PS_ADDR_METADATA;
    if (in_cidr(AF_INET6, a, syn))
        return PS_ADDR_SYNTHETIC;
    if (is_local(AF_INET6, a))
        return PS_ADDR_LOOPBACK;
    if (in6(a, "::", 128))
        return PS_ADDR_UNSPECIFIED;
    if (in6(a, "::1", 128))
        return PS_ADDR_LOOPBACK;
    /* Embeddings of IPv4 are judged by the IPv4 inside: NAT64 and IPv4-compatible carry it in the
     * last 32 bits, 6to4 in bits 16-47, Teredo the server in 32-63 and the client inverted in the
     * last 32. */
    if (in6(a, "64:ff9b::", 96)) {
        enum ps_addr_class c = classify4(a + 12, syn);
        return c;
    }
    if (in6(a, "64:ff9b:1::", 48))
        return worse(classify4(a + 12, syn), PS_ADDR_PRIVATE);
    if (in6(a, "::", 96))
        return worse(classify4(a + 12, syn), PS_ADDR_RESERVED);
    if (in6(a, "2002::", 16))
        return classify4(a + 2, syn);
    if (in6(a, "2001::", 32)) {
        for (int i = 0; i < 4; i++)
            v4[i] = (uint8_t)~a[12 + i];
        return worse(classify4(a + 4, syn), classify4(v4, syn));
    }
    if (in6(a, "2001:db8::", 32))
        return PS_ADDR_PUBLIC;             /* documentation: see classify4 */
    if (in6(a, "fe80::", 10))
        return PS_ADDR_LINK_LOCAL;
    if (in6(a, "fc00::", 7) || in6(a, "fec0::", 10))
        return PS_ADDR_PRIVATE;
    if (in6(a, "ff00::", 8))
        return PS_ADDR_MULTICAST;
    if (!in6(a, "2000::", 3) || in6(a, "2001::", 23))
        return PS_ADDR_RESERVED;           /* outside global unicast; IETF protocol assignments */
    return PS_ADDR_PUBLIC;
}

enum ps_addr_class ps_addr_classify(const struct sockaddr *sa, const struct ps_cidr *synthetic)
{
    uint8_t a[16];
    int fam = sa_addr(sa, a);
    if (fam == AF_INET)
        return classify4(a, synthetic);
    if (fam == AF_INET6)
        return classify6(a, synthetic);
    return PS_ADDR_RESERVED;
}

const char *ps_addr_class_name(enum ps_addr_class c)
{
    switch (c) {
    case PS_ADDR_PUBLIC: return "public";
    case PS_ADDR_LOOPBACK: return "loopback";
    case PS_ADDR_UNSPECIFIED: return "unspecified";
    case PS_ADDR_LINK_LOCAL: return "link_local";
    case PS_ADDR_PRIVATE: return "private";
    case PS_ADDR_CGNAT: return "cgnat";
    case PS_ADDR_MULTICAST: return "multicast";
    case PS_ADDR_SYNTHETIC: return "synthetic";
    case PS_ADDR_METADATA: return "metadata";
    case PS_ADDR_RESERVED: return "reserved";
    }
    return "unknown";
}

/* Build a sockaddr for an address of a CIDR (the network's first or last address). */
void ps_cidr_endpoint(const struct ps_cidr *c, bool last, struct sockaddr_storage *ss)
{
    uint8_t a[16];
    unsigned bytes = c->family == AF_INET ? 4 : 16;
    memcpy(a, c->addr, 16);
    for (unsigned bit = c->prefix; bit < bytes * 8; bit++) {
        uint8_t m = (uint8_t)(0x80 >> (bit % 8));
        if (last)
            a[bit / 8] |= m;
        else
            a[bit / 8] &= (uint8_t)~m;
    }
    memset(ss, 0, sizeof *ss);
    if (c->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, a, 4);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, a, 16);
    }
}

bool ps_cidr_has_host_bits(const struct ps_cidr *c)
{
    unsigned bits = c->family == AF_INET ? 32 : 128;
    for (unsigned bit = c->prefix; bit < bits; bit++)
        if (c->addr[bit / 8] & (0x80 >> (bit % 8)))
            return true;
    return false;
}

void ps_cidr_format(const struct ps_cidr *c, char *out, size_t outlen)
{
    char a[INET6_ADDRSTRLEN];
    inet_ntop(c->family, c->addr, a, sizeof a);
    unsigned full = c->family == AF_INET ? 32 : 128;
    if (c->prefix == full)
        snprintf(out, outlen, "%s", a);
    else
        snprintf(out, outlen, "%s/%u", a, c->prefix);
}
