/* The privileged helper: binary= rules (DESIGN.md §5.2) and config checks on reload.
 *
 * Reading /proc/PID/fd and /proc/PID/exe of another account's processes needs CAP_SYS_PTRACE and
 * CAP_DAC_READ_SEARCH, which the proxy itself must not keep.  So, before the privilege drop, a
 * small helper is forked that keeps exactly those two capabilities (and no others, bounding set
 * included) and does one thing: given (uid, socket inode), scan that UID's processes for the
 * inode and answer the executable.  The proxy talks to it over a SOCK_SEQPACKET pair, without
 * blocking; the helper answers in order.  Several processes holding the socket with different
 * executables is "ambiguous" and the proxy denies.  Only profiles that use binary= pay for this.
 *
 * Its second job: on SIGHUP, when the unprivileged proxy cannot read some root-only file of the
 * new configuration (a CA key, an APIKeyFile=), the helper — which can — validates the
 * configuration directory fixed at start-up (never a path the proxy names) and answers only
 * "valid" or the "FILE:LINE: message" errors. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>
#include "proxyd/core.h"
#include "common/util.h"

enum { REQ_BINARY = 0, REQ_CHECK_CONF = 1 };

struct bin_req {
    uint32_t id;
    uint32_t type;
    uint32_t uid;
    uint64_t inode;
};

struct bin_resp {
    uint32_t id;
    int32_t status;                    /* enum pd_bin_status */
    char path[4096];
};

static int helper_fd = -1;
static const char *helper_conf_dir;
static pid_t helper_pid = -1;
static uint32_t next_id = 1;

struct pending {
    uint32_t id;
    uint32_t type;
    pd_bin_cb cb;
    void *arg;
    struct pending *next;
};
static struct pending *pend_head, *pend_tail;

/* ---------------- the helper (privileged side) ---------------- */
static int keep_only_ptrace_caps(void)
{
    for (int c = 0; c <= CAP_LAST_CAP; c++)
        if (c != CAP_SYS_PTRACE && c != CAP_DAC_READ_SEARCH)
            prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
    cap_t caps = cap_init();
    cap_value_t keep[] = { CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH };
    if (!caps || cap_set_flag(caps, CAP_PERMITTED, 2, keep, CAP_SET) < 0 ||
        cap_set_flag(caps, CAP_EFFECTIVE, 2, keep, CAP_SET) < 0 || cap_set_proc(caps) < 0) {
        cap_free(caps);
        return -1;
    }
    cap_free(caps);
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

static void scan(uid_t uid, uint64_t inode, struct bin_resp *r)
{
    char want[64], found[4096] = "";
    snprintf(want, sizeof want, "socket:[%llu]", (unsigned long long)inode);
    r->status = PD_BIN_NOT_FOUND;
    DIR *proc = opendir("/proc");
    if (!proc)
        return;
    struct dirent *de;
    while ((de = readdir(proc))) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        char p[300];
        struct stat st;
        snprintf(p, sizeof p, "/proc/%s", de->d_name);
        if (stat(p, &st) < 0 || st.st_uid != uid)
            continue;
        snprintf(p, sizeof p, "/proc/%s/fd", de->d_name);
        DIR *fds = opendir(p);
        if (!fds)
            continue;
        bool owns = false;
        struct dirent *fe;
        while (!owns && (fe = readdir(fds))) {
            char lp[600], target[80];
            snprintf(lp, sizeof lp, "/proc/%s/fd/%s", de->d_name, fe->d_name);
            ssize_t n = readlink(lp, target, sizeof target - 1);
            if (n > 0) {
                target[n] = '\0';
                owns = strcmp(target, want) == 0;
            }
        }
        closedir(fds);
        if (!owns)
            continue;
        char exe[4096];
        snprintf(p, sizeof p, "/proc/%s/exe", de->d_name);
        ssize_t n = readlink(p, exe, sizeof exe - 1);
        if (n <= 0)
            continue;                  /* exited meanwhile, or a kernel thread */
        exe[n] = '\0';
        if (!found[0]) {
            snprintf(found, sizeof found, "%s", exe);
            r->status = PD_BIN_FOUND;
        } else if (strcmp(found, exe) != 0) {
            r->status = PD_BIN_AMBIGUOUS;  /* owners disagree: nobody can say who connects */
            break;
        }
    }
    closedir(proc);
    snprintf(r->path, sizeof r->path, "%s", r->status == PD_BIN_FOUND ? found : "");
}

