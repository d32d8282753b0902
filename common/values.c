#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/policy.h"
#include "common/util.h"
#include "common/values.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

/* Digits only: no sign, no spaces, no hex; leading zeros are fine ("0077" is parsed elsewhere). */
static int parse_digits(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int ps_parse_uint(const char *s, uint64_t max, uint64_t *out, char *err, size_t errlen)
{
    uint64_t v;
    if (parse_digits(s, strlen(s), &v) < 0)
        FAIL("'%s' is not a non-negative integer", s);
    if (v > max)
        FAIL("%s is out of range (0-%llu)", s, (unsigned long long)max);
    *out = v;
    return 0;
}

int ps_parse_bool(const char *s, bool *out, char *err, size_t errlen)
{
    static const char *yes[] = { "yes", "true", "on", "1" }, *no[] = { "no", "false", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    FAIL("'%s' is not a boolean (yes or no)", s);
}

int ps_parse_size(const char *s, uint64_t *out, char *err, size_t errlen)
{
    size_t n = strlen(s);
    uint64_t mult = 1, v;
    if (n > 0) {
        switch (s[n - 1]) {
        case 'K': mult = 1ull << 10; n--; break;
        case 'M': mult = 1ull << 20; n--; break;
        case 'G': mult = 1ull << 30; n--; break;
        default: break;
        }
    }
    if (parse_digits(s, n, &v) < 0)
        FAIL("'%s' is not a size (a number with an optional K, M or G suffix)", s);
    if (v > UINT64_MAX / mult)
        FAIL("size '%s' is too large", s);
    *out = v * mult;
    return 0;
}

int ps_parse_duration_ms(const char *s, uint64_t *out, char *err, size_t errlen)
{
    static const struct { const char *suffix; uint64_t ms; } units[] = {
        { "ms", 1 }, { "min", 60000 }, { "s", 1000 }, { "h", 3600000 },
    };
    size_t n = strlen(s), digits = 0;
    while (digits < n && s[digits] >= '0' && s[digits] <= '9')
        digits++;
    uint64_t mult = 0, v;
    if (digits == n)
        mult = 1000;                        /* a bare number is seconds, as in systemd */
    for (size_t i = 0; !mult && i < sizeof units / sizeof units[0]; i++)
        if (strcmp(s + digits, units[i].suffix) == 0)
            mult = units[i].ms;
    if (!mult || parse_digits(s, digits, &v) < 0)
        FAIL("'%s' is not a duration (a number with ms, s, min or h)", s);
    if (v > UINT64_MAX / mult)
        FAIL("duration '%s' is too large", s);
    *out = v * mult;
    return 0;
}

static int parse_port(const char *s, size_t n, uint16_t *out)
{
    uint64_t v;
    if (parse_digits(s, n, &v) < 0 || v < 1 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

int ps_parse_ports(const char *s, struct ps_port_range **out, size_t *n, char *err, size_t errlen)
{
    struct ps_port_range *v = NULL;
    size_t cnt = 0, cap = 0;
    const char *p = s;
    if (!*s)
        FAIL("empty port list");
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        struct ps_port_range r;
        const char *dash = memchr(p, '-', len);
        if (len == 1 && *p == '*') {
            r.lo = 1;
            r.hi = 65535;
        } else if (dash) {
            if (parse_port(p, (size_t)(dash - p), &r.lo) < 0 ||
                parse_port(dash + 1, len - (size_t)(dash - p) - 1, &r.hi) < 0) {
                free(v);
                FAIL("'%.*s' is not a port range (1-65535)", (int)len, p);
            }
            if (r.lo > r.hi) {
                free(v);
                FAIL("port range '%.*s' is backwards", (int)len, p);
            }
        } else if (parse_port(p, len, &r.lo) < 0) {
            free(v);
            FAIL("'%.*s' is not a port (1-65535)", (int)len, p);
        } else {
            r.hi = r.lo;
        }
        if (cnt >= 1024) {
            free(v);
            FAIL("too many ports in one list");
        }
        *(struct ps_port_range *)ps_vec_push(&v, &cnt, &cap, sizeof *v) = r;
        if (!e)
            break;
        p = e + 1;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* Split "HOST:PORT" / "[V6]:PORT" / "HOST" into host text and port text (NULL if none). */
static int split_hostport(const char *s, char *host, size_t hostlen, const char **port, char *err,
                          size_t errlen)
{
    const char *h = s, *he, *rest;
    if (*s == '[') {
        he = strchr(s, ']');
        if (!he)
            FAIL("'%s': missing ']'", s);
        h = s + 1;
        rest = he + 1;
        if (*rest && *rest != ':')
            FAIL("'%s': expected ':PORT' after ']'", s);
    } else {
        he = strchr(s, ':');
        if (he && strchr(he + 1, ':'))
            FAIL("'%s': an IPv6 address must be written in brackets, e.g. [::1]:3128", s);
        if (!he)
            he = s + strlen(s);
        rest = he;
    }
    if ((size_t)(he - h) >= hostlen)
        FAIL("'%s': host too long", s);
    memcpy(host, h, (size_t)(he - h));
    host[he - h] = 0;
    *port = *rest == ':' ? rest + 1 : NULL;
    return 0;
}

int ps_parse_sockaddr(const char *s, uint16_t default_port, struct ps_sockaddr *out, char *err,
                      size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *ps;
    uint16_t port = default_port;
    if (split_hostport(s, host, sizeof host, &ps, err, errlen) < 0)
        return -1;
    if (ps && parse_port(ps, strlen(ps), &port) < 0)
        FAIL("'%s': '%s' is not a port (1-65535)", s, ps);
    if (!port)
        FAIL("'%s': a port is required (ADDRESS:PORT)", s);
    memset(out, 0, sizeof *out);
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
    if (*s != '[' && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        out->len = sizeof *sin;
    } else if (*s == '[' && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        out->len = sizeof *sin6;
    } else {
        FAIL("'%s' is not an IP address and port (e.g. 127.0.0.1:3128 or [::1]:3128)", s);
    }
    return 0;
}

uint16_t ps_sockaddr_port(const struct ps_sockaddr *a)
{
    return a->ss.ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port)
                                       : ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

void ps_sockaddr_set_port(struct ps_sockaddr *a, uint16_t port)
{
    if (a->ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
}

int ps_parse_hostport(const char *s, char **host, uint16_t *port, uint16_t default_port, char *err,
                      size_t errlen)
{
    char h[PS_MAX_NAME + 2], norm[PS_MAX_NAME + 1];
    const char *ps;
    uint16_t p = default_port;
    unsigned char tmp[16];
    if (split_hostport(s, h, sizeof h, &ps, err, errlen) < 0)
        return -1;
    if (ps && parse_port(ps, strlen(ps), &p) < 0)
        FAIL("'%s': '%s' is not a port (1-65535)", s, ps);
    if (!p)
        FAIL("'%s': a port is required (HOST:PORT)", s);
    if (!*h)
        FAIL("'%s': empty host", s);
    if (*s == '[') {
        if (inet_pton(AF_INET6, h, tmp) != 1)
            FAIL("'%s': '%s' is not an IPv6 address", s, h);
        *host = ps_xstrdup(h);
    } else if (inet_pton(AF_INET, h, tmp) == 1) {
        *host = ps_xstrdup(h);
    } else if (ps_name_normalize(h, norm) == 0) {
        *host = ps_xstrdup(norm);
    } else {
        FAIL("'%s': '%s' is not a host name or IP address", s, h);
    }
    *port = p;
    return 0;
}
