/* sandboxctl entry point: global options, then dispatch to ctl/cmd_NAME.c. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "common/config.h"
#include "ctl/ctl.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sandboxctl [-c DIR] COMMAND [ARGS]\n"
            "  check                         validate the configuration\n"
            "  explain USER                  which profile applies to USER, effective settings\n"
            "  decide USER HOST PORT [--binary PATH]\n"
            "                                the decision proxyd would take, and the rule\n"
            "  apply [--proxyd-pidfile PATH] validate, load the ruleset, add matching UIDs, reload proxyd\n"
            "  status | flush                the nftables table\n"
            "  ca init [--force]             create the inference.local CA\n"
            "  denials [USER] [--since MINUTES] [--log FILE]\n"
            "                                recent denials, with Allow= lines that would permit them\n"
            "  doctor [--root DIR]           what on this host would weaken the sandbox\n"
            "-c DIR: the configuration directory (default " PS_DEFAULT_CONFDIR "); see sandboxctl(8)\n");
}

int main(int argc, char **argv)
{
    struct ctl_opts o = { .confdir = PS_DEFAULT_CONFDIR };
    int c;
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    while ((c = getopt(argc, argv, "+c:h")) != -1) {
        switch (c) {
        case 'c': o.confdir = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    static const struct { const char *name; int (*fn)(const struct ctl_opts *, int, char **); } table[] = {
#define X(name) { #name, cmd_##name },
        CTL_COMMANDS(X)
#undef X
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(cmd, table[i].name) != 0)
            continue;
        if (!table[i].fn) {
            fprintf(stderr, "sandboxctl: %s: not available in this build\n", cmd);
            return 2;
        }
        optind++;
        return table[i].fn(&o, argc - optind + 1, argv + optind - 1);
    }
    fprintf(stderr, "sandboxctl: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
