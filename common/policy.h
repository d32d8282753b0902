/* The policy matcher (DESIGN.md §3.2 rules, §5.3 address classes).  proxyd, sandboxctl decide and
 * the tests all ask these functions; nothing else interprets Allow=/Deny=. */
#ifndef PS_POLICY_H
#define PS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "config.h"

enum ps_verdict { PS_ALLOW, PS_DENY };

struct ps_decision {
    enum ps_verdict verdict;      /* what to do (report mode: ALLOW even when the rules deny) */
    bool would_deny;              /* Mode=report and the rules deny: log as would-deny */
    const struct ps_rule *rule;   /* the rule that decided, NULL for a default */
    const char *reason;           /* static string: "allow_rule", "deny_rule", "no_matching_rule",
                                     "binary_mismatch", "binary_unknown", ... */
    char where[512];              /* "FILE:LINE" of the rule, or "default" */
};

/* Decide a connection of a sandboxed account to HOST:PORT.  host is a DNS name (any case, a
 * trailing dot allowed) or an IP literal; a name is matched by name rules only, an address by
 * IP/CIDR rules only.  binary is the executable owning the socket, or NULL when unknown (a rule with
 * binary= then does not match, so an allow needs the binary to be known).  Deny rules win over allow
 * rules; no match is deny.  Never touches the network. */
void ps_policy_decide(const struct ps_profile *p, const char *host, uint16_t port, const char *binary,
                      struct ps_decision *out);

/* Would any Allow= rule of the profile permit this name on some port?  (Policy DNS answers a name
 * only when this is true and no Deny= rule covers the name on all ports.) */
bool ps_policy_name_allowed(const struct ps_profile *p, const char *name);

/* Normalise a DNS name: lower-case, strip one trailing dot, validate label syntax and length.
 * Returns 0 or -1 (invalid). out must hold PS_MAX_NAME+1 bytes. */
int ps_name_normalize(const char *in, char *out);

/* §5.3: classes of addresses that a *name* rule never reaches. */
enum ps_addr_class {
    PS_ADDR_PUBLIC = 0,
    PS_ADDR_LOOPBACK, PS_ADDR_UNSPECIFIED, PS_ADDR_LINK_LOCAL, PS_ADDR_PRIVATE /* RFC1918, ULA */,
    PS_ADDR_CGNAT, PS_ADDR_MULTICAST, PS_ADDR_SYNTHETIC, PS_ADDR_METADATA, PS_ADDR_RESERVED,
};
/* Classify an address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16 and Teredo 2001::/32
 * embeddings are unwrapped and classified by the embedded IPv4).  synthetic: the configured
 * SyntheticRange. */
enum ps_addr_class ps_addr_classify(const struct sockaddr *sa, const struct ps_cidr *synthetic);
/* This host's own addresses (proxyd sets them): classified as PS_ADDR_LOOPBACK, after the
 * metadata addresses.  Replaces the previous set; at most PS_MAX_LOCAL_ADDRS are kept. */
#define PS_MAX_LOCAL_ADDRS 256
void ps_addr_set_local(const struct sockaddr_storage *addrs, size_t n);
/* Read this host's addresses from its interfaces into that set (loopback and link-local ones
 * are left out: they are closed anyway).  0, or -1 (errno) with the previous set kept. */
int ps_addr_load_local(void);
/* common/route_local.c: 1 when the kernel routes dst to this host itself (RTN_LOCAL), 0 when not
 * (or when it has no route to it), -1 with errno when it cannot be asked. */
int ps_route_is_local(const struct sockaddr *dst);
const char *ps_addr_class_name(enum ps_addr_class c);

/* May a connection whose destination address is sa be made?  via_name: the address came from
 * resolving an allowed name (then only PUBLIC passes); otherwise an explicit IP/CIDR Allow= may open
 * a private range, but METADATA (169.254.169.254, fd00:ec2::254, ...) never passes. */
bool ps_addr_permitted(const struct sockaddr *sa, const struct ps_cidr *synthetic, bool via_name,
                       const struct ps_profile *p, uint16_t port, const char **reason);

/* Parse "10.0.0.0/8", "::1", "192.0.2.1" into a CIDR; 0 or -1. */
int ps_cidr_parse(const char *s, struct ps_cidr *out);
bool ps_cidr_contains(const struct ps_cidr *net, const struct sockaddr *sa);
/* The first (last=false) or last address of a network, as a sockaddr (port 0). */
void ps_cidr_endpoint(const struct ps_cidr *c, bool last, struct sockaddr_storage *ss);
bool ps_cidr_has_host_bits(const struct ps_cidr *c);          /* "10.0.0.1/8" */
void ps_cidr_format(const struct ps_cidr *c, char *out, size_t outlen); /* "10.0.0.0/8", "::1" */

/* ps_policy_decide for a name only, on any port and with the binary unknown: the decision policy
 * DNS takes (allow when some Allow= covers the name and no Deny= covers it on every port;
 * Mode=report turns a deny into allow + would_deny).  ps_policy_name_allowed() is its verdict. */
void ps_policy_name_decide(const struct ps_profile *p, const char *name, struct ps_decision *out);

/* Does the profile get inference.local (§5.4)?  Only with at least one model, or Models=*; an
 * empty Models= lists none.  The one test every part uses (DNS, proxyd, module, sandboxctl). */
bool ps_profile_uses_inference(const struct ps_profile *p);

/* A connection to a real address (not a synthetic one): IP/CIDR rules decide, then
 * ps_addr_permitted(via_name=false) may still deny (metadata, unspecified, a private range that no
 * explicit rule opens).  An address-class denial is never softened by Mode=report.  reason is
 * then "address_class_<class>". */
void ps_policy_decide_addr(const struct ps_profile *p, const struct sockaddr *sa, uint16_t port,
                           const char *binary, const struct ps_cidr *synthetic,
                           struct ps_decision *out);

/* A rule as it would be written after Allow=/Deny= ("*.example.com:80,443 binary=/usr/bin/ssh"),
 * for explain, logs and suggested rules.  Always re-parses to the same rule. */
void ps_rule_format(const struct ps_rule *r, char *out, size_t outlen);

/* The special name of DESIGN.md §5.4 (case-insensitive, trailing dot ignored). */
#define PS_INFERENCE_NAME "inference.local"
bool ps_is_inference_name(const char *host);

#endif
