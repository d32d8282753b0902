/* The config language (DESIGN.md §3): every bad-input case of issue 2 is an error "FILE:LINE:
 * message" (all of them reported, not just the first), the good examples parse to the values and
 * defaults the design gives, and the file-system rules of ps_config_load hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <seccomp.h>
#include <linux/capability.h>
#include "common/config.h"
#include "common/policy.h"

/* ---- helpers ---- */

static struct ps_config *cfg;
static struct ps_diags diags;

static int setup(void **state)
{
    (void)state;
    cfg = ps_config_new_empty("/nonexistent");
    memset(&diags, 0, sizeof diags);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ps_config_free(cfg);
    ps_diags_free(&diags);
    return 0;
}

static int parse(enum ps_file_kind kind, const char *text)
{
    const char *name = kind == PS_FILE_GLOBAL ? "sandbox.conf"
                     : kind == PS_FILE_PROFILE ? "profiles/t.conf" : "inference.d/t.conf";
    return ps_config_parse_buffer(cfg, kind, name, text, strlen(text), &diags);
}

/* The diagnostics contain one at this line whose message contains needle. */
static void expect_diag(unsigned line, const char *needle)
{
    for (size_t i = 0; i < diags.n; i++)
        if (diags.v[i].line == line && strstr(diags.v[i].msg, needle))
            return;
    for (size_t i = 0; i < diags.n; i++)
        print_message("  have %s:%u: %s\n", diags.v[i].file, diags.v[i].line, diags.v[i].msg);
    fail_msg("no diagnostic at line %u containing '%s'", line, needle);
}

/* A profile body that is wrong only in `bad` (placed at line 3 after a valid [Match]) fails with
 * one error at line 3 mentioning needle. */
static void bad_profile_line(const char *section, const char *bad, const char *needle)
{
    char text[8192];
    snprintf(text, sizeof text, "[Match]\nUser=alice\n%s\n", section);
    size_t n = strlen(text);
    snprintf(text + n, sizeof text - n, "%s\n", bad);
    /* the bad line is line 4 */
    ps_diags_free(&diags);
    size_t before = cfg->n_profiles;
    assert_int_equal(parse(PS_FILE_PROFILE, text), -1);
    assert_int_equal(cfg->n_profiles, before);        /* an invalid profile is never kept */
    expect_diag(4, needle);
    assert_int_equal(diags.n, 1);
    assert_string_equal(diags.v[0].file, "profiles/t.conf");
}

static const char *design_profile =
    "[Match]\n"
    "Group=sandboxed                  # any listed group, supplementary groups included\n"
    "User=ci-runner                   # or any listed user\n"
    "\n"
    "[Limits]                         # systemd names\n"
    "LimitNPROC=512                   # soft=hard\n"
    "LimitNOFILE=1024:4096\n"
    "LimitCORE=0\n"
    "\n"
    "[Process]\n"
    "NoNewPrivileges=yes\n"
    "CapabilityBoundingSet=           # empty: drop all\n"
    "Umask=0077\n"
    "\n"
    "[Seccomp]\n"
    "Network=proxy\n"
    "AllowNetlink=audit\n"
    "DenySyscalls=\n"
    "AllowSyscalls=\n"
    "\n"
    "[Network]\n"
    "Allow=github.com:443\n"
    "Allow=*.githubusercontent.com:443\n"
    "Allow=pypi.org:80,443\n"
    "Allow=10.20.0.0/16:5432\n"
    "Allow=git.example.com:22 binary=/usr/bin/ssh\n"
    "Deny=gist.github.com             # deny rules win over allow rules\n"
    "Mode=enforce\n"
    "\n"
    "[Inference]\n"
    "Models=fast gpt-4o\n"
    "RequestsPerMinute=60\n";

/* ---- good input ---- */

static void test_design_example_profile(void **state)
{
    (void)state;
    assert_int_equal(parse(PS_FILE_PROFILE, design_profile), 0);
    assert_int_equal(diags.n, 0);
    assert_int_equal(cfg->n_profiles, 1);
    const struct ps_profile *p = &cfg->profiles[0];
    assert_string_equal(p->name, "t");
    assert_int_equal(p->n_match_groups, 1);
    assert_string_equal(p->match_groups[0], "sandboxed");
    assert_int_equal(p->match_group_origins[0].line, 2);
    assert_string_equal(p->match_users[0], "ci-runner");
    assert_true(p->limits[RLIMIT_NPROC].set);
    assert_int_equal(p->limits[RLIMIT_NPROC].soft, 512);
    assert_int_equal(p->limits[RLIMIT_NPROC].hard, 512);
    assert_int_equal(p->limits[RLIMIT_NPROC].origin.line, 6);
    assert_int_equal(p->limits[RLIMIT_NOFILE].soft, 1024);
    assert_int_equal(p->limits[RLIMIT_NOFILE].hard, 4096);
    assert_int_equal(p->limits[RLIMIT_CORE].hard, 0);
    assert_false(p->limits[RLIMIT_AS].set);
    assert_true(p->no_new_privs);
    assert_int_equal(p->cap_keep, 0);
    assert_int_equal(p->umask, 077);
    assert_int_equal(p->network, PS_NET_PROXY);
    assert_int_equal(p->allow_netlink, PS_NETLINK_AUDIT);
    assert_int_equal(p->n_rules, 6);
    assert_int_equal(p->rules[0].kind, PS_HOST_EXACT);
    assert_string_equal(p->rules[0].host, "github.com");
    assert_int_equal(p->rules[1].kind, PS_HOST_SUFFIX);
    assert_string_equal(p->rules[1].host, "githubusercontent.com");
    assert_int_equal(p->rules[2].n_ports, 2);
    assert_int_equal(p->rules[3].kind, PS_HOST_CIDR);
    assert_int_equal(p->rules[3].cidr.prefix, 16);
    assert_string_equal(p->rules[4].binary, "/usr/bin/ssh");
    assert_int_equal(p->rules[5].action, PS_RULE_DENY);
    /* Deny= without a port shuts every port */
    assert_int_equal(p->rules[5].ports[0].lo, 1);
    assert_int_equal(p->rules[5].ports[0].hi, 65535);
    assert_int_equal(p->rules[5].origin.line, 27);
    assert_string_equal(p->rules[5].origin.file, "profiles/t.conf");
    assert_int_equal(p->mode, PS_MODE_ENFORCE);
    assert_true(p->has_models);
    assert_int_equal(p->n_models, 2);
    assert_int_equal(p->requests_per_minute, 60);
}

