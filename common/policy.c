/* The policy matcher (DESIGN.md §3.2): deny over allow, no match -> deny, binary= rules,
 * Mode=report; and the address checks of §5.3. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include "common/policy.h"

static bool port_in(const struct ps_rule *r, uint16_t port)
{
    for (size_t i = 0; i < r->n_ports; i++)
        if (port >= r->ports[i].lo && port <= r->ports[i].hi)
            return true;
    return false;
}


/* name is normalised (lower case, no trailing dot). */
static bool name_match(const struct ps_rule *r, const char *name)
{
    if (r->kind == PS_HOST_EXACT)
        return strcmp(r->host, name) == 0;
    if (r->kind == PS_HOST_SUFFIX) {
        size_t n = strlen(name), s = strlen(r->host);
        /* "*.example.com" matches "a.example.com", "a.b.example.com", never "example.com" */
        return n > s + 1 && name[n - s - 1] == '.' && strcmp(name + n - s, r->host) == 0;
    }
    return false;
}

bool ps_is_inference_name(const char *host)
{
    char norm[PS_MAX_NAME + 1];
    return ps_name_normalize(host, norm) == 0 && strcmp(norm, PS_INFERENCE_NAME) == 0;
}

static void set_where(struct ps_decision *out, const struct ps_rule *r)
{
    out->rule = r;
    if (r)
        snprintf(out->where, sizeof out->where, "%s:%u", r->origin.file ? r->origin.file : "?",
                 r->origin.line);
    else
        snprintf(out->where, sizeof out->where, "default");
}

/* Mode=report: a denial by the rules is let through, to be logged as would_deny. */
static void report_mode(const struct ps_profile *p, struct ps_decision *out)
{
    if (out->verdict == PS_DENY && p->mode == PS_MODE_REPORT) {
        out->verdict = PS_ALLOW;
        out->would_deny = true;
    }
}

/* Is some port of [lo, hi] left open by the Deny= rules for name?  Binary-specific denies do not
 * count here (they cannot shut a name for everyone).  *by: a deny that covers part of the range. */
static bool range_left_open(const struct ps_profile *p, const char *name, unsigned lo, unsigned hi,
                            const struct ps_rule **by)
{
    unsigned x = lo;
    while (x <= hi) {
        unsigned next = x;
        for (size_t i = 0; i < p->n_rules; i++) {
            const struct ps_rule *r = &p->rules[i];
            if (r->action != PS_RULE_DENY || r->binary || !name_match(r, name))
                continue;
            for (size_t k = 0; k < r->n_ports; k++)
                if (r->ports[k].lo <= x && r->ports[k].hi >= x && r->ports[k].hi + 1u > next) {
                    next = r->ports[k].hi + 1u;
                    if (!*by)
                        *by = r;
                }
        }
        if (next == x)
            return true;                   /* port x: allowed by the caller's rule, denied by none */
        x = next;
    }
    return false;
}

/* The DNS path (any port): a name gets an answer when at least one port is allowed for it and
 * denied by no Deny= rule, so that policy DNS never resolves a name for which every connection
 * would be refused (Allow=*.example.com with Deny=secret.example.com:443 shuts secret.example.com
 * for DNS too: its only allowed port is denied). */
static void decide_name_any_port(const struct ps_profile *p, const char *name, struct ps_decision *out)
{
    const struct ps_rule *allow = NULL, *deny = NULL;
    for (size_t i = 0; i < p->n_rules && !allow; i++) {
        const struct ps_rule *r = &p->rules[i];
        if (r->action != PS_RULE_ALLOW || r->kind == PS_HOST_CIDR || !name_match(r, name))
            continue;
        for (size_t k = 0; k < r->n_ports && !allow; k++)
            if (range_left_open(p, name, r->ports[k].lo, r->ports[k].hi, &deny))
                allow = r;
    }
    if (allow) {
        out->verdict = PS_ALLOW;
        out->reason = "allow_rule";
        set_where(out, allow);
    } else {
        out->verdict = PS_DENY;
        out->reason = deny ? "deny_rule" : "no_matching_rule";
        set_where(out, deny);
    }
    report_mode(p, out);
}

