/* One Allow=/Deny= value: "HOST[:PORTS] [binary=PATH]" (DESIGN.md §3.2).  HOST is an exact name,
 * "*.suffix" (one leading wildcard label, at least two labels after it), an IPv4 address or
 * CIDR, or an IPv6 address or CIDR in brackets.  Anything else is an error, never a guess. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/config_int.h"
#include "common/policy.h"
#include "common/util.h"
#include "common/values.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)

static bool looks_like_ipv4(const char *h)
{
    for (; *h; h++)
        if (!((*h >= '0' && *h <= '9') || *h == '.' || *h == '/'))
            return false;
    return true;
}

static int parse_cidr_host(const char *h, int want_family, struct ps_cidr *out, char *err,
                           size_t errlen)
{
    const char *slash = strchr(h, '/');
    unsigned max = want_family == AF_INET ? 32 : 128;
    /* [::ffff:a.b.c.d] comes back as the IPv4 network it stands for (ps_cidr_parse) */
    bool mapped = want_family == AF_INET6 && strchr(h, ':');
    if (ps_cidr_parse(h, out) < 0 || (out->family != want_family && !(mapped && out->family == AF_INET))) {
        if (slash) {
            char *e;
            long pl = strtol(slash + 1, &e, 10);
            if (*e == 0 && slash[1] && (pl < 0 || pl > (long)max)) {
                snprintf(err, errlen, "CIDR prefix /%s is out of range (0-%u) in '%s'", slash + 1,
                         max, h);
                return -1;
            }
        }
        snprintf(err, errlen, "'%s' is not a valid %s address or CIDR", h,
                 want_family == AF_INET ? "IPv4" : "IPv6");
        return -1;
    }
    if (ps_cidr_has_host_bits(out)) {
        snprintf(err, errlen, "'%s' has bits set after the /%u prefix (did you mean the network?)",
                 h, out->prefix);
        return -1;
    }
    return 0;
}

static int parse_name_host(const char *h, struct ps_rule *r, char *err, size_t errlen)
{
    char norm[PS_MAX_NAME + 1];
    const char *star = strchr(h, '*');
    if (star) {
        if (strcmp(h, "*") == 0) {
            snprintf(err, errlen, "'*' alone is not a host: name the domain (e.g. *.example.com)");
            return -1;
        }
        if (star != h || h[1] != '.' || strchr(h + 1, '*')) {
            snprintf(err, errlen, "'%s': a wildcard is only allowed as a whole leading label, "
                     "as in *.example.com", h);
            return -1;
        }
        if (ps_name_normalize(h + 2, norm) < 0) {
            snprintf(err, errlen, "'%s' is not a valid host name", h);
            return -1;
        }
        if (!strchr(norm, '.')) {
            snprintf(err, errlen, "'%s' is too broad: a wildcard needs a name of at least two "
                     "labels after '*.' (e.g. *.example.com)", h);
            return -1;
        }
        r->kind = PS_HOST_SUFFIX;
    } else {
        if (ps_name_normalize(h, norm) < 0) {
            snprintf(err, errlen, "'%s' is not a valid host name", h);
            return -1;
        }
        r->kind = PS_HOST_EXACT;
    }
    r->host = ps_xstrdup(norm);
    return 0;
}

int ps_rule_parse(const char *val, enum ps_rule_action action, struct ps_rule *r, char *err,
                  size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->action = action;
    const char *p = val;
    char *hp = ps_next_word(&p), *opt = NULL;
    char host[PS_MAX_NAME + 64];
    const char *ports = NULL;
    if (!hp)
        FAIL("empty rule: expected HOST[:PORTS] [binary=PATH]");
    if (hp[0] == '[') {
        char *close = strchr(hp, ']');
        if (!close)
            FAIL("'%s': missing ']' after an IPv6 address", hp);
        if (close[1] && close[1] != ':')
            FAIL("'%s': expected ':PORTS' after ']'", hp);
        if ((size_t)(close - hp - 1) >= sizeof host)
            FAIL("'%s': host too long", hp);
        memcpy(host, hp + 1, (size_t)(close - hp - 1));
        host[close - hp - 1] = 0;
        if (close[1] == ':')
            ports = close + 2;
        if (!*host)
            FAIL("empty host in '%s'", hp);
        if (parse_cidr_host(host, AF_INET6, &r->cidr, err, errlen) < 0)
            goto fail;
        r->kind = PS_HOST_CIDR;
    } else {
        char *colon = strchr(hp, ':');
        if (colon && strchr(colon + 1, ':'))
            FAIL("'%s': an IPv6 address must be in brackets, e.g. [2001:db8::1]:443", hp);
        size_t hl = colon ? (size_t)(colon - hp) : strlen(hp);
        if (hl >= sizeof host)
            FAIL("host name too long in '%.40s...'", hp);
        memcpy(host, hp, hl);
        host[hl] = 0;
        if (colon)
            ports = colon + 1;
        if (!*host)
            FAIL("empty host in '%s'", hp);
        if (looks_like_ipv4(host)) {
            if (parse_cidr_host(host, AF_INET, &r->cidr, err, errlen) < 0)
                goto fail;
            r->kind = PS_HOST_CIDR;
        } else if (parse_name_host(host, r, err, errlen) < 0) {
            goto fail;
        }
    }
    if (ports) {
        char perr[200];
        if (ps_parse_ports(ports, &r->ports, &r->n_ports, perr, sizeof perr) < 0)
            FAIL("%s", perr);
    } else {
        /* No port: 443 for Allow= (DESIGN.md §3.2); every port for Deny=, so that
         * "Deny=gist.github.com" shuts the name whatever an Allow= opens. */
        r->ports = ps_xcalloc(1, sizeof *r->ports);
        r->n_ports = 1;
        r->ports[0].lo = action == PS_RULE_ALLOW ? 443 : 1;
        r->ports[0].hi = action == PS_RULE_ALLOW ? 443 : 65535;
    }
    while ((opt = ps_next_word(&p))) {
        if (strncmp(opt, "binary=", 7) == 0) {
            const char *path = opt + 7;
            if (r->binary)
                FAIL("binary= given twice");
            if (path[0] != '/')
                FAIL("binary=%s: the path must be absolute", path);
            if (strstr(path, "/./") || strstr(path, "/../") || strstr(path, "//") ||
                (strlen(path) >= 3 && strcmp(path + strlen(path) - 3, "/..") == 0) ||
                (strlen(path) >= 2 && strcmp(path + strlen(path) - 2, "/.") == 0))
                FAIL("binary=%s: the path must be canonical (as /proc/PID/exe shows it)", path);
            r->binary = ps_xstrdup(path);
        } else {
            FAIL("unknown rule option '%s' (only binary=PATH is known)", opt);
        }
        free(opt);
        opt = NULL;
    }
    free(hp);
    return 0;
fail:
    free(hp);
    free(opt);
    ps_rule_free(r);
    return -1;
}

void ps_rule_free(struct ps_rule *r)
{
    free(r->host);
    free(r->ports);
    free(r->binary);
    r->host = r->binary = NULL;
    r->ports = NULL;
    r->n_ports = 0;
}
