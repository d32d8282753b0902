/* sandboxctl decide USER HOST PORT [--binary PATH]: the decision proxyd would take for a
 * connection of USER to HOST:PORT, and the rule (FILE:LINE) or default that decided it.
 * First output line: allow | deny | would-deny | not-sandboxed.  Exit 0 unless denied (1). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/config.h"
#include "common/policy.h"
#include "common/resolve.h"
#include "ctl/ctl.h"

static int usage(void)
{
    fprintf(stderr, "usage: sandboxctl [-c DIR] decide USER HOST PORT [--binary PATH]\n");
    return 2;
}

static int literal(const char *host, struct sockaddr_storage *ss)
{
    char buf[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(host);
    memset(ss, 0, sizeof *ss);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof buf) {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = 0;
        host = buf;
    }
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ss->ss_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ss->ss_family = AF_INET6;
        return 0;
    }
    return -1;
}

int cmd_decide(const struct ctl_opts *o, int argc, char **argv)
{
    const char *binary = NULL;
    char *pos[3];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--binary") == 0 && i + 1 < argc)
            binary = argv[++i];
        else if (strncmp(argv[i], "--binary=", 9) == 0)
            binary = argv[i] + 9;
        else if (argv[i][0] == '-' && argv[i][1])
            return usage();
        else if (npos < 3)
            pos[npos++] = argv[i];
        else
            return usage();
    }
    if (npos != 3)
        return usage();
    char *end;
    unsigned long port = strtoul(pos[2], &end, 10);
    if (!*pos[2] || *end || port < 1 || port > 65535 || pos[2][0] == '-' || pos[2][0] == '+') {
        fprintf(stderr, "sandboxctl: decide: '%s' is not a port (1-65535)\n", pos[2]);
        return 2;
    }
    if (binary && binary[0] != '/') {
        fprintf(stderr, "sandboxctl: decide: --binary needs an absolute path\n");
        return 2;
    }
    struct ps_config *cfg = ctl_load_config(o);
    if (!cfg)
        return 1;
    struct ps_identity id;
    if (ps_identity_lookup(pos[0], &id) < 0) {
        fprintf(stderr, "sandboxctl: decide: %s: %m\n", pos[0]);
        ps_config_free(cfg);
        return 1;
    }
    char why[1024];
    const struct ps_profile *p = ps_resolve_profile(cfg, &id, why, sizeof why);
    int rc = 0;
    if (!p) {
        puts("not-sandboxed");
        printf("reason: %s; the account's connections are not steered through proxyd\n", why);
    } else {
        struct ps_decision d;
        struct sockaddr_storage ss;
        bool is_addr = literal(pos[1], &ss) == 0;
        /* this host's addresses rank as loopback for proxyd (common/addr_local.c): here too */
        if (is_addr && ps_addr_load_local() < 0)
            fprintf(stderr, "sandboxctl: getifaddrs: %m (this host's own addresses not known)\n");
        if (is_addr)
            ps_policy_decide_addr(p, (struct sockaddr *)&ss, (uint16_t)port, binary,
                                  &cfg->global.synthetic_range, &d);
        else
            ps_policy_decide(p, pos[1], (uint16_t)port, binary, &d);
        puts(d.would_deny ? "would-deny" : d.verdict == PS_ALLOW ? "allow" : "deny");
        if (d.rule) {
            char buf[PS_MAX_LINE];
            ps_rule_format(d.rule, buf, sizeof buf);
            printf("rule: %s: %s=%s\n", d.where, d.rule->action == PS_RULE_ALLOW ? "Allow" : "Deny",
                   buf);
        } else if (strcmp(d.reason, "no_matching_rule") == 0) {
            puts("rule: default (no matching rule)");
        } else {
            printf("rule: default (%s)\n", d.reason);
        }
        printf("reason: %s\n", d.reason);
        printf("profile: %s (%s)\n", p->name, p->file);
        printf("matched by: %s\n", why);
        if (d.would_deny)
            puts("note: Mode=report: proxyd lets it through and logs it as would-deny");
        if (!is_addr && d.verdict == PS_ALLOW && strcmp(d.reason, "inference") != 0)
            puts("note: proxyd connects only to public addresses the name resolves to");
        rc = d.verdict == PS_ALLOW ? 0 : 1;
    }
    ps_identity_free(&id);
    ps_config_free(cfg);
    return rc;
}
