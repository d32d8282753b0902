/* sandboxctl doctor: the host around the module — sshd and sudo settings that skip PAM sessions,
 * the nftables table, proxyd, DNS reachable through Unix sockets, ICMP sockets. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include "common/util.h"
#include "ctl/doctor_int.h"
#include "netfilter/nft.h"

/* ---- sshd: UsePAM (the first value sshd reads wins; Include is expanded where it stands) ---- */

struct sshd_find {
    char file[512];
    unsigned line;
    char value[32];
    bool found;
};

static void sshd_scan(const struct doctor *d, const char *path, int depth, struct sshd_find *f);

static void sshd_include(const struct doctor *d, const char *pattern, int depth, struct sshd_find *f)
{
    char rel[1100], full[4096];
    if (pattern[0] == '/')
        snprintf(rel, sizeof rel, "%s", pattern);
    else
        snprintf(rel, sizeof rel, "/etc/ssh/%s", pattern);
    glob_t g;
    if (glob(doc_path(d, rel, full, sizeof full), 0, NULL, &g) != 0)
        return;
    size_t skip = strcmp(d->root, "/") == 0 ? 0 : strlen(d->root);
    for (size_t i = 0; i < g.gl_pathc && !f->found; i++)
        sshd_scan(d, g.gl_pathv[i] + skip, depth + 1, f);
    globfree(&g);
}

static void sshd_scan(const struct doctor *d, const char *path, int depth, struct sshd_find *f)
{
    if (depth > 8)
        return;
    char *buf = doc_read(d, path);
    if (!buf)
        return;
    unsigned lineno = 0;
    char *p = buf;
    while (*p && !f->found) {
        char *line = p, *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        p = nl ? nl + 1 : p + strlen(p);
        lineno++;
        char key[64], val[1024];
        /* "Key value" or "Key=value" */
        for (char *c = line; *c; c++)
            if (*c == '=') {
                *c = ' ';
                break;
            }
        if (sscanf(line, " %63s %1023s", key, val) != 2 || key[0] == '#')
            continue;
        if (strcasecmp(key, "Include") == 0) {
            sshd_include(d, val, depth, f);
        } else if (strcasecmp(key, "UsePAM") == 0) {
            snprintf(f->file, sizeof f->file, "%s", path);
            f->line = lineno;
            snprintf(f->value, sizeof f->value, "%.31s", val);
            f->found = true;
        }
    }
    free(buf);
}

void doc_check_sshd(struct doctor *d)
{
    char full[4096];
    struct stat st;
    if (stat(doc_path(d, "/etc/ssh/sshd_config", full, sizeof full), &st) != 0)
        return;                   /* no sshd here */
    struct sshd_find f = { .found = false };
    sshd_scan(d, "/etc/ssh/sshd_config", 0, &f);
    if (!f.found)
        doc_finding(d, "/etc/ssh/sshd_config", 0, "UsePAM is not set and defaults to no: SSH logins "
                    "open no PAM session and are not confined; fix: set \"UsePAM yes\"");
    else if (strcasecmp(f.value, "yes") != 0)
        doc_finding(d, f.file, f.line, "\"UsePAM %s\": SSH logins open no PAM session and are not "
                    "confined; fix: set \"UsePAM yes\" (the first UsePAM sshd reads wins)", f.value);
}

/* ---- sudo: Defaults !pam_session (sudo then runs commands without opening a session) ---- */

static void sudoers_scan(struct doctor *d, const char *path)
{
    char *buf = doc_read(d, path);
    if (!buf)
        return;
    unsigned lineno = 0;
    char *p = buf;
    while (*p) {
        char *line = p, *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        p = nl ? nl + 1 : p + strlen(p);
        lineno++;
        while (*line == ' ' || *line == '\t')
            line++;
        if (strncmp(line, "Defaults", 8) != 0)
            continue;
        /* Scan the flags after "Defaults[:@>!]LIST" for a "!pam_session" token. */
        for (char *s = strstr(line, "pam_session"); s; s = strstr(s + 1, "pam_session")) {
            char *b = s;
            while (b > line && (b[-1] == ' ' || b[-1] == '\t'))
                b--;
            bool negated = b > line && b[-1] == '!';
            char after = s[11];
            if (negated && (after == '\0' || after == ',' || isspace((unsigned char)after))) {
                doc_finding(d, path, lineno, "\"Defaults !pam_session\": sudo runs commands without "
                            "opening a PAM session, so pam_sandbox.so never runs for them; fix: "
                            "remove it");
                break;
            }
        }
    }
    free(buf);
}

