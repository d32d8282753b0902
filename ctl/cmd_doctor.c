/* sandboxctl doctor [--root DIR]: report what on this host would weaken the sandbox (DESIGN.md §9):
 * a session stack without the module, pam_limits undoing its limits, sshd without PAM, sudo
 * without sessions, no ruleset, no proxyd, DNS through a Unix socket that nftables cannot see, ICMP
 * sockets for sandboxed groups, /proc/PID/mem open to the session (Yama), an http:// inference
 * backend on loopback held by an account proxyd will not send its key to, container and VM
 * daemons' sockets open to sandboxed accounts, processes of sandboxed accounts without the
 * module's seccomp filter.  One line per finding,
 * "FILE[:LINE]: problem; fix: action", and per note ("FILE: note: ...", not counted).
 * Exit 0: nothing found; 1: findings; 2: usage. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common/config.h"
#include "common/resolve.h"
#include "common/util.h"
#include "ctl/ctl.h"
#include "ctl/doctor_int.h"

#define DOC_MAX_FILE (1u << 20)

void doc_finding(struct doctor *d, const char *file, unsigned line, const char *fmt, ...)
{
    va_list ap;
    if (line)
        fprintf(d->out, "%s:%u: ", file, line);
    else
        fprintf(d->out, "%s: ", file);
    va_start(ap, fmt);
    vfprintf(d->out, fmt, ap);
    va_end(ap);
    fputc('\n', d->out);
    d->findings++;
}

void doc_note(struct doctor *d, const char *file, const char *fmt, ...)
{
    va_list ap;
    fprintf(d->out, "%s: note: ", file);
    va_start(ap, fmt);
    vfprintf(d->out, fmt, ap);
    va_end(ap);
    fputc('\n', d->out);
}

const char *doc_path(const struct doctor *d, const char *path, char *buf, size_t len)
{
    const char *r = strcmp(d->root, "/") == 0 ? "" : d->root;
    if ((size_t)snprintf(buf, len, "%s%s", r, path) >= len)
        buf[0] = '\0';            /* an impossible path: the open fails, nothing is misread */
    return buf;
}

char *doc_read(const struct doctor *d, const char *path)
{
    char full[4096];
    int fd = open(doc_path(d, path, full, sizeof full), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = ps_xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap >= DOC_MAX_FILE)
                break;            /* longer than any sane config: read the first MiB */
            cap *= 2;
            buf = ps_xrealloc(buf, cap + 1, 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    return buf;
}

const struct doc_account *doc_account_in_gid(const struct doctor *d, gid_t gid)
{
    for (size_t i = 0; i < d->n_acct; i++)
        for (int g = 0; g < d->acct[i].id.n_gids; g++)
            if (d->acct[i].id.gids[g] == gid)
                return &d->acct[i];
    return NULL;
}

/* Every account NSS knows that a profile matches. */
static void collect_accounts(struct doctor *d)
{
    struct passwd *pw;
    setpwent();
    while ((pw = getpwent()) != NULL) {
        struct ps_identity id;
        if (ps_identity_lookup(pw->pw_name, &id) < 0)
            continue;
        const struct ps_profile *p = ps_resolve_profile(d->cfg, &id, NULL, 0);
        if (!p) {
            ps_identity_free(&id);
            continue;
        }
        struct doc_account *a = ps_vec_push(&d->acct, &d->n_acct, &d->cap_acct, sizeof *a);
        a->id = id;
        a->profile = p;
    }
    endpwent();
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sandboxctl [-c DIR] doctor [--root DIR]\n"
               "  --root DIR   read /etc and /run below DIR (default /); -c defaults to DIR/etc/pam_sandbox\n");
}

int cmd_doctor(const struct ctl_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "root", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct doctor d = { .root = "/", .out = stdout };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r': d.root = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || d.root[0] != '/') {
        usage(stderr);
        return 2;
    }

    char confbuf[4096];
    const char *confdir = o->confdir;
    if (strcmp(confdir, PS_DEFAULT_CONFDIR) == 0)
        confdir = doc_path(&d, PS_DEFAULT_CONFDIR, confbuf, sizeof confbuf);
    struct ps_diags diags = { 0 };
    struct ps_config *cfg = ps_config_load(confdir, &diags);
    if (!cfg || diags.n) {
        doc_finding(&d, confdir, 0, "the configuration does not load (%zu error%s), so the module "
                    "refuses every login it would sandbox; fix: run sandboxctl -c %s check",
                    diags.n, diags.n == 1 ? "" : "s", confdir);
        ps_config_free(cfg);
        cfg = NULL;
    }
    ps_diags_free(&diags);
    d.cfg = cfg;
    if (cfg)
        collect_accounts(&d);

    doc_check_pam(&d);
    doc_check_sshd(&d);
    doc_check_sudoers(&d);
    doc_check_ruleset(&d);
    doc_check_proxyd(&d);
    doc_check_listener_marks(&d);
    doc_check_backend_owners(&d);
    doc_check_dns_sockets(&d);
    doc_check_ping(&d);
    doc_check_ptrace(&d);
    doc_check_daemon_sockets(&d);
    doc_check_unconfined_processes(&d);

    fprintf(stderr, "sandboxctl doctor: %u finding%s (%zu sandboxed account%s)\n", d.findings,
            d.findings == 1 ? "" : "s", d.n_acct, d.n_acct == 1 ? "" : "s");
    for (size_t i = 0; i < d.n_acct; i++)
        ps_identity_free(&d.acct[i].id);
    free(d.acct);
    ps_config_free(cfg);
    return d.findings ? 1 : 0;
}
