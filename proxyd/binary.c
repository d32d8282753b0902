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
 * configuration directory fixed at start-up (never a path the proxy names) and answers either the
 * "FILE:LINE: message" errors or "valid" with the contents of exactly those root-only files
 * (secrets.h), which the proxy held in memory already; the proxy then reloads in place. */
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
#include <openssl/crypto.h>
#include "proxyd/core.h"
#include "proxyd/secrets.h"
#include "common/util.h"

enum { REQ_BINARY = 0, REQ_CHECK_CONF = 1 };

struct bin_req {
    uint32_t id;
    uint32_t type;
    uint32_t uid;
    uint64_t inode;
};

/* The helper's answer: text is a path (REQ_BINARY) or error lines (REQ_CHECK_CONF), NUL-terminated;
 * a valid configuration's secrets follow it in wire form (secrets.h). */
#define RESP_TEXT_MAX 4096u
#define RESP_SECRETS_MAX 65536u
struct bin_resp {
    uint32_t id;
    int32_t status;                    /* enum pd_bin_status, or enum pd_conf_status */
    uint32_t text_len;                 /* including its NUL */
    uint32_t secrets_len;
    char data[RESP_TEXT_MAX + RESP_SECRETS_MAX];
};

static int helper_fd = -1;
static const char *helper_conf_dir;
static pid_t helper_pid = -1;
static uint32_t next_id = 1;

struct pending {
    uint32_t id;
    uint32_t type;
    pd_bin_cb cb;                      /* REQ_BINARY */
    pd_conf_cb ccb;                    /* REQ_CHECK_CONF */
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
    char *out = r->data;
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
    snprintf(out, RESP_TEXT_MAX, "%s", r->status == PD_BIN_FOUND ? found : "");
}

/* The root-only files a valid configuration uses: the inference CA key and every APIKeyFile=. */
static int collect_secrets(const struct ps_config *cfg, struct pd_secrets *sec, char *err, size_t errlen)
{
    char path[PD_SECRET_PATH_MAX];
    snprintf(path, sizeof path, "%s/ca/inference-ca.key", cfg->dir);
    if (pd_secrets_add_file(sec, path, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < cfg->n_backends; i++)
        if (cfg->backends[i].api_key_file && pd_secrets_add_file(sec, cfg->backends[i].api_key_file, err, errlen) < 0)
            return -1;
    return 0;
}

static void check_conf(struct bin_resp *r)
{
    struct ps_diags d = { 0 };
    struct ps_config *cfg = ps_config_load(helper_conf_dir, &d);
    size_t o = 0;
    char *text = r->data;
    r->status = cfg ? PD_CONF_VALID : PD_CONF_INVALID;
    text[0] = '\0';
    for (size_t i = 0; i < d.n && o + 1 < RESP_TEXT_MAX; i++) {
        int n = snprintf(text + o, RESP_TEXT_MAX - o, "%s:%u: %s\n",
                         d.v[i].file ? d.v[i].file : helper_conf_dir, d.v[i].line, d.v[i].msg);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    if (o >= RESP_TEXT_MAX)
        text[RESP_TEXT_MAX - 1] = '\0';
    r->text_len = (uint32_t)strlen(text) + 1;
    ps_diags_free(&d);
    if (cfg) {
        struct pd_secrets sec = { 0 };
        char err[600];
        size_t n = 0;
        if (collect_secrets(cfg, &sec, err, sizeof err) == 0)
            n = pd_secrets_encode(&sec, (unsigned char *)r->data + r->text_len, RESP_SECRETS_MAX);
        else
            syslog(LOG_WARNING, "reload: %s", err);
        /* A secret that cannot be handed over: the proxy restarts to read it as root. */
        if (n == 0)
            r->status = PD_CONF_VALID_RESTART;
        r->secrets_len = (uint32_t)n;
        pd_secrets_free(&sec);
    }
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
        if (q.type == REQ_CHECK_CONF) {
            check_conf(r);
        } else {
            scan((uid_t)q.uid, q.inode, r);
            r->text_len = (uint32_t)strlen(r->data) + 1;
        }
        size_t len = offsetof(struct bin_resp, data) + r->text_len + r->secrets_len;
        ssize_t sent = send(fd, r, len, MSG_NOSIGNAL);
        OPENSSL_cleanse(r, len);           /* what was written: calloc zeroed the rest */
        free(r);
        if (sent < 0)
            _exit(0);
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

static void answer_all(void)
{
    while (pend_head) {
        struct pending *p = pend_head;
        pend_head = p->next;
        if (p->cb)
            p->cb(p->arg, PD_BIN_NOT_FOUND, NULL);
        if (p->ccb)
            p->ccb(p->arg, PD_CONF_INVALID, "the privileged helper is gone\n", NULL);
        free(p);
    }
    pend_tail = NULL;
}

static void answer(struct pending *p, const struct bin_resp *r, size_t n)
{
    const char *text = r->data;
    if (p->cb)
        p->cb(p->arg, r->status, r->status == PD_BIN_FOUND ? text : NULL);
    if (!p->ccb)
        return;
    struct pd_secrets sec = { 0 };
    int status = r->status;
    if (status == PD_CONF_VALID &&
        (n != offsetof(struct bin_resp, data) + r->text_len + r->secrets_len ||
         pd_secrets_decode(&sec, (const unsigned char *)r->data + r->text_len, r->secrets_len) < 0))
        status = PD_CONF_VALID_RESTART;             /* cannot happen; restart rather than guess */
    p->ccb(p->arg, status, text, status == PD_CONF_VALID ? &sec : NULL);
    pd_secrets_free(&sec);
}

static void on_helper(struct pd_loop *l, int fd, uint32_t ev, void *arg)
{
    (void)arg;
    static struct bin_resp r;              /* 68 KiB: not on the stack */
    for (;;) {
        ssize_t n = recv(fd, &r, sizeof r, 0);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0 || (size_t)n < offsetof(struct bin_resp, data) + 1 || r.text_len == 0 ||
            r.text_len > RESP_TEXT_MAX || r.secrets_len > RESP_SECRETS_MAX ||
            (size_t)n < offsetof(struct bin_resp, data) + r.text_len) {
            syslog(LOG_ERR, "binary helper gone: binary= rules now see an unknown binary");
            pd_loop_del(l, fd);
            close(fd);
            helper_fd = -1;
            answer_all();
            return;
        }
        r.data[r.text_len - 1] = '\0';
        /* answers come in request order; a cancelled request keeps its slot with no callback */
        struct pending *p = pend_head;
        if (p && p->id == r.id) {
            pend_head = p->next;
            if (!pend_head)
                pend_tail = NULL;
            answer(p, &r, (size_t)n);
            free(p);
        }
        OPENSSL_cleanse(&r, (size_t)n);
    }
}

static void *helper_request(uint32_t type, uid_t uid, uint64_t inode, pd_bin_cb cb, pd_conf_cb ccb,
                            void *arg)
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
    p->ccb = ccb;
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
    return helper_request(REQ_BINARY, uid, inode, cb, NULL, arg);
}

void *pd_helper_check_conf(pd_conf_cb cb, void *arg)
{
    return helper_request(REQ_CHECK_CONF, 0, 0, NULL, cb, arg);
}

void pd_binary_cancel(void *handle)
{
    struct pending *p = handle;
    if (p) {
        p->cb = NULL;
        p->ccb = NULL;
    }
}

bool pd_profile_uses_binary(const struct ps_profile *p)
{
    for (size_t i = 0; p && i < p->n_rules; i++)
        if (p->rules[i].binary)
            return true;
    return false;
}
