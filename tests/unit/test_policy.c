/* The policy matcher and the address classes: deny over allow, no match -> deny, wildcard
 * semantics, case and trailing dot, ports, binary=, Mode=report, and §5.3 (metadata never,
 * names only to public addresses, explicit CIDR rules may open private ranges). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include "common/config.h"
#include "common/policy.h"

static struct ps_config *cfg;
/* One config per profile, so that a profile pointer stays valid while a test makes more. */
static struct ps_config *extra[8];
static size_t n_extra;

static const struct ps_profile *profile(const char *body)
{
    struct ps_diags d = { 0 };
    assert_true(n_extra < 8);
    struct ps_config *c = extra[n_extra++] = ps_config_new_empty("/x");
    char text[4096];
    snprintf(text, sizeof text, "[Match]\nUser=u\n%s", body);
    if (ps_config_parse_buffer(c, PS_FILE_PROFILE, "profiles/p.conf", text, strlen(text), &d) < 0) {
        ps_diags_print(&d, stderr);
        fail_msg("profile did not parse");
    }
    ps_diags_free(&d);
    return &c->profiles[0];
}

static int setup(void **state)
{
    (void)state;
    cfg = ps_config_new_empty("/x");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ps_config_free(cfg);
    while (n_extra > 0)
        ps_config_free(extra[--n_extra]);
    return 0;
}

static struct ps_decision dec(const struct ps_profile *p, const char *host, uint16_t port,
                              const char *binary)
{
    struct ps_decision d;
    ps_policy_decide(p, host, port, binary, &d);
    return d;
}

#define ALLOWED(p, h, port) (dec(p, h, port, NULL).verdict == PS_ALLOW)

static void test_no_match_is_deny(void **state)
{
    (void)state;
    const struct ps_profile *p = profile("[Network]\nAllow=github.com:443\n");
    struct ps_decision d = dec(p, "example.org", 443, NULL);
    assert_int_equal(d.verdict, PS_DENY);
    assert_false(d.would_deny);
    assert_null(d.rule);
    assert_string_equal(d.reason, "no_matching_rule");
    assert_string_equal(d.where, "default");
    /* a profile without rules denies everything */
    const struct ps_profile *empty = profile("");
    assert_false(ALLOWED(empty, "github.com", 443));
    assert_false(ALLOWED(empty, "192.0.2.1", 443));
}

static void test_allow_names_rule(void **state)
{
    (void)state;
    const struct ps_profile *p = profile("[Network]\nAllow=github.com:443\n");
    struct ps_decision d = dec(p, "github.com", 443, NULL);
    assert_int_equal(d.verdict, PS_ALLOW);
    assert_string_equal(d.reason, "allow_rule");
    assert_ptr_equal(d.rule, &p->rules[0]);
    assert_string_equal(d.where, "profiles/p.conf:4");
    assert_false(ALLOWED(p, "github.com", 80));
}

static void test_deny_over_allow(void **state)
{
    (void)state;
    /* the deny comes after the allows in the file and still wins */
    const struct ps_profile *p = profile("[Network]\nAllow=*.github.com:443\nAllow=gist.github.com:443\n"
                                         "Deny=gist.github.com\n");
    struct ps_decision d = dec(p, "gist.github.com", 443, NULL);
    assert_int_equal(d.verdict, PS_DENY);
    assert_string_equal(d.reason, "deny_rule");
    assert_string_equal(d.where, "profiles/p.conf:6");
    assert_true(ALLOWED(p, "api.github.com", 443));
    /* Deny= without port: every port */
    assert_false(ALLOWED(p, "gist.github.com", 22));
    /* a deny on one port leaves the others to the allows */
    const struct ps_profile *q = profile("[Network]\nAllow=a.example.com:80,443\nDeny=a.example.com:80\n");
    assert_false(ALLOWED(q, "a.example.com", 80));
    assert_true(ALLOWED(q, "a.example.com", 443));
}