/* Shared core: is_addr selects CIDR rules for sa, else name rules for name. */
static void decide(const struct ps_profile *p, const char *name, const struct sockaddr *sa,
                   uint16_t port, const char *binary, struct ps_decision *out)
{
    const struct ps_rule *allow = NULL, *deny = NULL, *binary_miss = NULL;
    for (size_t i = 0; i < p->n_rules; i++) {
        const struct ps_rule *r = &p->rules[i];
        bool host_ok = sa ? r->kind == PS_HOST_CIDR && ps_cidr_contains(&r->cidr, sa)
                          : name_match(r, name);
        if (!host_ok)
            continue;
        if (r->action == PS_RULE_DENY) {
            /* binary=: an unknown binary counts as matching, so that a deny never opens up
             * because the owner could not be found. */
            bool bin_ok = !r->binary || !binary || strcmp(r->binary, binary) == 0;
            if (port_in(r, port) && bin_ok && !deny)
                deny = r;
        } else {
            if (!port_in(r, port))
                continue;
            if (r->binary && (!binary || strcmp(r->binary, binary) != 0)) {
                if (!binary_miss)
                    binary_miss = r;
                continue;
            }
            if (!allow)
                allow = r;
        }
    }
    if (deny) {
        out->verdict = PS_DENY;
        out->reason = "deny_rule";
        set_where(out, deny);
    } else if (allow) {
        out->verdict = PS_ALLOW;
        out->reason = "allow_rule";
        set_where(out, allow);
    } else {
        out->verdict = PS_DENY;
        out->reason = binary_miss ? (binary ? "binary_mismatch" : "binary_unknown")
                                  : "no_matching_rule";
        set_where(out, NULL);
    }
    report_mode(p, out);
}

static void init(struct ps_decision *out)
{
    memset(out, 0, sizeof *out);
    out->verdict = PS_DENY;
    out->reason = "no_matching_rule";
    snprintf(out->where, sizeof out->where, "default");
}

static int literal_addr(const char *host, struct sockaddr_storage *ss)
{
    char buf[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(host);
    memset(ss, 0, sizeof *ss);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof buf) {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = 0;
        host = buf;
    }
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        return 0;
    }
    return -1;
}

void ps_policy_decide(const struct ps_profile *p, const char *host, uint16_t port, const char *binary,
                      struct ps_decision *out)
{
    struct sockaddr_storage ss;
    char norm[PS_MAX_NAME + 1];
    init(out);
    if (!p || !host) {
        out->reason = "not_sandboxed";
        return;
    }
    if (port == 0) {
        out->reason = "invalid_port";
        return;
    }
    if (literal_addr(host, &ss) == 0) {
        decide(p, NULL, (struct sockaddr *)&ss, port, binary, out);
        return;
    }
    if (ps_name_normalize(host, norm) < 0) {
        out->reason = "invalid_host";      /* never softened by report mode: nothing to connect to */
        return;
    }
    if (port == 443 && strcmp(norm, PS_INFERENCE_NAME) == 0) {
        /* §5.4: intercepted by proxyd; only profiles that list models get it. */
        bool ok = ps_profile_uses_inference(p);
        out->verdict = ok ? PS_ALLOW : PS_DENY;
        out->reason = ok ? "inference" : "inference_not_permitted";
        return;
    }
    decide(p, norm, NULL, port, binary, out);
}

void ps_policy_name_decide(const struct ps_profile *p, const char *name, struct ps_decision *out)
{
    char norm[PS_MAX_NAME + 1];
    init(out);
    if (!p || !name) {
        out->reason = "not_sandboxed";
        return;
    }
    if (ps_name_normalize(name, norm) < 0) {
        out->reason = "invalid_host";
        return;
    }
    if (strcmp(norm, PS_INFERENCE_NAME) == 0) {
        out->verdict = PS_ALLOW;   /* its port 443 is the inference hand-off; others go by policy */
        out->reason = "inference";
        return;
    }
    decide_name_any_port(p, norm, out);
}

