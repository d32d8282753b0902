/* The rendered ruleset (netfilter/nft_render.c) for configurations parsed by common/: both
 * families, every reject and drop limited to the sandboxed UIDs (DESIGN.md §9.9), proxyd's
 * account exempt, no blanket loopback accept, the log rule, a version that follows the rules, and
 * FILE:LINE errors for what nftables cannot express.  Loading it into a kernel is the integration
 * tests' job (t_egress_*.sh). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pwd.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "netfilter/nft.h"

/* "nobody" exists on every Debian system and stands in for proxyd's account. */
#define PROXY "nobody"

static const char base_conf[] =
    "[Proxy]\n"
    "User=" PROXY "\n"
    "ExplicitListen=127.0.0.1:3128\n"
    "ExplicitListen=[::1]:3128\n"
    "TransparentListen=127.0.0.1:3129\n"
    "TransparentListen=[::1]:3129\n"
    "DNSListen=127.0.0.1:3153\n"
    "DNSListen=[::1]:3153\n";

static struct ps_diags diags;

static struct ps_config *parse(const char *text)
{
    struct ps_config *cfg = ps_config_new_empty("/nonexistent");
    memset(&diags, 0, sizeof diags);
    assert_int_equal(ps_config_parse_buffer(cfg, PS_FILE_GLOBAL, "sandbox.conf", text, strlen(text),
                                            &diags), 0);
    assert_int_equal(diags.n, 0);
    return cfg;
}

static char *render(const char *text)
{
    struct ps_config *cfg = parse(text);
    char *out = ps_nft_render(cfg, &diags);
    if (!out)
        ps_diags_print(&diags, stderr);
    assert_non_null(out);
    ps_config_free(cfg);
    ps_diags_free(&diags);
    return out;
}

/* Render must fail with exactly one diag at file:line whose message contains needle. */
static void render_fails(const char *text, unsigned line, const char *needle)
{
    struct ps_config *cfg = parse(text);
    char *out = ps_nft_render(cfg, &diags);
    assert_null(out);
    assert_int_equal(diags.n, 1);
    assert_string_equal(diags.v[0].file, "sandbox.conf");
    assert_int_equal(diags.v[0].line, line);
    if (!strstr(diags.v[0].msg, needle))
        fail_msg("message [%s] lacks [%s]", diags.v[0].msg, needle);
    ps_diags_free(&diags);
    ps_config_free(cfg);
}

static bool has_line(const char *text, const char *re)
{
    regex_t r;
    assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NEWLINE | REG_NOSUB), 0);
    bool m = regexec(&r, text, 0, NULL, 0) == 0;
    regfree(&r);
    return m;
}

static void assert_has(const char *text, const char *re)
{
    if (!has_line(text, re))
        fail_msg("no line matches /%s/ in:\n%s", re, text);
}

static void assert_lacks(const char *text, const char *re)
{
    if (has_line(text, re))
        fail_msg("a line matches /%s/ in:\n%s", re, text);
}

static uid_t proxy_uid(void)
{
    struct passwd *pw = getpwnam(PROXY);
    assert_non_null(pw);
    return pw->pw_uid;
}

static void both_families_steered(void **state)
{
    (void)state;
    char *t = render(base_conf);
    assert_has(t, "^table inet pam_sandbox \\{$");
    assert_has(t, "meta skuid @users meta nfproto ipv4 meta l4proto \\{ tcp, udp \\} th dport 53 redirect to :3153-3168 ");
    assert_has(t, "meta skuid @users meta nfproto ipv6 meta l4proto \\{ tcp, udp \\} th dport 53 redirect to :3153-3168 ");
    /* the transparent and DNS ports are ranges (PS_REDIRECT_PORTS): conntrack never rewrites a
     * source port */
    assert_has(t, "meta skuid @users meta nfproto ipv4 meta l4proto tcp redirect to :3129-3144 ");
    assert_has(t, "meta skuid @users meta nfproto ipv6 meta l4proto tcp redirect to :3129-3144 ");
    assert_has(t, "meta skuid @users ip daddr 127\\.0\\.0\\.1 fib daddr type local tcp dport 3129-3144 accept");
    assert_has(t, "meta skuid @users ip6 daddr ::1 fib daddr type local tcp dport 3129-3144 accept");
    assert_has(t, "meta skuid @users ip6 daddr ::1 fib daddr type local tcp dport 3129-3144 return");
    assert_has(t, "meta skuid @users ip6 daddr ::1 fib daddr type local udp dport 3153-3168 accept");
    assert_has(t, "meta skuid @users ip6 daddr ::1 fib daddr type local tcp dport 3128 return");
    /* Rejections: TCP reset, UDP port-unreachable, the rest dropped. */
    assert_has(t, "meta l4proto tcp .*reject with tcp reset$");
    assert_has(t, "meta l4proto udp .*reject with icmpx port-unreachable$");
    assert_has(t, "meta skuid @users counter name \"dropped_other\" drop$");
    free(t);
}