static void test_wildcard_not_apex(void **state)
{
    (void)state;
    const struct ps_profile *p = profile("[Network]\nAllow=*.example.com\n");
    assert_false(ALLOWED(p, "example.com", 443));
    assert_true(ALLOWED(p, "www.example.com", 443));
    assert_true(ALLOWED(p, "a.b.example.com", 443));
    assert_false(ALLOWED(p, "badexample.com", 443));
    assert_false(ALLOWED(p, "example.com.evil.net", 443));
    assert_false(ALLOWED(p, ".example.com", 443));
}

static void test_case_and_trailing_dot(void **state)
{
    (void)state;
    const struct ps_profile *p = profile("[Network]\nAllow=GitHub.com.:443\nAllow=*.Example.COM\n");
    assert_true(ALLOWED(p, "github.com", 443));
    assert_true(ALLOWED(p, "GITHUB.COM", 443));
    assert_true(ALLOWED(p, "github.com.", 443));
    assert_true(ALLOWED(p, "WWW.EXAMPLE.COM.", 443));
    assert_false(ALLOWED(p, "github.com..", 443));
    assert_false(ALLOWED(p, "", 443));
    assert_string_equal(dec(p, "bad name!", 443, NULL).reason, "invalid_host");
}

static void test_ports(void **state)
{
    (void)state;
    const struct ps_profile *p = profile("[Network]\nAllow=pypi.org:80,443\nAllow=dev.example.com:8000-8100\n"
                                         "Allow=any.example.com:*\nAllow=default.example.com\n");
    assert_true(ALLOWED(p, "pypi.org", 80));
    assert_true(ALLOWED(p, "pypi.org", 443));
    assert_false(ALLOWED(p, "pypi.org", 8080));
    assert_false(ALLOWED(p, "dev.example.com", 7999));
    assert_true(ALLOWED(p, "dev.example.com", 8000));
    assert_true(ALLOWED(p, "dev.example.com", 8100));
    assert_false(ALLOWED(p, "dev.example.com", 8101));
    assert_true(ALLOWED(p, "any.example.com", 1));
    assert_true(ALLOWED(p, "any.example.com", 65535));
    assert_true(ALLOWED(p, "default.example.com", 443));   /* no port means 443 */
    assert_false(ALLOWED(p, "default.example.com", 80));
    assert_string_equal(dec(p, "pypi.org", 0, NULL).reason, "invalid_port");
}

static void test_ip_and_cidr_rules(void **state)
{
    (void)state;
    const struct ps_profile *p = profile("[Network]\nAllow=10.20.0.0/16:5432\nAllow=192.0.2.7:22\n"
                                         "Allow=[2001:db8::/32]:443\nAllow=example.com\n");
    assert_true(ALLOWED(p, "10.20.1.2", 5432));
    assert_false(ALLOWED(p, "10.21.1.2", 5432));
    assert_false(ALLOWED(p, "10.20.1.2", 5433));
    assert_true(ALLOWED(p, "192.0.2.7", 22));
    assert_false(ALLOWED(p, "192.0.2.8", 22));
    assert_true(ALLOWED(p, "2001:db8::10", 443));
    assert_true(ALLOWED(p, "[2001:db8::10]", 443));
    assert_true(ALLOWED(p, "::ffff:10.20.0.1", 5432));       /* IPv4-mapped is the IPv4 address */
    assert_false(ALLOWED(p, "2001:db9::1", 443));
    /* A rule written in the IPv4-mapped form is the IPv4 rule: a Deny= so written must bite. */
    const struct ps_profile *m = profile("[Network]\nAllow=10.0.0.0/8:5432\nDeny=[::ffff:10.1.2.3]:5432\n"
                                         "Deny=[::ffff:10.9.0.0/112]:5432\n");
    assert_false(ALLOWED(m, "10.1.2.3", 5432));
    assert_false(ALLOWED(m, "::ffff:10.1.2.3", 5432));
    assert_false(ALLOWED(m, "10.9.7.7", 5432));
    assert_true(ALLOWED(m, "10.1.2.4", 5432));
    /* a name rule never matches an address, an address rule never a name */
    const struct ps_profile *q = profile("[Network]\nAllow=93.184.216.34\n");
    assert_false(ALLOWED(q, "example.com", 443));
    assert_false(ALLOWED(p, "93.184.216.34", 443));
}

