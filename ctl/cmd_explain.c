/* sandboxctl explain USER: which profile applies and why, then every effective setting after
 * defaults, in the config syntax (like sshd -T), each with where it came from. */
#include <ctype.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include "common/config.h"
#include "common/policy.h"
#include "common/resolve.h"
#include "ctl/ctl.h"

static void origin(const struct ps_origin *o, const char *dflt)
{
    if (o->file)
        printf("    # %s:%u\n", o->file, o->line);
    else
        printf("    # default%s%s\n", dflt ? ": " : "", dflt ? dflt : "");
}

static void print_rlim(rlim_t v)
{
    if (v == RLIM_INFINITY)
        fputs("infinity", stdout);
    else
        printf("%llu", (unsigned long long)v);
}

static void print_limits(const struct ps_profile *p)
{
    puts("[Limits]");
    bool any = false;
    for (int r = 0; r < RLIM_NLIMITS; r++) {
        const struct ps_limit *l = &p->limits[r];
        const char *name = ps_limit_name(r);
        if (!l->set || !name)
            continue;
        any = true;
        printf("%s=", name);
        print_rlim(l->soft);
        if (l->soft != l->hard) {
            putchar(':');
            print_rlim(l->hard);
        }
        origin(&l->origin, NULL);
    }
    if (!any)
        puts("# no limits set");
    puts("# limits not listed are left as the login inherits them");
}

static void print_caps(uint64_t keep)
{
    fputs("CapabilityBoundingSet=", stdout);
    bool first = true;
    for (int c = 0; c < 64; c++) {
        if (!(keep & (1ull << c)))
            continue;
        char *n = cap_to_name((cap_value_t)c);
        if (n) {
            printf("%s", first ? "" : " ");
            for (char *q = n; *q; q++)
                putchar(toupper((unsigned char)*q));
            cap_free(n);
            first = false;
        }
    }
}

static void print_syscalls(const char *key, const int *v, size_t n)
{
    printf("%s=", key);
    for (size_t i = 0; i < n; i++) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, v[i]);
        printf("%s%s", i ? " " : "", name ? name : "?");
        free(name);
    }
    putchar('\n');
}

static void print_profile(const struct ps_profile *p)
{
    print_limits(p);

    puts("\n[Process]");
    printf("NoNewPrivileges=%s", p->no_new_privs ? "yes" : "no");
    origin(&p->no_new_privs_origin, NULL);
    print_caps(p->cap_keep);
    origin(&p->cap_keep_origin, "empty, every capability dropped");
    if (p->umask >= 0) {
        printf("Umask=%04o", (unsigned)p->umask);
        origin(&p->umask_origin, NULL);
    } else {
        puts("# Umask= not set: the login's umask is kept");
    }

    puts("\n[Seccomp]");
    printf("Network=%s", p->network == PS_NET_BLOCK ? "block" : "proxy");
    origin(&p->network_origin, NULL);
    printf("AllowNetlink=%s%s%s", p->allow_netlink & PS_NETLINK_AUDIT ? "audit" : "",
           (p->allow_netlink & PS_NETLINK_AUDIT) && (p->allow_netlink & PS_NETLINK_ROUTE) ? " " : "",
           p->allow_netlink & PS_NETLINK_ROUTE ? "route" : "");
    origin(&p->allow_netlink_origin, NULL);
    print_syscalls("DenySyscalls", p->deny_syscalls, p->n_deny_syscalls);
    print_syscalls("AllowSyscalls", p->allow_syscalls, p->n_allow_syscalls);

    puts("\n[Network]");
    for (size_t i = 0; i < p->n_rules; i++) {
        char buf[PS_MAX_LINE];
        ps_rule_format(&p->rules[i], buf, sizeof buf);
        printf("%s=%s", p->rules[i].action == PS_RULE_ALLOW ? "Allow" : "Deny", buf);
        origin(&p->rules[i].origin, NULL);
    }
    if (p->n_rules == 0)
        puts("# no Allow= rules: every connection is denied");
    printf("Mode=%s", p->mode == PS_MODE_REPORT ? "report" : "enforce");
    origin(&p->mode_origin, NULL);

    puts("\n[Inference]");
    if (!ps_profile_uses_inference(p)) {
        puts("# no Models=: inference.local is denied");
    } else {
        fputs("Models=", stdout);
        if (p->all_models)
            fputs("*", stdout);
        for (size_t i = 0; i < p->n_models; i++)
            printf("%s%s", i || p->all_models ? " " : "", p->models[i]);
        origin(&p->models_origin, NULL);
    }
    printf("RequestsPerMinute=%u", p->requests_per_minute);
    origin(&p->rpm_origin, "0, unlimited");
}

int cmd_explain(const struct ctl_opts *o, int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sandboxctl [-c DIR] explain USER\n");
        return 2;
    }
    struct ps_config *cfg = ctl_load_config(o);
    if (!cfg)
        return 1;
    struct ps_identity id;
    if (ps_identity_lookup(argv[1], &id) < 0) {
        fprintf(stderr, "sandboxctl: explain: %s: %m\n", argv[1]);
        ps_config_free(cfg);
        return 1;
    }
    printf("# user %s (uid %u), groups:", id.name, (unsigned)id.uid);
    for (int i = 0; i < id.n_gids; i++)
        printf(" %s(%u)", id.group_names[i] ? id.group_names[i] : "?", (unsigned)id.gids[i]);
    putchar('\n');
    char why[1024];
    const struct ps_profile *p = ps_resolve_profile(cfg, &id, why, sizeof why);
    if (!p) {
        printf("# profile: none: %s\n", why);
        puts("# not sandboxed: the module returns PAM_IGNORE and the account's traffic is not steered");
    } else {
        printf("# profile: %s (%s)\n", p->name, p->file);
        printf("# matched by %s\n", why);
        for (size_t i = 0; i < cfg->n_profiles && &cfg->profiles[i] != p; i++)
            printf("# (earlier profile %s does not match)\n", cfg->profiles[i].name);
        putchar('\n');
        print_profile(p);
    }
    ps_identity_free(&id);
    ps_config_free(cfg);
    return 0;
}
