/* sandboxctl doctor: ways around the sandbox through what already runs on the host.
 *
 * - Sockets of daemons that start programs as root or in other network namespaces (Docker,
 *   containerd, Podman, libvirt, LXD, Incus): an account that can connect starts a container with
 *   "--network host", or on a bridge whose traffic goes through the forward hook, which the table
 *   does not touch.  Such an account is root on the host anyway; for a sandboxed one it is also a
 *   way out of every rule.  Read below the doctor's root.
 * - Processes of sandboxed accounts that run without the module's seccomp filter: started before
 *   the account was sandboxed (a lingering or still running systemd user manager keeps running
 *   unconfined, and "systemd-run --user" from a confined shell then starts unconfined programs),
 *   or by a path that opens no PAM session (a service with User=, a mail server's ~/.forward
 *   pipe).  Their TCP and UDP are still steered, but they keep every socket family, user
 *   namespaces and io_uring.  Live by nature: read from this host's /proc. */
#include <ctype.h>
#include <dirent.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "ctl/doctor_int.h"

static const struct doc_account *account_of_uid(const struct doctor *d, uid_t uid)
{
    for (size_t i = 0; i < d->n_acct; i++)
        if (d->acct[i].id.uid == uid)
            return &d->acct[i];
    return NULL;
}

void doc_check_daemon_sockets(struct doctor *d)
{
    static const struct { const char *path, *what; } socks[] = {
        { "/run/docker.sock", "the Docker daemon" },
        { "/run/containerd/containerd.sock", "containerd" },
        { "/run/podman/podman.sock", "Podman's system service" },
        { "/run/libvirt/libvirt-sock", "libvirtd" },
        { "/run/libvirt/virtqemud-sock", "libvirt's virtqemud" },
        { "/var/lib/lxd/unix.socket", "LXD" },
        { "/var/snap/lxd/common/lxd/unix.socket", "LXD" },
        { "/var/lib/incus/unix.socket", "Incus" },
    };
    for (size_t i = 0; i < sizeof socks / sizeof socks[0]; i++) {
        char full[4096];
        struct stat st;
        if (stat(doc_path(d, socks[i].path, full, sizeof full), &st) != 0 || !S_ISSOCK(st.st_mode))
            continue;
        /* connect(2) needs write permission on the socket */
        const struct doc_account *a = NULL;
        char how[320] = "";
        if (st.st_mode & S_IWOTH) {
            a = d->n_acct ? &d->acct[0] : NULL;
            snprintf(how, sizeof how, "every account (mode %04o)", (unsigned)(st.st_mode & 07777));
        } else if ((st.st_mode & S_IWGRP) && (a = doc_account_in_gid(d, st.st_gid)) != NULL) {
            const struct group *g = getgrgid(st.st_gid);
            snprintf(how, sizeof how, "sandboxed account %s (a member of group %s)", a->id.name,
                     g ? g->gr_name : "(unnamed)");
        } else if ((st.st_mode & S_IWUSR) && (a = account_of_uid(d, st.st_uid)) != NULL) {
            snprintf(how, sizeof how, "sandboxed account %s (its owner)", a->id.name);
        }
        if (!a)
            continue;
        doc_finding(d, socks[i].path, 0, "%s's socket is reachable by %s: "
                    "it starts containers or machines as root, whose network is not steered "
                    "(--network host, or a bridge through the forward hook); fix: take sandboxed "
                    "accounts out of the group that may use it (gpasswd -d ACCOUNT GROUP)",
                    socks[i].what, how);
    }
}

/* "Key:\tvalue" of a /proc/PID/status text, or NULL. */
static const char *status_field(const char *text, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, key, kl) == 0 && p[kl] == ':')
            return p + kl + 1;
    return NULL;
}

void doc_check_unconfined_processes(struct doctor *d)
{
    if (!d->n_acct)
        return;
    DIR *dir = opendir("/proc");
    if (!dir)
        return;
    unsigned reported = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        char path[300], text[4096];
        snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;                    /* gone meanwhile */
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = '\0';
        const char *uids = status_field(text, "Uid"), *state = status_field(text, "State"),
                   *seccomp = status_field(text, "Seccomp"), *name = status_field(text, "Name");
        unsigned long ruid, euid;
        if (!uids || !seccomp || sscanf(uids, "%lu %lu", &ruid, &euid) != 2)
            continue;
        const char *st = state ? state + strspn(state, " \t") : "";
        if (*st == 'Z' || *st == 'X')
            continue;                    /* a zombie runs nothing */
        const struct doc_account *a = account_of_uid(d, (uid_t)ruid);
        if (!a)
            a = account_of_uid(d, (uid_t)euid);
        if (!a || atoi(seccomp) == 2)
            continue;                    /* not sandboxed, or under a filter */
        if (++reported > 20)
            continue;                    /* the first ones tell the story */
        char comm[64];
        snprintf(comm, sizeof comm, "%.*s", (int)strcspn(name ? name + strspn(name, " \t") : "?", "\n"),
                 name ? name + strspn(name, " \t") : "?");
        char where[300];
        snprintf(where, sizeof where, "/proc/%s", e->d_name);
        doc_finding(d, where, 0, "process %s (%s) of sandboxed account %s runs without the "
                    "module's seccomp filter: started before the account was sandboxed, or by a "
                    "path that opens no PAM session; it keeps every socket family, user namespaces "
                    "and io_uring; fix: end it (a systemd user manager: systemctl stop user@%u.service)",
                    e->d_name, comm, a->id.name, (unsigned)a->id.uid);
    }
    closedir(dir);
    if (reported > 20)
        doc_finding(d, "/proc", 0, "%u more processes of sandboxed accounts run without the "
                    "module's seccomp filter", reported - 20);
}