static void test_binary(void **state)
{
    (void)state;
    const struct ps_profile *p = profile("[Network]\nAllow=git.example.com:22 binary=/usr/bin/ssh\n");
    struct ps_decision d = dec(p, "git.example.com", 22, "/usr/bin/ssh");
    assert_int_equal(d.verdict, PS_ALLOW);
    d = dec(p, "git.example.com", 22, "/usr/bin/nc");
    assert_int_equal(d.verdict, PS_DENY);
    assert_string_equal(d.reason, "binary_mismatch");
    d = dec(p, "git.example.com", 22, NULL);
    assert_int_equal(d.verdict, PS_DENY);
    assert_string_equal(d.reason, "binary_unknown");
    /* a binary-specific deny applies when the binary is unknown (never opens by ignorance) */
    const struct ps_profile *q = profile("[Network]\nAllow=x.example.com\nDeny=x.example.com binary=/usr/bin/curl\n");
    assert_int_equal(dec(q, "x.example.com", 443, "/usr/bin/curl").verdict, PS_DENY);
    assert_int_equal(dec(q, "x.example.com", 443, NULL).verdict, PS_DENY);
    assert_int_equal(dec(q, "x.example.com", 443, "/usr/bin/wget").verdict, PS_ALLOW);
}

static void test_report_mode(void **state)
{
    (void)state;
    const struct ps_profile *p = profile("[Network]\nAllow=github.com\nDeny=evil.example.com\nMode=report\n");
    struct ps_decision d = dec(p, "other.example.com", 443, NULL);
    assert_int_equal(d.verdict, PS_ALLOW);
    assert_true(d.would_deny);
    assert_string_equal(d.reason, "no_matching_rule");
    d = dec(p, "evil.example.com", 443, NULL);
    assert_int_equal(d.verdict, PS_ALLOW);
    assert_true(d.would_deny);
    assert_string_equal(d.where, "profiles/p.conf:5");
    d = dec(p, "github.com", 443, NULL);
    assert_int_equal(d.verdict, PS_ALLOW);
    assert_false(d.would_deny);
}

static void test_inference_name(void **state)
{
    (void)state;
    const struct ps_profile *with = profile("[Inference]\nModels=fast\n");
    const struct ps_profile *without = profile("");
    assert_int_equal(dec(with, "Inference.Local.", 443, NULL).verdict, PS_ALLOW);
    assert_string_equal(dec(with, "inference.local", 443, NULL).reason, "inference");
    assert_int_equal(dec(without, "inference.local", 443, NULL).verdict, PS_DENY);
    /* only port 443 is intercepted: other ports go through normal policy (deny-all here) */
    assert_int_equal(dec(with, "inference.local", 80, NULL).verdict, PS_DENY);
    assert_string_equal(dec(with, "inference.local", 80, NULL).reason, "no_matching_rule");
    assert_true(ps_is_inference_name("INFERENCE.local."));
    assert_false(ps_is_inference_name("inference.local.evil"));
}

