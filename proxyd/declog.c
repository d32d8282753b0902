/* The decision log (DESIGN.md §5.5): one JSON object per line and decision, to syslog and to
 * DecisionLog.  Only names, addresses, rules and counters are written: never a header, a body,
 * a token or a secret. */
#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include "proxyd/core.h"

static int log_fd = -1;
static int syslog_fd = -1;
static unsigned long syslog_dropped;
static long my_pid;                    /* getpid() is a system call; the pid never changes here */

/* Records are queued and written once per turn of the event loop (pd_declog_flush, the loop's
 * idle hook): one write(2) to DecisionLog and one sendmmsg(2) to syslog for all the decisions of a
 * batch, instead of two system calls per record; under load that was a tenth of proxyd's CPU per
 * short tunnel.  A record waits at most until the current batch of events is handled, and the
 * queue is flushed before it could overflow, on reopen and at exit. */
#define FILE_QUEUE (64u * 1024u)
#define SYSLOG_QUEUE_MSGS 64u
#define SYSLOG_MSG_MAX 4400u
static char file_q[FILE_QUEUE];
static size_t file_q_len;
static char syslog_q[SYSLOG_QUEUE_MSGS][SYSLOG_MSG_MAX];
static size_t syslog_q_len[SYSLOG_QUEUE_MSGS];
static unsigned syslog_q_n;

/* Decisions go to /dev/log over a non-blocking socket of our own: glibc's syslog() blocks when
 * the syslog daemon falls behind, and one slow reader must not stall every connection.  Records
 * that do not fit are counted and dropped here (DecisionLog still has them). */
static bool syslog_connect(void)
{
    if (syslog_fd >= 0)
        return true;
    my_pid = (long)getpid();
    syslog_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX, .sun_path = "/dev/log" };
    if (syslog_fd < 0 || connect(syslog_fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        if (syslog_fd >= 0)
            close(syslog_fd);
        syslog_fd = -1;
        return false;
    }
    return true;
}

static void note_dropped(unsigned long n)
{
    unsigned long before = syslog_dropped;
    syslog_dropped += n;
    if (before == 0 || before / 1000 != syslog_dropped / 1000)
        syslog(LOG_WARNING, "syslog is not keeping up: %lu decision records not sent to it "
               "(all are in DecisionLog)", syslog_dropped);
}

/* Send what the syslog socket takes now; what it does not (its queue is full) stays queued for
 * the next turn of the loop, in order. */
static void syslog_flush(void)
{
    if (syslog_q_n == 0)
        return;
    struct mmsghdr mm[SYSLOG_QUEUE_MSGS];
    struct iovec iov[SYSLOG_QUEUE_MSGS];
    memset(mm, 0, sizeof mm);
    for (unsigned i = 0; i < syslog_q_n; i++) {
        iov[i] = (struct iovec){ .iov_base = syslog_q[i], .iov_len = syslog_q_len[i] };
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned sent = 0;
    while (sent < syslog_q_n && syslog_fd >= 0) {
        int r = sendmmsg(syslog_fd, mm + sent, syslog_q_n - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r > 0) {
            sent += (unsigned)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno != EAGAIN) {
            close(syslog_fd);                       /* syslog restarted: reconnect next time */
            syslog_fd = -1;
            note_dropped(syslog_q_n - sent);
            syslog_q_n = 0;
            return;
        }
        break;                                      /* EAGAIN: the rest waits */
    }
    for (unsigned i = sent; i < syslog_q_n; i++) {
        memcpy(syslog_q[i - sent], syslog_q[i], syslog_q_len[i]);
        syslog_q_len[i - sent] = syslog_q_len[i];
    }
    syslog_q_n -= sent;
}

static void syslog_queue(const char *msg)
{
    if (!syslog_connect()) {
        syslog(LOG_INFO, "%s", msg);               /* no /dev/log to connect to: glibc's way */
        return;
    }
    if (syslog_q_n == SYSLOG_QUEUE_MSGS)
        syslog_flush();
    if (syslog_q_n == SYSLOG_QUEUE_MSGS) {          /* the reader is that far behind */
        note_dropped(1);
        return;
    }
    static char ts[32];
    static time_t ts_for = -1;
    time_t now = time(NULL);
    if (now != ts_for) {                       /* formatted once per second */
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(ts, sizeof ts, "%b %e %H:%M:%S", &tm);
        ts_for = now;
    }
    char *buf = syslog_q[syslog_q_n];
    int n = snprintf(buf, SYSLOG_MSG_MAX, "<%d>%s sandbox-proxyd[%ld]: %s", LOG_DAEMON | LOG_INFO, ts,
                     my_pid, msg);
    if (n < 0)
        return;
    if ((size_t)n >= SYSLOG_MSG_MAX)
        n = (int)SYSLOG_MSG_MAX - 1;
    syslog_q_len[syslog_q_n++] = (size_t)n;
}

static void file_flush(void)
{
    size_t off = 0;
    while (log_fd >= 0 && off < file_q_len) {
        ssize_t w = write(log_fd, file_q + off, file_q_len - off);   /* O_APPEND */
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;                                  /* disk full: nothing sensible to do here */
        off += (size_t)w;
    }
    file_q_len = 0;
}

static void file_queue(const char *line, size_t len)
{
    if (log_fd < 0)
        return;
    if (file_q_len + len > FILE_QUEUE)
        file_flush();
    memcpy(file_q + file_q_len, line, len);         /* a record is < 4 KiB: it always fits now */
    file_q_len += len;
}

void pd_declog_flush(void)
{
    file_flush();
    syslog_flush();
}

int pd_declog_open(const char *path)
{
    if (!path || !*path)
        return 0;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0) {
        syslog(LOG_ERR, "DecisionLog %s: %m (keeping the previous one)", path);
        return -1;
    }
    pd_declog_flush();                     /* what was queued belongs to the old file */
    if (log_fd >= 0)
        close(log_fd);
    log_fd = fd;
    return 0;
}