bool ps_policy_name_allowed(const struct ps_profile *p, const char *name)
{
    struct ps_decision d;
    ps_policy_name_decide(p, name, &d);
    return d.verdict == PS_ALLOW;
}

/* Does an Allow= CIDR rule explicitly open this non-public address?  Only a rule whose whole
 * network lies in the address's class counts, so "Allow=0.0.0.0/0:443" opens the Internet, not
 * 10.0.0.0/8 or loopback. */
static bool opened_by_rule(const struct ps_profile *p, const struct sockaddr *sa,
                           enum ps_addr_class cls, const struct ps_cidr *synthetic, uint16_t port)
{
    for (size_t i = 0; p && i < p->n_rules; i++) {
        const struct ps_rule *r = &p->rules[i];
        if (r->action != PS_RULE_ALLOW || r->kind != PS_HOST_CIDR || !port_in(r, port) ||
            !ps_cidr_contains(&r->cidr, sa))
            continue;
        struct sockaddr_storage first, last;
        ps_cidr_endpoint(&r->cidr, false, &first);
        ps_cidr_endpoint(&r->cidr, true, &last);
        if (ps_addr_classify((struct sockaddr *)&first, synthetic) == cls &&
            ps_addr_classify((struct sockaddr *)&last, synthetic) == cls)
            return true;
    }
    return false;
}

bool ps_addr_permitted(const struct sockaddr *sa, const struct ps_cidr *synthetic, bool via_name,
                       const struct ps_profile *p, uint16_t port, const char **reason)
{
    static const char *const reasons[] = {
        [PS_ADDR_PUBLIC] = "public", [PS_ADDR_LOOPBACK] = "address_class_loopback",
        [PS_ADDR_UNSPECIFIED] = "address_class_unspecified",
        [PS_ADDR_LINK_LOCAL] = "address_class_link_local",
        [PS_ADDR_PRIVATE] = "address_class_private", [PS_ADDR_CGNAT] = "address_class_cgnat",
        [PS_ADDR_MULTICAST] = "address_class_multicast",
        [PS_ADDR_SYNTHETIC] = "address_class_synthetic",
        [PS_ADDR_METADATA] = "address_class_metadata",
        [PS_ADDR_RESERVED] = "address_class_reserved",
    };
    enum ps_addr_class c = ps_addr_classify(sa, synthetic);
    const char *why = reasons[c];
    bool ok;
    switch (c) {
    case PS_ADDR_PUBLIC:
        ok = true;
        break;
    case PS_ADDR_LOOPBACK: case PS_ADDR_LINK_LOCAL: case PS_ADDR_PRIVATE: case PS_ADDR_CGNAT:
        ok = !via_name && opened_by_rule(p, sa, c, synthetic, port);
        break;
    default:                       /* metadata, unspecified, multicast, synthetic, reserved */
        ok = false;
        break;
    }
    if (reason)
        *reason = why;
    return ok;
}

void ps_policy_decide_addr(const struct ps_profile *p, const struct sockaddr *sa, uint16_t port,
                           const char *binary, const struct ps_cidr *synthetic,
                           struct ps_decision *out)
{
    init(out);
    if (!p) {
        out->reason = "not_sandboxed";
        return;
    }
    if (port == 0) {
        out->reason = "invalid_port";
        return;
    }
    decide(p, NULL, sa, port, binary, out);
    const char *why;
    if (!ps_addr_permitted(sa, synthetic, false, p, port, &why)) {
        out->verdict = PS_DENY;
        out->would_deny = false;
        out->reason = why;
        if (!out->rule || out->rule->action == PS_RULE_ALLOW)
            set_where(out, NULL);
    }
}

bool ps_profile_uses_inference(const struct ps_profile *p)
{
    return p && p->has_models && (p->all_models || p->n_models > 0);
}