static void test_name_allowed(void **state)
{
    (void)state;
    const struct ps_profile *p = profile("[Network]\nAllow=*.github.com:443\nAllow=git.example.com:22 binary=/usr/bin/ssh\n"
                                         "Deny=gist.github.com\nAllow=a.example.com:80,443\nDeny=a.example.com:80\n");
    assert_true(ps_policy_name_allowed(p, "api.github.com"));
    assert_false(ps_policy_name_allowed(p, "gist.github.com"));   /* denied on every port */
    assert_true(ps_policy_name_allowed(p, "git.example.com"));    /* binary unknown to DNS */
    assert_true(ps_policy_name_allowed(p, "a.example.com"));      /* still open on 443 */
    assert_false(ps_policy_name_allowed(p, "github.com"));
    assert_false(ps_policy_name_allowed(p, "evil.example.net"));
    assert_true(ps_policy_name_allowed(p, "inference.local"));
    /* A name whose every allowed port is denied gets no DNS answer (no upstream query), however
     * the denies are split: on the allowed port only, as a list, or as ranges. */
    const struct ps_profile *q = profile("[Network]\nAllow=*.example.com\nDeny=secret.example.com:443\n"
                                         "Allow=b.example.org:80,443\nDeny=b.example.org:80,443\n"
                                         "Allow=c.example.org:*\nDeny=c.example.org:1-100\nDeny=c.example.org:101-65535\n"
                                         "Allow=d.example.org:8000-8010\nDeny=d.example.org:8000-8004\nDeny=d.example.org:8006-8010\n"
                                         "Allow=e.example.org:443\nDeny=e.example.org:443 binary=/usr/bin/curl\n");
    struct ps_decision dq;
    ps_policy_name_decide(q, "secret.example.com", &dq);
    assert_int_equal(dq.verdict, PS_DENY);
    assert_string_equal(dq.reason, "deny_rule");
    assert_true(ps_policy_name_allowed(q, "public.example.com"));
    assert_false(ps_policy_name_allowed(q, "b.example.org"));
    assert_false(ps_policy_name_allowed(q, "c.example.org"));
    assert_true(ps_policy_name_allowed(q, "d.example.org"));      /* 8005 is still open */
    assert_true(ps_policy_name_allowed(q, "e.example.org"));      /* binary deny: not for everyone */
    /* agreement with the per-port decision: no port of secret.example.com is allowed */
    for (unsigned port = 1; port <= 65535; port++) {
        struct ps_decision dp;
        ps_policy_decide(q, "secret.example.com", (uint16_t)port, NULL, &dp);
        if (dp.verdict != PS_DENY)
            fail_msg("port %u allowed", port);
    }
    const struct ps_profile *r = profile("[Network]\nMode=report\n");
    struct ps_decision d;
    ps_policy_name_decide(r, "anything.example.com", &d);
    assert_int_equal(d.verdict, PS_ALLOW);
    assert_true(d.would_deny);
}

static void test_name_normalize(void **state)
{
    (void)state;
    char out[PS_MAX_NAME + 1];
    assert_int_equal(ps_name_normalize("WWW.Example.COM.", out), 0);
    assert_string_equal(out, "www.example.com");
    assert_int_equal(ps_name_normalize("-a.com", out), -1);
    assert_int_equal(ps_name_normalize("a-.com", out), -1);
    assert_int_equal(ps_name_normalize("a..com", out), -1);
    assert_int_equal(ps_name_normalize(".", out), -1);
    assert_int_equal(ps_name_normalize("127.1", out), -1);     /* abbreviated IPv4, not a name */
    assert_int_equal(ps_name_normalize("a b.com", out), -1);
    char label[80];
    memset(label, 'a', 64);
    strcpy(label + 64, ".com");
    assert_int_equal(ps_name_normalize(label, out), -1);       /* 64-byte label */
    char longname[300];
    for (int i = 0; i < 127; i++)
        memcpy(longname + 2 * i, "a.", 2);
    strcpy(longname + 254, "co");
    assert_int_equal(ps_name_normalize(longname, out), -1);    /* over 253 */
}

static struct sockaddr_storage sa(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
        ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
        ss.ss_family = AF_INET6;
    else
        fail_msg("bad test address %s", ip);
    return ss;
}

static enum ps_addr_class cls(const char *ip)
{
    struct sockaddr_storage ss = sa(ip);
    return ps_addr_classify((struct sockaddr *)&ss, &cfg->global.synthetic_range);
}