static void check_conf(struct bin_resp *r)
{
    struct ps_diags d = { 0 };
    struct ps_config *cfg = ps_config_load(helper_conf_dir, &d);
    size_t o = 0;
    r->status = cfg ? 0 : 1;
    r->path[0] = '\0';
    for (size_t i = 0; i < d.n && o + 1 < sizeof r->path; i++) {
        int n = snprintf(r->path + o, sizeof r->path - o, "%s:%u: %s\n",
                         d.v[i].file ? d.v[i].file : helper_conf_dir, d.v[i].line, d.v[i].msg);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    if (o >= sizeof r->path)
        r->path[sizeof r->path - 1] = '\0';
    ps_diags_free(&d);
    ps_config_free(cfg);
}

static void helper_main(int fd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, "proxyd-binary", 0, 0, 0);
    if (keep_only_ptrace_caps() < 0) {
        syslog(LOG_ERR, "binary helper: dropping capabilities: %m");
        _exit(1);
    }
    for (;;) {
        struct bin_req q;
        ssize_t n = recv(fd, &q, sizeof q, 0);
        if (n == 0 || (n < 0 && errno != EINTR))
            _exit(0);
        if (n != (ssize_t)sizeof q)
            continue;
        struct bin_resp *r = calloc(1, sizeof(*r));
        if (!r)
            _exit(1);
        r->id = q.id;
        if (q.type == REQ_CHECK_CONF)
            check_conf(r);
        else
            scan((uid_t)q.uid, q.inode, r);
        size_t len = offsetof(struct bin_resp, path) + strlen(r->path) + 1;
        if (send(fd, r, len, MSG_NOSIGNAL) < 0)
            _exit(0);
        free(r);
    }
}

/* Before the privilege drop: start the helper.  Not root: binary= lookups are answered
 * "unknown" (a binary= allow then never matches: fail closed). */
int pd_binary_start(const char *conf_dir)
{
    helper_conf_dir = conf_dir;
    if (geteuid() != 0)
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        /* nothing of the proxy's stays open in the helper */
        for (int f = 3; f < 65536; f++)
            if (f != sv[1])
                close(f);
        helper_main(sv[1]);
    }
    close(sv[1]);
    helper_fd = sv[0];
    helper_pid = pid;
    fcntl(helper_fd, F_SETFL, O_NONBLOCK);
    return 0;
}

static void answer_all(int status, const char *path)
{
    while (pend_head) {
        struct pending *p = pend_head;
        pend_head = p->next;
        p->cb(p->arg, status, path);
        free(p);
    }
    pend_tail = NULL;
}

static void on_helper(struct pd_loop *l, int fd, uint32_t ev, void *arg)
{
    (void)arg;
    for (;;) {
        struct bin_resp r;
        ssize_t n = recv(fd, &r, sizeof r, 0);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0 || (size_t)n < offsetof(struct bin_resp, path) + 1) {
            syslog(LOG_ERR, "binary helper gone: binary= rules now see an unknown binary");
            pd_loop_del(l, fd);
            close(fd);
            helper_fd = -1;
            answer_all(PD_BIN_NOT_FOUND, NULL);
            return;
        }
        r.path[sizeof r.path - 1] = '\0';
        /* answers come in request order; a cancelled request keeps its slot with cb == NULL */
        struct pending *p = pend_head;
        if (!p || p->id != r.id)
            continue;
        pend_head = p->next;
        if (!pend_head)
            pend_tail = NULL;
        if (p->cb)
            p->cb(p->arg, r.status, p->type == REQ_CHECK_CONF || r.status == PD_BIN_FOUND ? r.path : NULL);
        free(p);
    }
}

static void *helper_request(uint32_t type, uid_t uid, uint64_t inode, pd_bin_cb cb, void *arg)
{
    if (helper_fd < 0)
        return NULL;
    static bool registered;
    if (!registered) {
        if (pd_loop_add(pd->loop, helper_fd, EPOLLIN, on_helper, NULL) < 0)
            return NULL;
        registered = true;
    }
    struct bin_req q = { .id = next_id++, .type = type, .uid = (uint32_t)uid, .inode = inode };
    if (send(helper_fd, &q, sizeof q, MSG_NOSIGNAL) != (ssize_t)sizeof q)
        return NULL;
    struct pending *p = ps_xcalloc(1, sizeof(*p));
    p->id = q.id;
    p->type = type;
    p->cb = cb;
    p->arg = arg;
    if (pend_tail)
        pend_tail->next = p;
    else
        pend_head = p;
    pend_tail = p;
    return p;
}

void *pd_binary_lookup(uid_t uid, uint64_t inode, pd_bin_cb cb, void *arg)
{
    return helper_request(REQ_BINARY, uid, inode, cb, arg);
}

void *pd_helper_check_conf(pd_bin_cb cb, void *arg)
{
    return helper_request(REQ_CHECK_CONF, 0, 0, cb, arg);
}

void pd_binary_cancel(void *handle)
{
    struct pending *p = handle;
    if (p)
        p->cb = NULL;
}

bool pd_profile_uses_binary(const struct ps_profile *p)
{
    for (size_t i = 0; p && i < p->n_rules; i++)
        if (p->rules[i].binary)
            return true;
    return false;
}