/* §9.9: a reject/drop without "meta skuid @users" also hits ownerless kernel replies (RSTs) and
 * everyone else's traffic; so does any accept or redirect without it.  The one exception is chain
 * remapped (input hook: no socket owner there), whose rules match only flows that nftables
 * redirected (ct status dnat) to proxyd's own ports, and jump to refuse_remapped, which nothing
 * else reaches. */
static void every_verdict_is_for_sandboxed_uids(void **state)
{
    (void)state;
    char *t = render(base_conf);
    int verdicts = 0;
    bool in_refuse = false;
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        if (strstr(line, "chain refuse_remapped {") || strstr(line, "chain refuse_squatter {"))
            in_refuse = !strstr(line, "}");        /* the skeleton's one-line declaration */
        else if (strcmp(line, "\t}") == 0)
            in_refuse = false;
        if (strstr(line, "jump refuse_remapped") && !strstr(line, "\t\tct status dnat ct status snat "))
            fail_msg("refuse_remapped reached by another rule: %s", line);
        if (strstr(line, "jump refuse_squatter") && !strstr(line, " socket mark != 0x70730001 jump "))
            fail_msg("refuse_squatter reached by another rule: %s", line);
        if (in_refuse || !has_line(line, " (reject|drop|accept|redirect to|log prefix)( |$)"))
            continue;
        if (strstr(line, "policy accept;"))
            continue;             /* the base chains' policy: whoever is not sandboxed passes */
        verdicts++;
        if (!strstr(line, "meta skuid @users "))
            fail_msg("verdict without meta skuid @users: %s", line);
    }
    assert_true(verdicts >= 15);
    free(t);
}

/* A steered flow whose source port conntrack rewrote is refused before proxyd (see nft_render.c):
 * every redirect target, TCP with a reset, UDP with port-unreachable, counted. */
static void remapped_flows_refused(void **state)
{
    (void)state;
    char *t = render(base_conf);
    const char *chain = strstr(t, "chain remapped {");
    assert_non_null(chain);
    assert_has(t, "^\t\ttype filter hook input priority filter; policy accept;$");
    assert_has(t, "^\t\tct status dnat ct status snat ip daddr 127\\.0\\.0\\.1 fib daddr type local tcp dport 3129-3144 "
                  "jump refuse_remapped ");
    assert_has(t, "^\t\tct status dnat ct status snat ip6 daddr ::1 fib daddr type local tcp dport 3129-3144 jump refuse_remapped ");
    assert_has(t, "^\t\tct status dnat ct status snat ip daddr 127\\.0\\.0\\.1 fib daddr type local udp dport 3153-3168 jump refuse_remapped ");
    assert_has(t, "^\t\tct status dnat ct status snat ip6 daddr ::1 fib daddr type local tcp dport 3153-3168 jump refuse_remapped ");
    /* the refusal: logged (rate-limited) like every rejection, counted, TCP reset / port-unreachable */
    const char *refuse = strstr(t, "chain refuse_remapped {");
    assert_non_null(refuse);
    assert_has(t, "^\t\tlimit rate 10/second burst 20 packets log prefix \"pam_sandbox reject: \" "
                  "log prefix \"pam_sandbox reject: \" group 7100$");
    assert_has(t, "^\t\tmeta l4proto tcp counter name \"remapped\" reject with tcp reset$");
    assert_has(t, "^\t\tcounter name \"remapped\" reject with icmpx port-unreachable$");
    const char *log = strstr(refuse, "log prefix"), *rej = strstr(refuse, "reject");
    assert_true(log && rej && log < rej);
    assert_has(t, "^\tcounter remapped \\{ \\}$");
    /* the explicit port is not a redirect target */
    const char *end = strstr(chain, "\n\t}\n");
    assert_non_null(end);
    const char *p3128 = strstr(chain, "dport 3128");
    assert_true(!p3128 || p3128 > end);
    free(t);
}

/* While proxyd is down, whoever binds its ports first would get what nftables steers there
 * (see nft_render.c, chain listeners): every endpoint, TCP and UDP, is for sockets carrying
 * PS_PROXY_SOCKET_MARK only; the rest is refused, logged and counted. */
