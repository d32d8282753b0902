/* sandbox-proxyd [-c DIR] [-f] [-t] [-m N] [-p PIDFILE] [-j RELAYS]
 *
 * Starts as root only to read the config, raise RLIMIT_NOFILE, bind the listeners and write the
 * pid file; then becomes [Proxy] User= (setgroups/setgid/setuid) and keeps no privilege: the
 * sock_diag lookups that identify clients need none.  One event loop, the decision loop, runs
 * everything but the relaying of busy tunnels, which relay loops share with it (relay.c). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>
#include "proxyd/core.h"
#include "proxyd/dns_server.h"
#include "proxyd/inference_api.h"
#include "common/util.h"
#include "proxyd/resolver.h"
#include "proxyd/synth.h"

#define PD_PIDFILE "/run/pam_sandbox/proxyd.pid"
#define PD_NOFILE 65536

struct proxyd *pd;
static struct proxyd the_pd;
static const char *conf_dir = PS_DEFAULT_CONFDIR;

/* systemd's readiness protocol, by hand: one datagram to $NOTIFY_SOCKET. */
static void sd_notify_msg(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    size_t n = strlen(path);
    memcpy(sun.sun_path, path, n);
    if (sun.sun_path[0] == '@')
        sun.sun_path[0] = '\0';
    sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun,
           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
    close(fd);
}

static int write_pidfile(const char *path)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        mkdir(dir, 0755);
    }
    int pid_fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (pid_fd < 0) {
        syslog(LOG_ERR, "pid file %s: %m", path);
        return -1;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(pid_fd, 0) < 0 || write(pid_fd, buf, (size_t)n) != n) {
        syslog(LOG_ERR, "pid file %s: %m", path);
        close(pid_fd);
        return -1;
    }
    /* Not kept open: root signals the pid written here (sandboxctl apply), so the unprivileged
     * process must not be able to rewrite it.  Readers check /proc/PID/exe as well. */
    close(pid_fd);
    return 0;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rlim_t hard = rl.rlim_max;
    if (getuid() == 0 && rl.rlim_max < PD_NOFILE)
        rl.rlim_max = PD_NOFILE;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        return;
    rl.rlim_cur = rl.rlim_max = hard;          /* no CAP_SYS_RESOURCE: at least the soft limit */
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        syslog(LOG_WARNING, "setrlimit(RLIMIT_NOFILE): %m");
}

static int drop_privileges(const char *user)
{
    if (geteuid() != 0) {
        syslog(LOG_WARNING, "not started as root: running as uid %u, User=%s ignored",
               (unsigned)geteuid(), user);
        return 0;
    }
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        syslog(LOG_ERR, "[Proxy] User=%s: no such account", user);
        return -1;
    }
    if (pw->pw_uid == 0) {
        syslog(LOG_ERR, "[Proxy] User=%s is root: refusing to run the proxy as root", user);
        return -1;
    }
    gid_t g = pw->pw_gid;
    if (setgroups(1, &g) < 0 || setresgid(g, g, g) < 0 || setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0) {
        syslog(LOG_ERR, "dropping privileges to %s: %m", user);
        return -1;
    }
    if (setuid(0) == 0 || seteuid(0) == 0) {       /* must be impossible now */
        syslog(LOG_ERR, "privileges could be regained after the drop: refusing to run");
        return -1;
    }
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    return 0;
}

static int exit_status;

/* Swap in a loaded configuration. */
static void apply_config(struct ps_config *cfg, const struct pd_secrets *secrets)
{
    struct pd_conf *nc = ps_xcalloc(1, sizeof(*nc));
    nc->cfg = cfg;
    nc->refs = 1;
    struct pd_conf *old = pd->conf;
    const struct ps_global *og = &old->cfg->global, *ng = &nc->cfg->global;
    if (strcmp(og->proxy_user, ng->proxy_user) != 0 || og->n_explicit_listen != ng->n_explicit_listen ||
        og->n_transparent_listen != ng->n_transparent_listen)
        syslog(LOG_WARNING, "reload: User= and the explicit/transparent listeners change only on restart");
    pd->conf = nc;
    pd_ident_flush();
    pd_local_addrs_refresh();
    if (strcmp(og->decision_log ? og->decision_log : "", ng->decision_log ? ng->decision_log : "") != 0)
        pd_declog_open(ng->decision_log);
    if (dns_server_reload(pd, nc->cfg) < 0)
        syslog(LOG_ERR, "reload: policy DNS kept its old listeners");
    pd_inference_reload(nc, secrets);      /* keeps the old CA and keys when it cannot load new ones */
    pd_conf_unref(old);
    syslog(LOG_INFO, "reloaded configuration from %s", conf_dir);
}

static void log_lines(const char *text)
{
    while (text && *text) {
        const char *nl = strchr(text, '\n');
        int n = nl ? (int)(nl - text) : (int)strlen(text);
        syslog(LOG_ERR, "config: %.*s", n, text);
        text += n + (nl ? 1 : 0);
    }
}

static void log_diags(const struct ps_diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        syslog(LOG_ERR, "config: %s:%u: %s", d->v[i].file ? d->v[i].file : conf_dir, d->v[i].line, d->v[i].msg);
}

static void reload_rejected(void)
{
    syslog(LOG_ERR, "reload: the new configuration is invalid; the old one stays in force");
    sd_notify_msg("READY=1");
}