static void test_profile_defaults(void **state)
{
    (void)state;
    assert_int_equal(parse(PS_FILE_PROFILE, "[Match]\nUser=bob\n"), 0);
    const struct ps_profile *p = &cfg->profiles[0];
    assert_true(p->limits[RLIMIT_NPROC].set);
    assert_int_equal(p->limits[RLIMIT_NPROC].hard, PS_DEFAULT_NPROC);
    assert_null(p->limits[RLIMIT_NPROC].origin.file);       /* a default */
    assert_true(p->limits[RLIMIT_CORE].set);
    assert_int_equal(p->limits[RLIMIT_CORE].hard, 0);
    assert_true(p->no_new_privs);
    assert_int_equal(p->cap_keep, 0);
    assert_int_equal(p->umask, -1);
    assert_int_equal(p->network, PS_NET_PROXY);
    assert_int_equal(p->allow_netlink, PS_NETLINK_AUDIT);
    assert_int_equal(p->n_rules, 0);
    assert_int_equal(p->mode, PS_MODE_ENFORCE);
    assert_false(p->has_models);
}

static void test_allow_without_port_is_443(void **state)
{
    (void)state;
    assert_int_equal(parse(PS_FILE_PROFILE, "[Match]\nUser=bob\n[Network]\nAllow=Example.COM.\n"
                                            "Allow=[2001:db8::/32]:22,8000-8100\nAllow=192.0.2.7:*\n"), 0);
    const struct ps_profile *p = &cfg->profiles[0];
    assert_string_equal(p->rules[0].host, "example.com");   /* case and trailing dot folded */
    assert_int_equal(p->rules[0].n_ports, 1);
    assert_int_equal(p->rules[0].ports[0].lo, 443);
    assert_int_equal(p->rules[0].ports[0].hi, 443);
    assert_int_equal(p->rules[1].cidr.family, AF_INET6);
    assert_int_equal(p->rules[1].cidr.prefix, 32);
    assert_int_equal(p->rules[1].ports[1].lo, 8000);
    assert_int_equal(p->rules[1].ports[1].hi, 8100);
    assert_int_equal(p->rules[2].cidr.prefix, 32);
    assert_int_equal(p->rules[2].ports[0].lo, 1);
    assert_int_equal(p->rules[2].ports[0].hi, 65535);
}

static void test_limits_syntax(void **state)
{
    (void)state;
    assert_int_equal(parse(PS_FILE_PROFILE,
                           "[Match]\nGroup=g\n[Limits]\nLimitNPROC=256:512\nLimitAS=4G\n"
                           "LimitFSIZE=10M:infinity\nLimitSTACK=8K\nLimitCPU=2min\nLimitRTTIME=1s\n"
                           "LimitNICE=-5\nLimitRTPRIO=0\nLimitMEMLOCK=infinity\nLimitLOCKS=64\n"
                           "LimitSIGPENDING=100\nLimitMSGQUEUE=800K\nLimitRSS=1G\nLimitDATA=2G\n"
                           "LimitCORE=0\nLimitNOFILE=64:1024\n"), 0);
    const struct ps_profile *p = &cfg->profiles[0];
    assert_int_equal(p->limits[RLIMIT_NPROC].soft, 256);
    assert_int_equal(p->limits[RLIMIT_NPROC].hard, 512);
    assert_int_equal(p->limits[RLIMIT_AS].hard, 4ull << 30);
    assert_int_equal(p->limits[RLIMIT_FSIZE].soft, 10u << 20);
    assert_true(p->limits[RLIMIT_FSIZE].hard == RLIM_INFINITY);
    assert_int_equal(p->limits[RLIMIT_STACK].hard, 8192);
    assert_int_equal(p->limits[RLIMIT_CPU].hard, 120);            /* seconds */
    assert_int_equal(p->limits[RLIMIT_RTTIME].hard, 1000000);     /* microseconds */
    assert_int_equal(p->limits[RLIMIT_NICE].hard, 25);            /* 20 - nice */
    assert_true(p->limits[RLIMIT_MEMLOCK].hard == RLIM_INFINITY);
    assert_int_equal(p->limits[RLIMIT_MSGQUEUE].hard, 800 * 1024);
    assert_string_equal(ps_limit_name(RLIMIT_NOFILE), "LimitNOFILE");
    assert_int_equal(ps_limit_by_name("LimitRTTIME"), RLIMIT_RTTIME);
}

static void test_process_seccomp_values(void **state)
{
    (void)state;
    assert_int_equal(parse(PS_FILE_PROFILE,
                           "[Match]\nUser=u\n[Process]\nNoNewPrivileges=no\n"
                           "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=cap_chown\n"
                           "Umask=027\n[Seccomp]\nNetwork=block\nAllowNetlink=route\n"
                           "AllowNetlink=audit\nDenySyscalls=personality\nAllowSyscalls=ptrace\n"
                           "[Network]\nMode=report\n[Inference]\nModels=*\n"), 0);
    const struct ps_profile *p = &cfg->profiles[0];
    assert_false(p->no_new_privs);
    assert_int_equal(p->cap_keep, (1ull << CAP_NET_BIND_SERVICE) | (1ull << CAP_CHOWN));
    assert_int_equal(p->umask, 027);
    assert_int_equal(p->network, PS_NET_BLOCK);
    assert_int_equal(p->allow_netlink, PS_NETLINK_ROUTE | PS_NETLINK_AUDIT);
    assert_int_equal(p->n_deny_syscalls, 1);
    assert_int_equal(p->deny_syscalls[0], seccomp_syscall_resolve_name("personality"));
    assert_int_equal(p->allow_syscalls[0], seccomp_syscall_resolve_name("ptrace"));
    assert_int_equal(p->mode, PS_MODE_REPORT);
    assert_true(p->all_models);
}