void doc_check_sudoers(struct doctor *d)
{
    sudoers_scan(d, "/etc/sudoers");
    char full[4096];
    DIR *dir = opendir(doc_path(d, "/etc/sudoers.d", full, sizeof full));
    if (!dir)
        return;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        /* sudo skips names containing '.' or ending in '~' */
        size_t l = strlen(e->d_name);
        if (strchr(e->d_name, '.') || (l && e->d_name[l - 1] == '~'))
            continue;
        char path[512];
        snprintf(path, sizeof path, "/etc/sudoers.d/%s", e->d_name);
        sudoers_scan(d, path);
    }
    closedir(dir);
}

/* ---- the nftables table (live: it belongs to this network namespace) ---- */

void doc_check_ruleset(struct doctor *d)
{
    static const char *const table = "table inet pam_sandbox";
    if (geteuid() != 0) {
        doc_finding(d, table, 0, "cannot check the ruleset without root; fix: run sandboxctl "
                    "doctor as root");
        return;
    }
    struct ps_nft_status st = { .loaded = false };
    char err[512] = "";
    if (ps_nft_status_read(&st, err, sizeof err) < 0) {
        doc_finding(d, table, 0, "cannot read the ruleset (%s); fix: check that nftables works "
                    "(nft list ruleset)", err);
        return;
    }
    if (!st.loaded) {
        doc_finding(d, table, 0, "the ruleset is not loaded: egress of sandboxed accounts is not "
                    "steered and the module refuses their logins; fix: sandboxctl apply (and enable "
                    "pam-sandbox-ruleset.service for boot)");
    } else if (d->cfg) {
        uint32_t want = 0;
        struct ps_diags diags = { 0 };
        if (ps_nft_config_version(d->cfg, &want, &diags) == 0 && want != st.version)
            doc_finding(d, table, 0, "the loaded ruleset (version 0x%08x) is not the one the "
                        "configuration renders (0x%08x): the module refuses sandboxed logins until "
                        "it is reloaded; fix: sandboxctl apply", st.version, want);
        ps_diags_free(&diags);
    }
    ps_nft_status_free(&st);
}

/* ---- proxyd (pid file, then the process behind it) ---- */

#define PROXYD_PIDFILE "/run/pam_sandbox/proxyd.pid"

void doc_check_proxyd(struct doctor *d)
{
    char *buf = doc_read(d, PROXYD_PIDFILE);
    long pid = 0;
    char comm[64] = "";
    if (buf) {
        char *end;
        pid = strtol(buf, &end, 10);
        if (end == buf || pid <= 0 || (*end && *end != '\n'))
            pid = 0;
        free(buf);
    }
    if (pid > 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/comm", pid);
        FILE *f = fopen(path, "re");
        if (f) {
            if (!fgets(comm, sizeof comm, f))
                comm[0] = '\0';
            fclose(f);
            comm[strcspn(comm, "\n")] = '\0';
        }
    }
    if (pid <= 0)
        doc_finding(d, PROXYD_PIDFILE, 0, "sandbox-proxyd is not running (no pid file): sandboxed "
                    "accounts can reach nothing; fix: systemctl start sandbox-proxyd");
    else if (strcmp(comm, "sandbox-proxyd") != 0)
        doc_finding(d, PROXYD_PIDFILE, 0, "sandbox-proxyd is not running (pid %ld is %s): sandboxed "
                    "accounts can reach nothing; fix: systemctl restart sandbox-proxyd", pid,
                    comm[0] ? comm : "gone");
}

/* ---- DNS through Unix sockets: a lookup there leaves by a path nftables never sees ---- */