static void listeners_only_proxyds_sockets(void **state)
{
    (void)state;
    char *t = render(base_conf);
    const char *chain = strstr(t, "\tchain listeners {\n");
    assert_non_null(chain);
    assert_int_equal(PS_PROXY_SOCKET_MARK, 0x70730001u);
    assert_has(t, "^\t\tip daddr 127\\.0\\.0\\.1 fib daddr type local tcp dport 3128 socket mark != 0x70730001 "
                  "jump refuse_squatter ");
    assert_has(t, "^\t\tip6 daddr ::1 fib daddr type local tcp dport 3128 socket mark != 0x70730001 jump refuse_squatter ");
    assert_has(t, "^\t\tip daddr 127\\.0\\.0\\.1 fib daddr type local tcp dport 3129-3144 socket mark != 0x70730001 "
                  "jump refuse_squatter ");
    assert_has(t, "^\t\tip6 daddr ::1 fib daddr type local tcp dport 3129-3144 socket mark != 0x70730001 jump refuse_squatter ");
    assert_has(t, "^\t\tip daddr 127\\.0\\.0\\.1 fib daddr type local udp dport 3153-3168 socket mark != 0x70730001 "
                  "jump refuse_squatter ");
    assert_has(t, "^\t\tip6 daddr ::1 fib daddr type local tcp dport 3153-3168 socket mark != 0x70730001 jump refuse_squatter ");
    assert_has(t, "^\t\tip6 daddr ::1 fib daddr type local udp dport 3153-3168 socket mark != 0x70730001 jump refuse_squatter ");
    const char *refuse = strstr(t, "\tchain refuse_squatter {\n");
    assert_non_null(refuse);
    assert_has(t, "^\t\tmeta l4proto tcp counter name \"squatter\" reject with tcp reset$");
    assert_has(t, "^\t\tcounter name \"squatter\" reject with icmpx port-unreachable$");
    const char *log = strstr(refuse, "log prefix \"pam_sandbox reject: not proxyd's socket: \""),
               *rej = strstr(refuse, "reject with");
    assert_true(log && rej && log < rej);
    assert_has(t, "^\tcounter squatter \\{ \\}$");
    free(t);
}

static void proxyd_account_exempt_and_no_blanket_loopback(void **state)
{
    (void)state;
    char *t = render(base_conf);
    char re[96];
    snprintf(re, sizeof re, "^\t\tmeta skuid %u return ", (unsigned)proxy_uid());
    /* First rule of both chains. */
    assert_has(t, re);
    const char *steer = strstr(t, "chain steer {"), *egress = strstr(t, "chain egress {");
    assert_non_null(steer);
    assert_non_null(egress);
    char want[64];
    snprintf(want, sizeof want, "meta skuid %u return", (unsigned)proxy_uid());
    const char *s1 = strstr(steer, want), *s2 = strstr(egress, want);
    assert_non_null(s1);
    assert_non_null(s2);
    assert_true(s1 < egress);
    /* Nothing accepts by interface or by loopback range without a port (an interface is only
     * ever a reason to drop: chain leave). */
    assert_lacks(t, " (iif|oif|iifname|oifname) .* accept");
    assert_lacks(t, " (iif|oif|iifname|oifname) \"lo\" ");
    assert_lacks(t, "daddr 127\\.0\\.0\\.0/8");
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, " accept ") && !strstr(line, " dport "))
            fail_msg("accept without a port: %s", line);
    free(t);
}

/* A sandboxed socket bound to another device than lo leaves by it, even to 127.0.0.1 after the
 * redirect: dropped at postrouting, whatever its address. */
static void bound_device_dropped(void **state)
{
    (void)state;
    char *t = render(base_conf);
    const char *leave = strstr(t, "chain leave {");
    assert_non_null(leave);
    assert_has(leave, "^\t\ttype filter hook postrouting priority filter; policy accept;$");
    assert_has(leave, "^\t\tmeta skuid @users oifname != \"lo\" counter name \"off_loopback\" drop ");
    assert_has(t, "^\tcounter off_loopback \\{ \\}$");
    free(t);
}

static void log_rule(void **state)
{
    (void)state;
    char *t = render(base_conf);
    assert_has(t, "meta skuid @users limit rate [0-9]+/second burst [0-9]+ packets "
                  "log prefix \"pam_sandbox reject: \" flags skuid log prefix \"pam_sandbox reject: \" group 7100$");
    /* The log comes before every reject/drop of the chain. */
    const char *log = strstr(t, "log prefix"), *rej = strstr(t, "reject with");
    assert_true(log && rej && log < rej);
    free(t);
}