/* The helper's verdict on a configuration this process could not read completely. */
static void reload_checked(void *arg, int status, const char *text, const struct pd_secrets *secrets)
{
    (void)arg;
    if (status == PD_CONF_INVALID) {
        log_lines(text);
        reload_rejected();
        return;
    }
    if (status == PD_CONF_VALID) {
        /* Everything but the root-only files, read here; those came from the helper. */
        struct ps_diags d = { 0 };
        struct ps_config *cfg = ps_config_load_flags(conf_dir, PS_LOAD_SECRETS_ELSEWHERE, &d);
        log_diags(&d);                   /* only when it changed again since the helper's check */
        ps_diags_free(&d);
        if (!cfg) {
            reload_rejected();
            return;
        }
        apply_config(cfg, secrets);
        sd_notify_msg("READY=1");
        return;
    }
    /* Valid, but its root-only files could not be handed over (too many or too large).  Never keep
     * running a policy the admin replaced: stop, so that the service manager (Restart=on-failure)
     * starts proxyd again, as root, with the new configuration. */
    syslog(LOG_WARNING, "reload: the new configuration is valid but its root-only files could not "
           "be handed over; exiting with status 75 so that it is restarted with it");
    exit_status = 75;
    pd_loop_stop(pd->loop);
}

static void reload(void)
{
    sd_notify_msg("RELOADING=1");
    struct ps_diags d = { 0 };
    struct ps_config *cfg = ps_config_load(conf_dir, &d);
    if (cfg) {
        ps_diags_free(&d);
        apply_config(cfg, NULL);
        sd_notify_msg("READY=1");
        return;
    }
    bool unreadable = false;
    for (size_t i = 0; i < d.n; i++)
        if (strstr(d.v[i].msg, strerror(EACCES)))
            unreadable = true;
    if (unreadable && pd_helper_check_conf(reload_checked, NULL)) {
        ps_diags_free(&d);                 /* the helper, which can read everything, decides */
        return;
    }
    log_diags(&d);
    ps_diags_free(&d);
    reload_rejected();
}

static void on_signal(struct pd_loop *l, int fd, uint32_t ev, void *arg)
{
    struct signalfd_siginfo si;
    (void)ev;
    (void)arg;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            reload();
        } else {
            syslog(LOG_INFO, "signal %u: stopping", si.ssi_signo);
            pd_loop_stop(l);
        }
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: sandbox-proxyd [-c DIR] [-f] [-t] [-m MAXCONN] [-p PIDFILE] [-j RELAYS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    bool foreground = false, test_only = false;
    const char *pidfile = PD_PIDFILE;
    unsigned relays = pd_relays_default();
    int opt;
    while ((opt = getopt(argc, argv, "c:ftm:p:j:h")) != -1) {
        switch (opt) {
        case 'c': conf_dir = optarg; break;
        case 'f': foreground = true; break;
        case 't': test_only = true; break;
        case 'm': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v == 0 || v > 1000000)
                usage();
            pd_max_conns_per_account = (unsigned)v;
            break;
        }
        case 'p': pidfile = optarg; break;
        case 'j': {                        /* relay loops (relay.c); 0: the decision loop relays all */
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || end == optarg || v > 16)
                usage();
            relays = (unsigned)v;
            break;
        }
        default: usage();
        }
    }
    if (optind != argc)
        usage();
    openlog("sandbox-proxyd", LOG_PID | (foreground || test_only ? LOG_PERROR : 0), LOG_DAEMON);

    the_pd.conf = pd_conf_load(conf_dir, true);
    pd = &the_pd;
    if (!pd->conf)
        return 1;
    if (test_only) {
        printf("%s: configuration OK\n", conf_dir);
        pd_conf_unref(pd->conf);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGHUP);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    int sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);

    if (!foreground && daemon(0, 0) < 0) {
        syslog(LOG_ERR, "daemon: %m");
        return 1;
    }
    raise_nofile();
    pd->loop = pd_loop_new();
    if (!pd->loop || sfd < 0) {
        syslog(LOG_ERR, "event loop: %m");
        return 1;
    }
    pd_loop_add(pd->loop, sfd, EPOLLIN, on_signal, NULL);
    pd_loop_set_idle(pd->loop, pd_declog_flush);  /* decision records: one write per batch */
    pd_local_addrs_start();
    const struct ps_config *cfg = pd->conf->cfg;
    pd_declog_open(cfg->global.decision_log);
    if (pd_listeners_open(cfg) < 0)
        return 1;
    if (dns_server_start(pd, cfg) < 0)
        return 1;
    if (!pd->synth)
        pd->synth = synth_new(&cfg->global.synthetic_range);
    if (!pd->resolver)
        pd->resolver = resolver_new(pd->loop, cfg);
    if (!pd->resolver) {
        syslog(LOG_ERR, "resolver: cannot start");
        return 1;
    }
    pd_inference_reload(pd->conf, NULL);   /* as root: the CA key and APIKeyFile=s are root-only */
    if (write_pidfile(pidfile) < 0)
        return 1;
    if (pd_binary_start(conf_dir) < 0)
        syslog(LOG_ERR, "binary= helper: %m (binary= allows will not match)");
    if (drop_privileges(cfg->global.proxy_user) < 0)
        return 1;
    pd_relays_start(relays);               /* threads only now: after the fork of the helper */
    syslog(LOG_INFO, "started (config %s)", conf_dir);
    sd_notify_msg("READY=1");
    int rc = pd_loop_run(pd->loop);
    pd_relays_stop();                  /* and the close records of tunnels they had ended */
    pd_declog_report_suppressed();     /* counts of denials not written are not lost either */
    pd_declog_flush();
    sd_notify_msg("STOPPING=1");
    dns_server_stop();
    pd_listeners_close();
    if (exit_status)
        return exit_status;
    return rc == 0 ? 0 : 1;
}