static void test_classify(void **state)
{
    (void)state;
    static const struct { const char *ip; enum ps_addr_class c; } cases[] = {
        { "93.184.216.34", PS_ADDR_PUBLIC },      { "203.0.113.10", PS_ADDR_PUBLIC },
        { "192.0.2.1", PS_ADDR_PUBLIC },          { "198.51.100.7", PS_ADDR_PUBLIC },
        { "2001:db8::10", PS_ADDR_PUBLIC },       { "2606:4700::1111", PS_ADDR_PUBLIC },
        { "127.0.0.1", PS_ADDR_LOOPBACK },        { "127.8.9.10", PS_ADDR_LOOPBACK },
        { "::1", PS_ADDR_LOOPBACK },              { "0.0.0.0", PS_ADDR_UNSPECIFIED },
        { "::", PS_ADDR_UNSPECIFIED },            { "169.254.1.1", PS_ADDR_LINK_LOCAL },
        { "fe80::1", PS_ADDR_LINK_LOCAL },        { "169.254.169.254", PS_ADDR_METADATA },
        { "fd00:ec2::254", PS_ADDR_METADATA },    { "10.1.2.3", PS_ADDR_PRIVATE },
        { "172.16.0.1", PS_ADDR_PRIVATE },        { "172.31.255.255", PS_ADDR_PRIVATE },
        { "172.32.0.1", PS_ADDR_PUBLIC },         { "192.168.1.1", PS_ADDR_PRIVATE },
        { "fd12:3456::1", PS_ADDR_PRIVATE },      { "100.64.0.1", PS_ADDR_CGNAT },
        { "100.127.255.255", PS_ADDR_CGNAT },     { "224.0.0.1", PS_ADDR_MULTICAST },
        { "ff02::1", PS_ADDR_MULTICAST },         { "198.18.0.5", PS_ADDR_SYNTHETIC },
        { "198.19.255.1", PS_ADDR_SYNTHETIC },    { "255.255.255.255", PS_ADDR_RESERVED },
        { "240.0.0.1", PS_ADDR_RESERVED },
        /* embeddings of IPv4 are judged by what they embed */
        { "::ffff:127.0.0.1", PS_ADDR_LOOPBACK }, { "::ffff:169.254.169.254", PS_ADDR_METADATA },
        { "::ffff:93.184.216.34", PS_ADDR_PUBLIC },
        { "64:ff9b::a9fe:a9fe", PS_ADDR_METADATA }, { "64:ff9b::10.0.0.1", PS_ADDR_PRIVATE },
        { "64:ff9b::93.184.216.34", PS_ADDR_PUBLIC },
        { "2002:7f00:1::", PS_ADDR_LOOPBACK },    { "2002:a00:1::1", PS_ADDR_PRIVATE },
        { "2002:5db8:d822::1", PS_ADDR_PUBLIC },
        /* Teredo: client 10.0.0.1 is stored inverted (f5ff:fffe) */
        { "2001:0:5db8:d822:0:0:f5ff:fffe", PS_ADDR_PRIVATE },
        { "::127.0.0.1", PS_ADDR_LOOPBACK },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum ps_addr_class got = cls(cases[i].ip);
        if (got != cases[i].c)
            fail_msg("%s: expected %s, got %s", cases[i].ip, ps_addr_class_name(cases[i].c),
                     ps_addr_class_name(got));
    }
}

static bool permitted(const char *ip, bool via_name, const struct ps_profile *p, uint16_t port)
{
    struct sockaddr_storage ss = sa(ip);
    const char *why = NULL;
    bool ok = ps_addr_permitted((struct sockaddr *)&ss, &cfg->global.synthetic_range, via_name, p,
                                port, &why);
    assert_non_null(why);
    return ok;
}

/* This host's own addresses (proxyd reads them from its interfaces) rank as loopback, in every
 * form that embeds them, and stop doing so when the set changes. */