static void wildcard_and_missing_family(void **state)
{
    (void)state;
    char *t = render("[Proxy]\nUser=" PROXY "\nExplicitListen=203.0.113.1:3128\n"
                     "TransparentListen=0.0.0.0:3129\nDNSListen=127.0.0.1:3153\n");
    assert_has(t, "meta skuid @users meta nfproto ipv4 fib daddr type local tcp dport 3129-3144 accept");
    /* a listen address taken as written only while it is one of this host's: a remote one (a
     * mistake, a moved lease) would otherwise be exempted and reached directly */
    assert_has(t, "meta skuid @users ip daddr 203\\.0\\.113\\.1 fib daddr type local tcp dport 3128 accept");
    assert_lacks(t, "daddr 203\\.0\\.113\\.1 tcp");
    assert_has(t, "meta nfproto ipv4 meta l4proto tcp redirect to :3129-3144 ");
    /* No IPv6 listener: IPv6 is not redirected anywhere, so the reject rules get it. */
    assert_lacks(t, "meta nfproto ipv6 meta l4proto tcp redirect");
    assert_lacks(t, "nfproto ipv6 .*dport 53 redirect");
    free(t);
}

static void version_follows_the_rules(void **state)
{
    (void)state;
    uint32_t v1, v2, v3;
    struct ps_config *cfg = parse(base_conf);
    assert_int_equal(ps_nft_config_version(cfg, &v1, &diags), 0);
    assert_int_equal(ps_nft_config_version(cfg, &v2, &diags), 0);
    assert_int_equal(v1, v2);
    char *t = ps_nft_render(cfg, &diags);
    char el[64];
    snprintf(el, sizeof el, "elements = { 0x%08x }", v1);
    assert_non_null(strstr(t, el));
    free(t);
    ps_config_free(cfg);
    cfg = parse("[Proxy]\nUser=" PROXY "\nTransparentListen=127.0.0.1:3130\n");
    assert_int_equal(ps_nft_config_version(cfg, &v3, &diags), 0);
    assert_int_not_equal(v1, v3);
    ps_config_free(cfg);
    /* The same settings on other lines (comments added): the same version, although the rule
     * comments that name FILE:LINE differ. */
    char moved[sizeof base_conf + 64];
    snprintf(moved, sizeof moved, "# edited\n\n%s", base_conf);
    cfg = parse(moved);
    assert_int_equal(ps_nft_config_version(cfg, &v3, &diags), 0);
    assert_int_equal(v1, v3);
    t = ps_nft_render(cfg, &diags);
    assert_non_null(strstr(t, "TransparentListen= sandbox.conf:7"));
    free(t);
    ps_config_free(cfg);
    ps_diags_free(&diags);
}

static void unrenderable_listen_addresses(void **state)
{
    (void)state;
    /* redirect goes to 127.0.0.1 / ::1: a listener elsewhere would never get the connection. */
    render_fails("[Proxy]\nUser=" PROXY "\nTransparentListen=192.0.2.5:3129\n", 3,
                 "TransparentListen=192.0.2.5:3129: nftables redirects a local connection to 127.0.0.1");
    render_fails("[Proxy]\nUser=" PROXY "\n\nDNSListen=127.0.0.2:3153\n", 4,
                 "DNSListen=127.0.0.2:3153");
    render_fails("[Proxy]\nUser=" PROXY "\nTransparentListen=[2001:db8::1]:3129\n", 3,
                 "listener must be there or on [::]");
    /* One family, one redirect port. */
    render_fails("[Proxy]\nUser=" PROXY "\nTransparentListen=127.0.0.1:3129\n"
                 "TransparentListen=[::1]:3129\nTransparentListen=0.0.0.0:3200\n", 5,
                 "a second IPv4 port (3200, first 3129)");
    render_fails("[Proxy]\nUser=" PROXY "\nDNSListen=[::1]:53 [::]:5353\n", 3,
                 "a second IPv6 port (5353, first 53)");
}

/* No such account: nothing runs as it, so there is nothing to exempt, and the sandboxed accounts
 * are steered all the same. */
static void missing_proxy_account(void **state)
{
    (void)state;
    char *t = render("[Proxy]\nUser=no-such-user-59398\n");
    assert_has(t, "# \\[Proxy\\] User=no-such-user-59398 does not exist: no exemption rule");
    assert_lacks(t, "meta skuid [0-9]+ return");
    assert_has(t, "meta skuid @users meta nfproto ipv4 meta l4proto tcp redirect to :3129");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(both_families_steered),
        cmocka_unit_test(every_verdict_is_for_sandboxed_uids),
        cmocka_unit_test(remapped_flows_refused),
        cmocka_unit_test(listeners_only_proxyds_sockets),
        cmocka_unit_test(proxyd_account_exempt_and_no_blanket_loopback),
        cmocka_unit_test(bound_device_dropped),
        cmocka_unit_test(log_rule),
        cmocka_unit_test(wildcard_and_missing_family),
        cmocka_unit_test(version_follows_the_rules),
        cmocka_unit_test(unrenderable_listen_addresses),
        cmocka_unit_test(missing_proxy_account),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
