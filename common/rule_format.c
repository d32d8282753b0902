/* Allow=/Deny= values back to text (the inverse of ps_rule_parse). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "common/policy.h"

static void __attribute__((format(printf, 3, 4))) append(char *out, size_t outlen, const char *fmt, ...)
{
    size_t n = strlen(out);
    va_list ap;
    va_start(ap, fmt);
    if (n < outlen)
        vsnprintf(out + n, outlen - n, fmt, ap);
    va_end(ap);
}

void ps_rule_format(const struct ps_rule *r, char *out, size_t outlen)
{
    char cidr[64];
    if (!outlen)
        return;
    out[0] = 0;
    switch (r->kind) {
    case PS_HOST_EXACT: append(out, outlen, "%s", r->host); break;
    case PS_HOST_SUFFIX: append(out, outlen, "*.%s", r->host); break;
    case PS_HOST_CIDR:
        ps_cidr_format(&r->cidr, cidr, sizeof cidr);
        if (r->cidr.family == AF_INET6)
            append(out, outlen, "[%s]", cidr);
        else
            append(out, outlen, "%s", cidr);
        break;
    }
    for (size_t i = 0; i < r->n_ports; i++) {
        const char *sep = i ? "," : ":";
        if (r->ports[i].lo <= 1 && r->ports[i].hi == 65535)
            append(out, outlen, "%s*", sep);
        else if (r->ports[i].lo == r->ports[i].hi)
            append(out, outlen, "%s%u", sep, (unsigned)r->ports[i].lo);
        else
            append(out, outlen, "%s%u-%u", sep, (unsigned)r->ports[i].lo, (unsigned)r->ports[i].hi);
    }
    if (r->binary)
        append(out, outlen, " binary=%s", r->binary);
}