static void test_netlink_first_assignment_replaces_default(void **state)
{
    (void)state;
    assert_int_equal(parse(PS_FILE_PROFILE, "[Match]\nUser=u\n[Seccomp]\nAllowNetlink=route\n"), 0);
    assert_int_equal(cfg->profiles[0].allow_netlink, PS_NETLINK_ROUTE);
    assert_int_equal(parse(PS_FILE_PROFILE, "[Match]\nUser=u\n[Seccomp]\nAllowNetlink=\n"), 0);
    assert_int_equal(cfg->profiles[1].allow_netlink, 0);
}

static void test_global_example_and_defaults(void **state)
{
    (void)state;
    const struct ps_global *g = &cfg->global;
    assert_string_equal(g->proxy_user, "pam-sandbox");
    assert_int_equal(g->n_explicit_listen, 1);
    assert_int_equal(g->n_transparent_listen, 1);
    assert_int_equal(g->n_dns_listen, 1);
    assert_int_equal(g->synthetic_range.prefix, 15);
    assert_int_equal(g->max_request_size, 10u << 20);
    assert_int_equal(g->stream_idle_timeout_ms, 120000);
    assert_int_equal(g->request_body_timeout_ms, 300000);
    assert_int_equal(g->half_closed_timeout_ms, 600000);
    assert_string_equal(g->decision_log, "/var/log/pam_sandbox/decisions.jsonl");
    assert_int_equal(parse(PS_FILE_GLOBAL,
                           "[Proxy]\nUser=pam-sandbox\nExplicitListen=127.0.0.1:3128\n"
                           "ExplicitListen=[::1]:3128\nTransparentListen=127.0.0.1:4129\n"
                           "DNSListen=127.0.0.1:3153\nResolver=\nResolver=192.0.2.53 [2001:db8::53]:5353\n"
                           "SyntheticRange=10.99.0.0/16\nUpstreamProxy=proxy.corp.example:8080\n"
                           "DecisionLog=/tmp/d.jsonl\nHalfClosedTimeout=90s\n"
                           "[Inference]\nMaxRequestSize=1M\nStreamIdleTimeout=3min\n"
                           "RequestBodyTimeout=20min\n"), 0);
    assert_int_equal(g->n_explicit_listen, 2);
    assert_int_equal(g->explicit_listen[1].ss.ss_family, AF_INET6);
    assert_int_equal(g->n_transparent_listen, 1);          /* the file replaced the default */
    assert_int_equal(ntohs(((struct sockaddr_in *)&g->transparent_listen[0].ss)->sin_port), 4129);
    assert_int_equal(g->n_resolvers, 2);
    assert_int_equal(ntohs(((struct sockaddr_in *)&g->resolvers[0].ss)->sin_port), 53);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&g->resolvers[1].ss)->sin6_port), 5353);
    assert_int_equal(g->synthetic_range.prefix, 16);
    assert_string_equal(g->upstream_proxy_host, "proxy.corp.example");
    assert_int_equal(g->upstream_proxy_port, 8080);
    assert_string_equal(g->decision_log, "/tmp/d.jsonl");
    assert_int_equal(g->max_request_size, 1u << 20);
    assert_int_equal(g->stream_idle_timeout_ms, 180000);
    assert_int_equal(g->half_closed_timeout_ms, 90000);   /* each key sets its own field */
    assert_int_equal(g->request_body_timeout_ms, 1200000);
}

static void test_backend_example(void **state)
{
    (void)state;
    assert_int_equal(parse(PS_FILE_BACKEND,
                           "[Backend]\nURL=https://api.openai.com/v1/\nAPI=openai\n"
                           "APIKeyFile=/etc/pam_sandbox/secrets/openai.key\n"
                           "Models=fast=gpt-4o-mini gpt-4o\n"), 0);
    const struct ps_backend *b = &cfg->backends[0];
    assert_string_equal(b->name, "t");
    assert_true(b->tls);
    assert_string_equal(b->url_host, "api.openai.com");
    assert_int_equal(b->url_port, 443);
    assert_string_equal(b->url_path, "/v1");
    assert_int_equal(b->api, PS_API_OPENAI);
    assert_int_equal(b->n_models, 2);
    assert_string_equal(b->models[0].name, "fast");
    assert_string_equal(b->models[0].upstream, "gpt-4o-mini");
    assert_string_equal(b->models[1].upstream, "gpt-4o");
    /* http:// to a private address is fine */
    assert_int_equal(ps_config_parse_buffer(cfg, PS_FILE_BACKEND, "inference.d/local.conf",
                     "[Backend]\nURL=http://127.0.0.1:8080\nAPI=anthropic\nModels=claude\n", 63,
                     &diags), 0);
    assert_int_equal(cfg->backends[1].url_port, 8080);
    assert_string_equal(cfg->backends[1].url_path, "");
    assert_false(cfg->backends[1].has_owner);
    /* BackendUser= by name (resolved now) or by number */
    assert_int_equal(ps_config_parse_buffer(cfg, PS_FILE_BACKEND, "inference.d/own.conf",
                     "[Backend]\nURL=http://127.0.0.1:8081\nAPI=openai\nModels=o\nBackendUser=root\n", strlen("[Backend]\nURL=http://127.0.0.1:8081\nAPI=openai\nModels=o\nBackendUser=root\n"),
                     &diags), 0);
    assert_true(cfg->backends[2].has_owner);
    assert_int_equal(cfg->backends[2].owner_uid, 0);
    assert_string_equal(cfg->backends[2].owner_name, "root");
    assert_int_equal(ps_config_parse_buffer(cfg, PS_FILE_BACKEND, "inference.d/num.conf",
                     "[Backend]\nURL=http://[::1]:8082\nAPI=openai\nModels=n\nBackendUser=4242\n", strlen("[Backend]\nURL=http://[::1]:8082\nAPI=openai\nModels=n\nBackendUser=4242\n"),
                     &diags), 0);
    assert_int_equal(cfg->backends[3].owner_uid, 4242);
}