void doc_check_dns_sockets(struct doctor *d)
{
    static const struct { const char *path, *what, *fix; } socks[] = {
        { "/run/systemd/resolve/io.systemd.Resolve", "systemd-resolved's varlink socket",
          "systemctl mask --now systemd-resolved (or remove \"resolve\" from nsswitch and make the "
          "socket unreachable for sandboxed accounts)" },
        { "/run/nscd/socket", "nscd's socket", "stop and disable nscd (or disable its hosts cache)" },
        { "/run/avahi-daemon/socket", "avahi's socket (mDNS names and services)",
          "systemctl mask --now avahi-daemon.service avahi-daemon.socket" },
    };
    for (size_t i = 0; i < sizeof socks / sizeof socks[0]; i++) {
        char full[4096];
        struct stat st;
        if (lstat(doc_path(d, socks[i].path, full, sizeof full), &st) != 0 || !S_ISSOCK(st.st_mode))
            continue;
        if (!(st.st_mode & S_IWOTH))
            continue;             /* connect(2) needs write permission: not reachable */
        doc_finding(d, socks[i].path, 0, "%s is reachable by sandboxed accounts: names resolved "
                    "through it bypass policy DNS (a denied name leaks, nftables cannot see it); "
                    "fix: %s", socks[i].what, socks[i].fix);
    }
    /* systemd-resolved also answers over D-Bus (resolvectl query), and its bus policy lets any
     * account ask: closing its varlink socket does not close that door. */
    char rs[4096], bus[4096];
    struct stat st;
    if (lstat(doc_path(d, "/run/systemd/resolve/io.systemd.Resolve", rs, sizeof rs), &st) == 0 &&
        S_ISSOCK(st.st_mode) &&
        lstat(doc_path(d, "/run/dbus/system_bus_socket", bus, sizeof bus), &st) == 0 && S_ISSOCK(st.st_mode))
        doc_finding(d, "/run/systemd/resolve/io.systemd.Resolve", 0, "systemd-resolved is running, "
                    "and any account can ask it for names over D-Bus (resolvectl query), past policy "
                    "DNS; fix: systemctl mask --now systemd-resolved");
}

/* ---- ICMP echo sockets (net.ipv4.ping_group_range; per network namespace, read live) ---- */

void doc_check_ping(struct doctor *d)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ping_group_range", "re");
    if (!f)
        return;
    unsigned long lo, hi;
    int n = fscanf(f, "%lu %lu", &lo, &hi);
    fclose(f);
    if (n != 2 || lo > hi)
        return;                   /* "1 0": nobody */
    for (size_t i = 0; i < d->n_acct; i++) {
        const struct doc_account *a = &d->acct[i];
        for (int g = 0; g < a->id.n_gids; g++) {
            if (a->id.gids[g] < lo || a->id.gids[g] > hi)
                continue;
            doc_finding(d, "/proc/sys/net/ipv4/ping_group_range", 0, "\"%lu %lu\" lets sandboxed "
                        "account %s (group %u) open ICMP sockets, which only nftables then stops; "
                        "fix: echo 'net.ipv4.ping_group_range = 1 0' > "
                        "/etc/sysctl.d/60-pam-sandbox.conf && sysctl --system", lo, hi, a->id.name,
                        (unsigned)a->id.gids[g]);
            return;               /* one line names the problem */
        }
    }
}

/* ---- Yama: another process's memory through /proc/PID/mem ---- */

#define PTRACE_SCOPE "/proc/sys/kernel/yama/ptrace_scope"

/* The filter denies ptrace(2) and process_vm_*, but a sandboxed process can still open
 * /proc/PID/mem of a dumpable, unconfined process of its own account (a session from before the
 * account was sandboxed, runuser, a service with User=) and write it.  The kernel checks that with
 * ptrace_may_access(), which only Yama narrows (scope 1: the caller's descendants, and a tracer
 * the target names itself).  Global, not per namespace, and tests must not change it: read below
 * the root like a file, so --root can give the value. */
void doc_check_ptrace(struct doctor *d)
{
    char full[4096];
    struct stat st;
    if (lstat(doc_path(d, PTRACE_SCOPE, full, sizeof full), &st) != 0 && errno == ENOENT) {
        doc_note(d, PTRACE_SCOPE, "Yama is not active in this kernel, so nothing keeps a sandboxed "
                 "process from writing the memory of a dumpable, unconfined process of its own "
                 "account through /proc/PID/mem, as with ptrace_scope 0; the protection needs a "
                 "kernel with Yama (CONFIG_SECURITY_YAMA, \"yama\" in the lsm= boot parameter)");
        return;
    }
    char *v = doc_read(d, PTRACE_SCOPE), *end = NULL;
    long scope = v ? strtol(v, &end, 10) : -1;
    if (!v || end == v)
        doc_finding(d, PTRACE_SCOPE, 0, "cannot be read, so whether a sandboxed process may write "
                    "the memory of unconfined processes of its account is unknown; fix: check that "
                    "/proc is mounted and readable");
    else if (scope == 0)
        doc_finding(d, PTRACE_SCOPE, 0, "\"0\" lets a sandboxed process write the memory of any "
                    "dumpable, unconfined process of its own account through /proc/PID/mem (a "
                    "session opened before the account was sandboxed, runuser, a service with "
                    "User=): the filter denies ptrace(2), not that; fix: echo "
                    "'kernel.yama.ptrace_scope = 1' > /etc/sysctl.d/60-pam-sandbox-ptrace.conf && "
                    "sysctl --system");
    free(v);
}