static void test_local_addresses_are_loopback(void **state)
{
    (void)state;
    struct sockaddr_storage set[2];
    memset(set, 0, sizeof set);
    struct sockaddr_in *a = (struct sockaddr_in *)&set[0];
    a->sin_family = AF_INET;
    inet_pton(AF_INET, "93.184.216.34", &a->sin_addr);
    struct sockaddr_in6 *b = (struct sockaddr_in6 *)&set[1];
    b->sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2a00:1450::5", &b->sin6_addr);
    ps_addr_set_local(set, 2);
    static const char *const own[] = { "93.184.216.34", "::ffff:93.184.216.34", "64:ff9b::5db8:d822",
                                       "2a00:1450::5" };
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        if (strchr(own[i], ':')) {
            ss.ss_family = AF_INET6;
            assert_int_equal(inet_pton(AF_INET6, own[i], &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
        } else {
            ss.ss_family = AF_INET;
            assert_int_equal(inet_pton(AF_INET, own[i], &((struct sockaddr_in *)&ss)->sin_addr), 1);
        }
        if (ps_addr_classify((struct sockaddr *)&ss, NULL) != PS_ADDR_LOOPBACK)
            fail_msg("%s is this host's, not loopback", own[i]);
    }
    /* a neighbour stays public; an empty set makes the host's address public again */
    struct sockaddr_in n = { .sin_family = AF_INET };
    inet_pton(AF_INET, "93.184.216.35", &n.sin_addr);
    assert_int_equal(ps_addr_classify((struct sockaddr *)&n, NULL), PS_ADDR_PUBLIC);
    ps_addr_set_local(NULL, 0);
    assert_int_equal(ps_addr_classify((struct sockaddr *)&set[0], NULL), PS_ADDR_PUBLIC);
    /* metadata stays metadata even when assigned to this host (no rule may open it) */
    struct sockaddr_in md = { .sin_family = AF_INET };
    inet_pton(AF_INET, "169.254.169.254", &md.sin_addr);
    struct sockaddr_storage mds;
    memset(&mds, 0, sizeof mds);
    memcpy(&mds, &md, sizeof md);
    ps_addr_set_local(&mds, 1);
    assert_int_equal(ps_addr_classify((struct sockaddr *)&md, NULL), PS_ADDR_METADATA);
    ps_addr_set_local(NULL, 0);
}

static void test_addr_permitted(void **state)
{
    (void)state;
    const struct ps_profile *p = profile("[Network]\nAllow=10.20.0.0/16:5432\nAllow=0.0.0.0/0:443\n"
                                         "Allow=169.254.0.0/16:80\nAllow=127.0.0.1:8080\nAllow=[::/0]:443\n");
    /* names reach only public addresses */
    assert_true(permitted("93.184.216.34", true, p, 443));
    assert_true(permitted("203.0.113.10", true, p, 443));
    assert_false(permitted("10.20.1.1", true, p, 5432));
    assert_false(permitted("127.0.0.1", true, p, 8080));
    assert_false(permitted("::ffff:10.20.1.1", true, p, 5432));
    /* an explicit CIDR opens its private range, on its ports only */
    assert_true(permitted("10.20.1.1", false, p, 5432));
    assert_false(permitted("10.20.1.1", false, p, 5433));
    assert_true(permitted("127.0.0.1", false, p, 8080));
    /* ... but a catch-all does not open private space */
    assert_false(permitted("10.99.0.1", false, p, 443));
    assert_false(permitted("192.168.0.1", false, p, 443));
    assert_false(permitted("fd00::1", false, p, 443));
    /* metadata never, whatever the rules say */
    assert_false(permitted("169.254.169.254", false, p, 80));
    assert_false(permitted("fd00:ec2::254", false, p, 443));
    assert_true(permitted("169.254.1.1", false, p, 80));
    /* nor the synthetic range, unspecified or multicast */
    assert_false(permitted("198.18.0.1", false, p, 443));
    assert_false(permitted("0.0.0.0", false, p, 443));
    assert_false(permitted("224.0.0.1", false, p, 443));
    /* no profile: only public */
    assert_true(permitted("93.184.216.34", false, NULL, 443));
    assert_false(permitted("10.20.1.1", false, NULL, 5432));
}

static void test_decide_addr(void **state)
{
    (void)state;
    const struct ps_profile *p = profile("[Network]\nAllow=169.254.0.0/16:80\nAllow=10.0.0.0/8:*\nMode=report\n");
    struct sockaddr_storage ss = sa("169.254.169.254");
    struct ps_decision d;
    ps_policy_decide_addr(p, (struct sockaddr *)&ss, 80, NULL, &cfg->global.synthetic_range, &d);
    assert_int_equal(d.verdict, PS_DENY);              /* not softened by report mode */
    assert_false(d.would_deny);
    assert_string_equal(d.reason, "address_class_metadata");
    ss = sa("10.1.1.1");
    ps_policy_decide_addr(p, (struct sockaddr *)&ss, 22, NULL, &cfg->global.synthetic_range, &d);
    assert_int_equal(d.verdict, PS_ALLOW);
    assert_false(d.would_deny);
    ss = sa("192.168.1.1");
    ps_policy_decide_addr(p, (struct sockaddr *)&ss, 22, NULL, &cfg->global.synthetic_range, &d);
    assert_int_equal(d.verdict, PS_DENY);
    assert_string_equal(d.reason, "address_class_private");
}

static void test_cidr_helpers(void **state)
{
    (void)state;
    struct ps_cidr c;
    char buf[64];
    assert_int_equal(ps_cidr_parse("10.0.0.0/8", &c), 0);
    assert_int_equal(c.prefix, 8);
    assert_false(ps_cidr_has_host_bits(&c));
    ps_cidr_format(&c, buf, sizeof buf);
    assert_string_equal(buf, "10.0.0.0/8");
    assert_int_equal(ps_cidr_parse("2001:db8::1", &c), 0);
    assert_int_equal(c.prefix, 128);
    assert_int_equal(ps_cidr_parse("10.0.0.0/33", &c), -1);
    assert_int_equal(ps_cidr_parse("::/129", &c), -1);
    assert_int_equal(ps_cidr_parse("10.0.0.0/", &c), -1);
    assert_int_equal(ps_cidr_parse("10.0.0.0/-1", &c), -1);
    assert_int_equal(ps_cidr_parse("10.0.0/8", &c), -1);
    assert_int_equal(ps_cidr_parse("", &c), -1);
    assert_int_equal(ps_cidr_parse("10.0.0.1/8", &c), 0);
    assert_true(ps_cidr_has_host_bits(&c));
}

/* explain and suggested rules print rules with ps_rule_format: the text must mean the same rule */
static void test_rule_format_round_trip(void **state)
{
    (void)state;
    const struct ps_profile *p = profile("[Network]\nAllow=GitHub.com\nAllow=*.example.com:80,8000-8100\n"
                                         "Allow=10.20.0.0/16:*\nAllow=[2001:db8::/32]:22 binary=/usr/bin/ssh\n"
                                         "Deny=gist.github.com\nAllow=192.0.2.7:5432\n");
    static const char *want[] = { "github.com:443", "*.example.com:80,8000-8100", "10.20.0.0/16:*",
                                  "[2001:db8::/32]:22 binary=/usr/bin/ssh", "gist.github.com:*",
                                  "192.0.2.7:5432" };
    char body[2048] = "[Network]\n", buf[512];
    for (size_t i = 0; i < p->n_rules; i++) {
        ps_rule_format(&p->rules[i], buf, sizeof buf);
        assert_string_equal(buf, want[i]);
        snprintf(body + strlen(body), sizeof body - strlen(body), "%s=%s\n",
                 p->rules[i].action == PS_RULE_ALLOW ? "Allow" : "Deny", buf);
    }
    const struct ps_profile *q = profile(body);
    assert_int_equal(q->n_rules, p->n_rules);
    for (size_t i = 0; i < p->n_rules; i++) {
        char again[512];
        ps_rule_format(&p->rules[i], buf, sizeof buf);
        ps_rule_format(&q->rules[i], again, sizeof again);
        assert_string_equal(buf, again);
        assert_int_equal(p->rules[i].action, q->rules[i].action);
    }
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_no_match_is_deny), T(test_allow_names_rule), T(test_deny_over_allow),
        T(test_wildcard_not_apex), T(test_case_and_trailing_dot), T(test_ports),
        T(test_ip_and_cidr_rules), T(test_binary), T(test_report_mode), T(test_inference_name),
        T(test_name_allowed), T(test_name_normalize), T(test_classify), T(test_addr_permitted), T(test_local_addresses_are_loopback),
        T(test_decide_addr), T(test_cidr_helpers), T(test_rule_format_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