/* ---- bad input: each case of issue 2 ---- */

static void test_bad_unknown_section(void **state)
{
    (void)state;
    bad_profile_line("[Limits]", "[Bogus]", "unknown section [Bogus]");
    bad_profile_line("[Limits]", "[Limits", "malformed section header");
}
static void test_bad_unknown_key(void **state)
{
    (void)state;
    bad_profile_line("[Limits]", "LimitBOGUS=1", "unknown key LimitBOGUS=");
    bad_profile_line("[Network]", "LimitNPROC=1", "belongs in [Limits]");
    bad_profile_line("[Limits]", "limitnproc=1", "unknown key");        /* keys are case-sensitive */
}
static void test_bad_value_type_and_range(void **state)
{
    (void)state;
    bad_profile_line("[Limits]", "LimitNPROC=-1", "not a non-negative integer");
    bad_profile_line("[Limits]", "LimitNPROC=abc", "not a non-negative integer");
    bad_profile_line("[Limits]", "LimitNPROC=infinity", "must be finite");
    bad_profile_line("[Limits]", "LimitNPROC=10:5", "soft limit is above the hard");
    bad_profile_line("[Limits]", "LimitNOFILE=0", "would make every login fail");
    bad_profile_line("[Limits]", "LimitAS=12X", "not a size");
    bad_profile_line("[Limits]", "LimitNICE=+20", "out of range");
    bad_profile_line("[Limits]", "LimitRTPRIO=100", "out of range");
    bad_profile_line("[Limits]", "LimitNPROC=99999999999999999999999", "not a non-negative integer");
    bad_profile_line("[Process]", "NoNewPrivileges=maybe", "not a boolean");
    bad_profile_line("[Process]", "Umask=0999", "octal");
    bad_profile_line("[Process]", "CapabilityBoundingSet=CAP_BOGUS", "unknown capability");
    bad_profile_line("[Seccomp]", "Network=open", "expected proxy or block");
    bad_profile_line("[Network]", "Mode=audit", "expected enforce or report");
    bad_profile_line("[Inference]", "RequestsPerMinute=lots", "not a non-negative integer");
}
static void test_bad_ports_and_cidr(void **state)
{
    (void)state;
    bad_profile_line("[Network]", "Allow=example.com:0", "not a port");
    bad_profile_line("[Network]", "Allow=example.com:65536", "not a port");
    bad_profile_line("[Network]", "Allow=example.com:9-1", "backwards");
    bad_profile_line("[Network]", "Allow=example.com:", "empty port list");
    bad_profile_line("[Network]", "Allow=10.0.0.0/33", "/33 is out of range");
    bad_profile_line("[Network]", "Allow=[2001:db8::/129]:443", "/129 is out of range");
    bad_profile_line("[Network]", "Allow=10.0.0.1/8", "bits set after");
    bad_profile_line("[Network]", "Allow=300.1.1.1", "not a valid IPv4");
    bad_profile_line("[Network]", "Allow=2001:db8::1", "must be in brackets");
    bad_profile_line("[Network]", "Allow=example.com binary=usr/bin/ssh", "absolute");
    bad_profile_line("[Network]", "Allow=example.com user=bob", "unknown rule option");
}
static void test_bad_globs(void **state)
{
    (void)state;
    bad_profile_line("[Network]", "Allow=*", "'*' alone");
    bad_profile_line("[Network]", "Allow=*:443", "'*' alone");
    bad_profile_line("[Network]", "Allow=*.com", "too broad");
    bad_profile_line("[Network]", "Allow=a*.b.com", "whole leading label");
    bad_profile_line("[Network]", "Allow=foo.*.com", "whole leading label");
    bad_profile_line("[Network]", "Deny=*.*.example.com", "whole leading label");
}
static void test_bad_empty_host(void **state)
{
    (void)state;
    bad_profile_line("[Network]", "Allow=:443", "empty host");
    bad_profile_line("[Network]", "Allow=", "empty rule");
    bad_profile_line("[Network]", "Allow=[]:443", "empty host");
    bad_profile_line("[Network]", "Allow=a..b.com", "not a valid host name");
}
static void test_bad_line_without_equals(void **state)
{
    (void)state;
    bad_profile_line("[Network]", "Allow github.com", "expected Key=Value");
}
static void test_bad_long_line(void **state)
{
    (void)state;
    char *line = malloc(PS_MAX_LINE + 64);
    strcpy(line, "Allow=");
    memset(line + 6, 'a', PS_MAX_LINE);
    line[PS_MAX_LINE + 6] = 0;
    bad_profile_line("[Network]", line, "longer than 4096");
    free(line);
    /* exactly the limit is fine (it is a valid, if silly, comment) */
    char *ok = malloc(PS_MAX_LINE + 64);
    strcpy(ok, "[Match]\nUser=u\n#");
    memset(ok + 16, 'x', PS_MAX_LINE - 1);
    ok[16 + PS_MAX_LINE - 1] = 0;
    assert_int_equal(parse(PS_FILE_PROFILE, ok), 0);
    free(ok);
}
static void test_bad_utf8_nul_control(void **state)
{
    (void)state;
    bad_profile_line("[Network]", "Allow=caf\xc3.com", "invalid UTF-8");
    bad_profile_line("[Network]", "# \xc0\xaf overlong", "invalid UTF-8");
    bad_profile_line("[Network]", "# \xed\xa0\x80 surrogate", "invalid UTF-8");
    bad_profile_line("[Network]", "Allow=a.com\r", "DOS line ending");
    /* valid UTF-8 in a comment is fine; in a host name it is an error, not a guess */
    assert_int_equal(parse(PS_FILE_PROFILE, "[Match]\nUser=u\n# caf\xc3\xa9\n"), 0);
    bad_profile_line("[Network]", "Allow=caf\xc3\xa9.com", "not a valid host name");
    static const char nul[] = "[Match]\nUser=u\nAllow\0=x\n";
    ps_diags_free(&diags);
    assert_int_equal(ps_config_parse_buffer(cfg, PS_FILE_PROFILE, "p", nul, sizeof nul - 1, &diags), -1);
    expect_diag(3, "NUL byte");
}
static void test_bad_duplicate_single_key(void **state)
{
    (void)state;
    ps_diags_free(&diags);
    assert_int_equal(parse(PS_FILE_PROFILE, "[Match]\nUser=u\n[Network]\nMode=enforce\nMode=report\n"), -1);
    expect_diag(5, "duplicate Mode= (first set at line 4");
    ps_diags_free(&diags);
    assert_int_equal(parse(PS_FILE_PROFILE, "[Match]\nUser=u\n[Limits]\nLimitNPROC=5\n[Process]\n"
                                            "[Limits]\nLimitNPROC=6\n"), -1);
    expect_diag(7, "duplicate LimitNPROC=");
    ps_diags_free(&diags);
    assert_int_equal(parse(PS_FILE_GLOBAL, "[Proxy]\nUser=a\nUser=b\n"), -1);
    expect_diag(3, "duplicate User=");
    /* repeatable keys accumulate */
    assert_int_equal(parse(PS_FILE_PROFILE, "[Match]\nUser=a\nUser=b c\n"), 0);
    assert_int_equal(cfg->profiles[cfg->n_profiles - 1].n_match_users, 3);
}
static void test_bad_syscall_and_netlink(void **state)
{
    (void)state;
    bad_profile_line("[Seccomp]", "DenySyscalls=ptrace frobnicate", "unknown system call 'frobnicate'");
    bad_profile_line("[Seccomp]", "AllowSyscalls=socketcall", "unknown system call");  /* not on x86-64 */
    bad_profile_line("[Seccomp]", "AllowNetlink=audit generic", "unknown netlink protocol 'generic'");
    bad_profile_line("[Seccomp]", "AllowNetlink=sock_diag", "only audit and route");
    ps_diags_free(&diags);
    assert_int_equal(parse(PS_FILE_PROFILE, "[Match]\nUser=u\n[Seccomp]\nDenySyscalls=ptrace\n"
                                            "AllowSyscalls=ptrace\n"), -1);
    expect_diag(0, "both DenySyscalls= and AllowSyscalls=");
    /* clone3 alone would allow user namespaces that clone and unshare still deny */
    bad_profile_line("[Seccomp]", "AllowSyscalls=clone3", "would allow new user namespaces");
    ps_diags_free(&diags);
    assert_int_equal(parse(PS_FILE_PROFILE, "[Match]\nUser=u\n[Seccomp]\nAllowSyscalls=clone3\n"
                                            "AllowSyscalls=clone unshare\n"), 0);
}
static void test_bad_no_match(void **state)
{
    (void)state;
    ps_diags_free(&diags);
    assert_int_equal(parse(PS_FILE_PROFILE, "[Match]\n[Network]\nAllow=a.com\n"), -1);
    expect_diag(1, "would match no account");
    ps_diags_free(&diags);
    assert_int_equal(parse(PS_FILE_PROFILE, "[Network]\nAllow=a.com\n"), -1);
    expect_diag(0, "would match no account");
    ps_diags_free(&diags);
    assert_int_equal(parse(PS_FILE_PROFILE, "[Match]\nGroup=bad/name\n"), -1);
    expect_diag(2, "not a valid group name");
    ps_diags_free(&diags);
    assert_int_equal(parse(PS_FILE_PROFILE, "[Match]\nUser=alice\nUser=bob root\n"), -1);
    expect_diag(3, "root (UID 0) is never sandboxed");
}
static void test_bad_key_outside_section(void **state)
{
    (void)state;
    ps_diags_free(&diags);
    assert_int_equal(parse(PS_FILE_PROFILE, "User=u\n[Match]\nUser=u\n"), -1);
    expect_diag(1, "before any [Section]");
}
static void test_bad_global_values(void **state)
{
    (void)state;
    static const struct { const char *text; unsigned line; const char *needle; } cases[] = {
        { "[Proxy]\nExplicitListen=127.0.0.1\n", 2, "port is required" },
        { "[Proxy]\nExplicitListen=localhost:3128\n", 2, "not an IP address and port" },
        { "[Proxy]\nTransparentListen=::1:3129\n", 2, "in brackets" },
        /* a transparent or DNS port is the first of PS_REDIRECT_PORTS (16) */
        { "[Proxy]\nTransparentListen=127.0.0.1:65530\n", 2, "must be at most 65520" },
        { "[Proxy]\nDNSListen=127.0.0.1:65521\n", 2, "DNSListen=: port 65521: proxyd listens on it and "
          "the 15 ports after it, so it must be at most 65520" },
        { "[Proxy]\nTransparentListen=127.0.0.1:3129\nExplicitListen=127.0.0.1:3144\n", 3,
          "ExplicitListen=: port 3144 is among the TransparentListen= ports 3129-3144" },
        { "[Proxy]\nDNSListen=127.0.0.1:3153\nExplicitListen=127.0.0.1:3160\n", 3,
          "ExplicitListen=: port 3160 is among the DNSListen= ports 3153-3168" },
        { "[Proxy]\nDNSListen=[::1]:5300\nTransparentListen=[::1]:5290\n", 2,
          "DNSListen=: ports 5300-5315 overlap the TransparentListen= ports 5290-5305" },
        { "[Proxy]\nDNSListen=127.0.0.1:3153\nDNSListen=0.0.0.0:3160\n", 3,
          "DNSListen=: ports 3160-3175 overlap the ports 3153-3168 of the same address on line 2" },
        { "[Proxy]\nTransparentListen=[::1]:3129\nTransparentListen=[::1]:3130\n", 3,
          "TransparentListen=: ports 3130-3145 overlap the ports 3129-3144 of the same address on line 2" },
        { "[Proxy]\nTransparentListen=127.0.0.1:5315\nDNSListen=127.0.0.1:5300\n", 3,
          "DNSListen=: ports 5300-5315 overlap the TransparentListen= ports 5315-5330" },
        { "[Proxy]\nDNSListen=127.0.0.1:0\n", 2, "not a port" },
        { "[Proxy]\nDNSListen=\n", 0, "DNSListen= is empty" },
        { "[Proxy]\nSyntheticRange=8.8.0.0/16\n", 2, "public addresses" },
        { "[Proxy]\nSyntheticRange=10.0.0.0/7\n", 2, "public addresses" },     /* ends in 11/8 */
        { "[Proxy]\nSyntheticRange=192.0.0.0/8\n", 2, "public addresses" },
        { "[Proxy]\nSyntheticRange=169.254.0.0/16\n", 2, "metadata addresses" },
        { "[Proxy]\nSyntheticRange=169.254.170.0/24\n", 2, "metadata addresses" },
        { "[Proxy]\nSyntheticRange=100.64.0.0/10\n", 2, "metadata addresses" },  /* 100.100.100.200 */
        { "[Proxy]\nSyntheticRange=192.0.0.0/2\n", 2, "must lie inside one of" }, /* ends reserved, middle public */
        { "[Proxy]\nDNSListen=127.0.0.1:3200 127.0.0.2:3200 127.0.0.3:3200 127.0.0.4:3200 127.0.0.5:3200 "
          "127.0.0.6:3200 127.0.0.7:3200 127.0.0.8:3200 127.0.0.9:3200 127.0.0.10:3200 127.0.0.11:3200 "
          "127.0.0.12:3200 127.0.0.13:3200 127.0.0.14:3200 127.0.0.15:3200 127.0.0.16:3200 "
          "127.0.0.17:3200\n", 2, "DNSListen=: too many addresses (at most 16)" },
        { "[Proxy]\nSyntheticRange=10.0.0.0/33\n", 2, "expected a network" },
        { "[Proxy]\nSyntheticRange=10.1.1.0/30\n", 2, "too small" },
        { "[Proxy]\nSyntheticRange=fd00:5::/64\n", 2, "IPv4 network" },
        { "[Proxy]\nUpstreamProxy=proxy:99999\n", 2, "not a port" },
        { "[Proxy]\nDecisionLog=relative.log\n", 2, "absolute path" },
        { "[Proxy]\nUser=bad user\n", 2, "not a valid user name" },
        { "[Inference]\nMaxRequestSize=10Q\n", 2, "not a size" },
        { "[Inference]\nMaxRequestSize=2G\n", 2, "out of range" },
        { "[Inference]\nStreamIdleTimeout=5d\n", 2, "not a duration" },
        { "[Inference]\nStreamIdleTimeout=0s\n", 2, "out of range" },
        { "[Inference]\nRequestBodyTimeout=25h\n", 2, "out of range" },
        { "[Proxy]\nHalfClosedTimeout=500ms\n", 2, "out of range" },
        { "[Proxy]\nHalfClosedTimeout=25h\n", 2, "out of range" },
        { "[Proxy]\nHalfClosedTimeout=never\n", 2, "not a duration" },
        { "[Network]\nAllow=a.com\n", 1, "unknown section [Network]" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ps_config_free(cfg);
        cfg = ps_config_new_empty("/x");
        ps_diags_free(&diags);
        assert_int_equal(parse(PS_FILE_GLOBAL, cases[i].text), -1);
        expect_diag(cases[i].line, cases[i].needle);
    }
}
static void test_bad_backend(void **state)
{
    (void)state;
    static const struct { const char *text; unsigned line; const char *needle; } cases[] = {
        { "[Backend]\nURL=http://api.openai.com/v1\nAPI=openai\nModels=a\n", 2, "private address" },
        { "[Backend]\nURL=ftp://x.example/\nAPI=openai\nModels=a\n", 2, "expected https://" },
        { "[Backend]\nURL=https://u:p@x.example/\nAPI=openai\nModels=a\n", 2, "credentials" },
        { "[Backend]\nURL=https://x.example/?k=v\nAPI=openai\nModels=a\n", 2, "query" },
        { "[Backend]\nURL=https://x.example:0/\nAPI=openai\nModels=a\n", 2, "not a port" },
        { "[Backend]\nURL=https://x.example\nAPI=gemini\nModels=a\n", 3, "openai or anthropic" },
        { "[Backend]\nURL=https://x.example\nAPI=openai\nModels=a a\n", 4, "listed twice" },
        { "[Backend]\nURL=https://x.example\nAPI=openai\nModels=a=\n", 4, "NAME=UPSTREAM" },
        { "[Backend]\nURL=https://x.example\nAPI=openai\nModels=a\nAPIKeyFile=key\n", 5, "absolute" },
        { "[Backend]\nAPI=openai\nModels=a\n", 0, "URL= is required" },
        { "[Backend]\nURL=https://x.example\nModels=a\n", 0, "API= is required" },
        { "[Backend]\nURL=http://127.0.0.1:8080\nAPI=openai\nModels=a\nBackendUser=no-such-account-ps\n", 5,
          "no-such-account-ps: no such account" },
        { "[Backend]\nURL=http://127.0.0.1:8080\nAPI=openai\nModels=a\nBackendUser=4294967295\n", 5, "BackendUser=" },
        { "[Backend]\nURL=http://127.0.0.1:8080\nAPI=openai\nModels=a\nBackendUser=bad/name\n", 5, "not a valid user name" },
        { "[Backend]\nBackendUser=root\nURL=https://x.example\nAPI=openai\nModels=a\n", 2, "http:// backend only" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ps_diags_free(&diags);
        assert_int_equal(parse(PS_FILE_BACKEND, cases[i].text), -1);
        expect_diag(cases[i].line, cases[i].needle);
    }
    assert_int_equal(cfg->n_backends, 0);
    /* the same model offered by two backends is ambiguous */
    assert_int_equal(parse(PS_FILE_BACKEND, "[Backend]\nURL=https://a.example\nAPI=openai\nModels=m\n"), 0);
    ps_diags_free(&diags);
    assert_int_equal(parse(PS_FILE_BACKEND, "[Backend]\nURL=https://b.example\nAPI=openai\nModels=x=m m\n"), -1);
    expect_diag(0, "also offered by");
}
static void test_all_errors_reported(void **state)
{
    (void)state;
    ps_diags_free(&diags);
    assert_int_equal(parse(PS_FILE_PROFILE, "[Match]\nUser=u\n[Limits]\nLimitNPROC=abc\n"
                                            "[Network]\nAllow=*\nAllow=ok.example.com\nnonsense\n"
                                            "[Nope]\nFoo=1\n[Seccomp]\nAllowNetlink=xfrm\n"), -1);
    expect_diag(4, "LimitNPROC");
    expect_diag(6, "'*' alone");
    expect_diag(8, "expected Key=Value");
    expect_diag(9, "unknown section [Nope]");
    expect_diag(12, "xfrm");
    assert_int_equal(diags.n, 5);            /* Foo= in the unknown section is not reported twice */
}
static void test_oversize_file(void **state)
{
    (void)state;
    size_t n = (1u << 20) + 10;
    char *big = malloc(n);
    memset(big, '\n', n);
    ps_diags_free(&diags);
    assert_int_equal(ps_config_parse_buffer(cfg, PS_FILE_GLOBAL, "g", big, n, &diags), -1);
    expect_diag(0, "larger than");
    free(big);
}
static void test_diags_print_format(void **state)
{
    (void)state;
    ps_diags_free(&diags);
    parse(PS_FILE_PROFILE, "[Match]\nUser=u\n[Network]\nAllow=*.com\n");
    char buf[512] = "";
    FILE *f = fmemopen(buf, sizeof buf, "w");
    ps_diags_print(&diags, f);
    fclose(f);
    assert_true(strncmp(buf, "profiles/t.conf:4: Allow=*.com: ", 32) == 0);
    /* printed in line order even though the [Match] check runs at the end of the file */
    ps_diags_free(&diags);
    parse(PS_FILE_PROFILE, "[Match]\n[Network]\nAllow=*.com\n");
    assert_int_equal(diags.v[0].line, 3);
    memset(buf, 0, sizeof buf);
    f = fmemopen(buf, sizeof buf, "w");
    ps_diags_print(&diags, f);
    fclose(f);
    assert_true(strncmp(buf, "profiles/t.conf:1: no Group=", 28) == 0);
    assert_non_null(strstr(buf, "\nprofiles/t.conf:3: Allow=*.com"));
}

/* ---- ps_config_load: files, order, ownership and modes (needs root to chown) ---- */

static char dir[64];

static void wfile(const char *rel, const char *text, mode_t mode)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static int load_setup(void **state)
{
    if (geteuid() != 0)
        return 0;                          /* the tests skip themselves */
    strcpy(dir, "/tmp/ps-test-config.XXXXXX");
    assert_non_null(mkdtemp(dir));
    chmod(dir, 0755);
    char p[256];
    snprintf(p, sizeof p, "%s/profiles", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/inference.d", dir);
    mkdir(p, 0755);
    wfile("sandbox.conf", "[Proxy]\nUser=pam-sandbox\n", 0644);
    wfile("profiles/20-b.conf", "[Match]\nUser=u\n", 0644);
    wfile("profiles/10-a.conf", "[Match]\nGroup=g\n", 0644);
    wfile("profiles/README", "not a profile: ignored", 0644);
    wfile("profiles/.hidden.conf", "garbage", 0644);
    return setup(state);
}

static int load_teardown(void **state)
{
    if (geteuid() != 0)
        return 0;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return teardown(state);
}

#define NEED_ROOT() do { if (geteuid() != 0) skip(); } while (0)

static struct ps_config *load(void)
{
    ps_diags_free(&diags);
    return ps_config_load(dir, &diags);
}

static void expect_file_diag(const char *rel, const char *needle)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    for (size_t i = 0; i < diags.n; i++)
        if (strcmp(diags.v[i].file, path) == 0 && strstr(diags.v[i].msg, needle))
            return;
    for (size_t i = 0; i < diags.n; i++)
        print_message("  have %s:%u: %s\n", diags.v[i].file, diags.v[i].line, diags.v[i].msg);
    fail_msg("no diagnostic for %s containing '%s'", path, needle);
}

static void test_load_good_and_ordered(void **state)
{
    (void)state;
    NEED_ROOT();
    struct ps_config *c = load();
    assert_non_null(c);
    assert_int_equal(diags.n, 0);
    assert_int_equal(c->n_profiles, 2);
    assert_string_equal(c->profiles[0].name, "10-a");     /* file-name order */
    assert_string_equal(c->profiles[1].name, "20-b");
    char expect[256];
    snprintf(expect, sizeof expect, "%s/profiles/10-a.conf", dir);
    assert_string_equal(c->profiles[0].file, expect);
    ps_config_free(c);
}

static void test_load_world_writable_file(void **state)
{
    (void)state;
    NEED_ROOT();
    wfile("profiles/30-c.conf", "[Match]\nUser=x\n", 0666);
    assert_null(load());
    expect_file_diag("profiles/30-c.conf", "world-writable");
    wfile("profiles/30-c.conf", "[Match]\nUser=x\n", 0664);
    assert_null(load());
    expect_file_diag("profiles/30-c.conf", "group-writable");
    wfile("profiles/30-c.conf", "[Match]\nUser=x\n", 0600);
    struct ps_config *c = load();
    assert_non_null(c);
    ps_config_free(c);
}

static void test_load_not_root_owned(void **state)
{
    (void)state;
    NEED_ROOT();
    char p[256];
    snprintf(p, sizeof p, "%s/sandbox.conf", dir);
    assert_int_equal(chown(p, 59001, 59001), 0);
    assert_null(load());
    expect_file_diag("sandbox.conf", "owned by uid 59001");
    assert_int_equal(chown(p, 0, 0), 0);
}

static void test_load_bad_dirs(void **state)
{
    (void)state;
    NEED_ROOT();
    char p[256];
    snprintf(p, sizeof p, "%s/profiles", dir);
    chmod(p, 0777);
    assert_null(load());
    expect_file_diag("profiles", "world-writable");
    chmod(p, 0755);
    chmod(dir, 0775);
    assert_null(load());
    for (size_t i = 0; i < diags.n; i++)
        if (strcmp(diags.v[i].file, dir) == 0 && strstr(diags.v[i].msg, "group-writable"))
            goto found;
    fail_msg("no diagnostic for the config dir");
found:
    chmod(dir, 0755);
    snprintf(p, sizeof p, "%s/nonexistent", dir);
    ps_diags_free(&diags);
    assert_null(ps_config_load(p, &diags));
    assert_non_null(strstr(diags.v[0].msg, "does not exist"));
}

static void test_load_secret_files(void **state)
{
    (void)state;
    NEED_ROOT();
    char text[512], keypath[256];
    snprintf(keypath, sizeof keypath, "%s/openai.key", dir);
    snprintf(text, sizeof text, "[Backend]\nURL=https://api.openai.com/v1\nAPI=openai\n"
             "APIKeyFile=%s\nModels=gpt-4o\n", keypath);
    wfile("inference.d/openai.conf", text, 0644);
    wfile("openai.key", "sk-test\n", 0644);
    assert_null(load());
    expect_file_diag("openai.key", "readable by others");
    wfile("openai.key", "sk-test\n", 0640);
    struct ps_config *c = load();
    assert_non_null(c);
    assert_int_equal(c->n_backends, 1);
    ps_config_free(c);
    unlink(keypath);
    assert_null(load());
    expect_file_diag("openai.key", "cannot open");
    /* the CA private key */
    wfile("openai.key", "sk-test\n", 0600);
    snprintf(text, sizeof text, "%s/ca", dir);
    mkdir(text, 0755);
    wfile("ca/inference-ca.key", "key", 0644);
    wfile("ca/inference-ca.pem", "cert", 0644);
    assert_null(load());
    expect_file_diag("ca/inference-ca.key", "readable by others");
    wfile("ca/inference-ca.key", "key", 0600);
    c = load();
    assert_non_null(c);
    ps_config_free(c);
}

static void test_load_collects_errors_across_files(void **state)
{
    (void)state;
    NEED_ROOT();
    wfile("profiles/40-bad.conf", "[Match]\nUser=u\n[Network]\nAllow=*.com\n", 0644);
    wfile("sandbox.conf", "[Proxy]\nBogus=1\n", 0644);
    assert_null(load());
    expect_file_diag("profiles/40-bad.conf", "too broad");
    expect_file_diag("sandbox.conf", "unknown key Bogus=");
    assert_int_equal(diags.v[0].line, 2);
}

/* A loader short of descriptors (su runs with its caller's RLIMIT_NOFILE) must fail, never read
 * profiles/ as empty: that would mean "nobody is sandboxed".  Each limit from 3 up is tried in a
 * child: 0 = loaded whole, 1 = refused with a diagnostic, 2 = loaded with profiles missing. */
static void test_load_short_of_descriptors(void **state)
{
    (void)state;
    NEED_ROOT();
    bool refused = false, whole = false;
    for (rlim_t lim = 3; lim < 32; lim++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            for (int fd = 3; fd < 1024; fd++)
                close(fd);
            struct rlimit rl = { lim, lim };
            if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                _exit(3);
            struct ps_config *c = load();
            _exit(c ? (c->n_profiles == 2 ? 0 : 2) : diags.n > 0 ? 1 : 2);
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        if (WEXITSTATUS(st) == 2)
            fail_msg("RLIMIT_NOFILE=%lu: the configuration loaded with profiles missing", (unsigned long)lim);
        assert_int_not_equal(WEXITSTATUS(st), 3);
        refused |= WEXITSTATUS(st) == 1;
        whole |= WEXITSTATUS(st) == 0;
    }
    assert_true(refused);                  /* the short limits were really tried */
    assert_true(whole);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_design_example_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allow_without_port_is_443, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_seccomp_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_netlink_first_assignment_replaces_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_global_example_and_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backend_example, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_unknown_section, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_unknown_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_value_type_and_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ports_and_cidr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_globs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_empty_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_line_without_equals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_long_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_utf8_nul_control, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_duplicate_single_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_syscall_and_netlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_no_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_key_outside_section, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_global_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_backend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_errors_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversize_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diags_print_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_good_and_ordered, load_setup, load_teardown),
        cmocka_unit_test_setup_teardown(test_load_world_writable_file, load_setup, load_teardown),
        cmocka_unit_test_setup_teardown(test_load_not_root_owned, load_setup, load_teardown),
        cmocka_unit_test_setup_teardown(test_load_bad_dirs, load_setup, load_teardown),
        cmocka_unit_test_setup_teardown(test_load_secret_files, load_setup, load_teardown),
        cmocka_unit_test_setup_teardown(test_load_collects_errors_across_files, load_setup, load_teardown),
        cmocka_unit_test_setup_teardown(test_load_short_of_descriptors, load_setup, load_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