/* A JSON string literal (quotes included) of s, or null; truncated safely when out is small. */
void pd_json_str(char *out, size_t outlen, const char *s)
{
    size_t o = 0;
    if (!s) {
        snprintf(out, outlen, "null");
        return;
    }
    if (outlen < 3) {
        if (outlen)
            out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 8 < outlen; p++) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", *p);
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
}

static const char *mode_name(enum pd_mode m)
{
    switch (m) {
    case PD_MODE_EXPLICIT: return "explicit";
    case PD_MODE_TRANSPARENT: return "transparent";
    case PD_MODE_DNS: return "dns";
    case PD_MODE_INFERENCE: return "inference";
    }
    return "unknown";
}

void pd_log_decision(const struct pd_log_entry *e)
{
    char line[4096], tbuf[40], user[140], prof[300], host[540], addr[140], dec[40], reason[140],
        rule[1100], bin[1100];
    struct timespec ts;
    struct tm tm;
    static char sec_str[32];
    static size_t sec_len;
    static time_t sec_for = -1;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != sec_for) {                /* the date part is formatted once per second */
        gmtime_r(&ts.tv_sec, &tm);
        sec_len = strftime(sec_str, sizeof sec_str, "%Y-%m-%dT%H:%M:%S", &tm);
        sec_for = ts.tv_sec;
    }
    memcpy(tbuf, sec_str, sec_len);
    snprintf(tbuf + sec_len, sizeof tbuf - sec_len, ".%03ldZ", ts.tv_nsec / 1000000);

    const struct pd_client *w = e->who;
    long long uid = -1;
    if (w && w->user[0])
        pd_json_str(user, sizeof user, w->user);
    else
        pd_json_str(user, sizeof user, NULL);
    if (w && w->uid != (uid_t)-1)
        uid = (long long)w->uid;
    pd_json_str(prof, sizeof prof, w && w->profile ? w->profile->name : NULL);
    pd_json_str(host, sizeof host, e->host);
    pd_json_str(addr, sizeof addr, e->address);
    pd_json_str(dec, sizeof dec, e->decision);
    pd_json_str(reason, sizeof reason, e->reason);
    pd_json_str(rule, sizeof rule, e->rule);
    pd_json_str(bin, sizeof bin, e->binary);

    int len = snprintf(line, sizeof line,
                       "{\"time\":\"%s\",\"account\":%s,\"uid\":%s%lld,\"profile\":%s,\"mode\":\"%s\","
                       "\"host\":%s,\"port\":%u,\"address\":%s,\"decision\":%s,\"reason\":%s,"
                       "\"rule\":%s,\"binary\":%s",
                       tbuf, user, "", uid, prof, w ? mode_name(w->mode) : "unknown", host,
                       (unsigned)e->port, addr, dec, reason, rule, bin);
    if (len < 0 || (size_t)len >= sizeof line)
        len = (int)sizeof line - 1;
    if (e->bytes_up >= 0 || e->bytes_down >= 0 || e->duration_ms >= 0)
        len += snprintf(line + len, sizeof line - (size_t)len,
                        ",\"bytes_up\":%lld,\"bytes_down\":%lld,\"duration_ms\":%lld",
                        (long long)e->bytes_up, (long long)e->bytes_down, (long long)e->duration_ms);
    if ((size_t)len < sizeof line - 1 && e->extra_json && *e->extra_json)
        len += snprintf(line + len, sizeof line - (size_t)len, ",%s", e->extra_json);
    if ((size_t)len >= sizeof line - 2) {
        /* never write a truncated (unparseable) record: drop the extras */
        len = snprintf(line, sizeof line, "{\"time\":\"%s\",\"decision\":%s,\"reason\":\"record_too_long\"",
                       tbuf, dec);
    }
    line[len++] = '}';
    line[len] = '\0';
    syslog_queue(line);
    line[len++] = '\n';
    file_queue(line, (size_t)len);
}

void pd_sockaddr_str(const struct sockaddr *sa, char *out, size_t outlen, bool with_port)
{
    char a[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s->sin_addr, a, sizeof a);
        port = ntohs(s->sin_port);
        if (with_port)
            snprintf(out, outlen, "%s:%u", a, port);
        else
            snprintf(out, outlen, "%s", a);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof a);
        port = ntohs(s->sin6_port);
        if (with_port)
            snprintf(out, outlen, "[%s]:%u", a, port);
        else
            snprintf(out, outlen, "%s", a);
    } else {
        snprintf(out, outlen, "?");
    }
}
