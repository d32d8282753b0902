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

static void syslog_queue(const char *msg, size_t msg_len)
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
    /* "<30>Nov 29 08:54:01 sandbox-proxyd[PID]: ", formatted once per second */
    static char head[96];
    static size_t head_len;
    static time_t head_for = -1;
    time_t now = time(NULL);
    if (now != head_for) {
        char ts[32];
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(ts, sizeof ts, "%b %e %H:%M:%S", &tm);
        int n = snprintf(head, sizeof head, "<%d>%s sandbox-proxyd[%ld]: ", LOG_DAEMON | LOG_INFO, ts,
                         my_pid);
        head_len = n > 0 && (size_t)n < sizeof head ? (size_t)n : 0;
        head_for = now;
    }
    char *buf = syslog_q[syslog_q_n];
    size_t room = SYSLOG_MSG_MAX - 1 - head_len;
    memcpy(buf, head, head_len);
    memcpy(buf + head_len, msg, msg_len < room ? msg_len : room);
    syslog_q_len[syslog_q_n++] = head_len + (msg_len < room ? msg_len : room);
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

/* Length of the well-formed UTF-8 sequence at q (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *q)
{
    if (q[0] >= 0xc2 && q[0] <= 0xdf)
        return (q[1] & 0xc0) == 0x80 ? 2 : 0;
    if (q[0] >= 0xe0 && q[0] <= 0xef) {
        unsigned lo = q[0] == 0xe0 ? 0xa0 : 0x80, hi = q[0] == 0xed ? 0x9f : 0xbf;
        return q[1] >= lo && q[1] <= hi && (q[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (q[0] >= 0xf0 && q[0] <= 0xf4) {
        unsigned lo = q[0] == 0xf0 ? 0x90 : 0x80, hi = q[0] == 0xf4 ? 0x8f : 0xbf;
        return q[1] >= lo && q[1] <= hi && (q[2] & 0xc0) == 0x80 && (q[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* The quoted, escaped JSON string of s into out (lim >= 3 bytes; no NUL), cut short so that it
 * fits in lim - 1 with its closing quote; its length.  The one escaper of the decision log.
 * Fields can hold what a user chose (a program's path): bytes that are not UTF-8 would make the
 * line unreadable to strict JSON readers, so each such byte is written as the code point of the
 * same value (\u0080-\u00ff), and a character is copied whole or not at all when space runs out. */
static size_t json_quote(char *out, size_t lim, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    out[o++] = '"';
    for (const unsigned char *q = (const unsigned char *)s; *q && o + 8 < lim; q++) {
        size_t u = *q >= 0x80 ? utf8_len(q) : 0;
        if (u) {
            if (o + u + 8 >= lim)
                break;
            memcpy(out + o, q, u);
            o += u;
            q += u - 1;
        } else if (*q == '"' || *q == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*q;
        } else if (*q < 0x20 || *q >= 0x7f) {
            memcpy(out + o, "\\u00", 4);
            out[o + 4] = hex[*q >> 4];
            out[o + 5] = hex[*q & 15];
            o += 6;
        } else {
            out[o++] = (char)*q;
        }
    }
    out[o++] = '"';
    return o;
}

/* A JSON string literal (quotes included) of s, or null; truncated safely when out is small. */
void pd_json_str(char *out, size_t outlen, const char *s)
{
    if (!s) {
        snprintf(out, outlen, "null");
        return;
    }
    if (outlen < 3) {
        if (outlen)
            out[0] = '\0';
        return;
    }
    out[json_quote(out, outlen, s)] = '\0';
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

/* A record is built by appending into one buffer: formatting it with snprintf() through per-field
 * temporaries was about 5% of proxyd's CPU per short tunnel (perf).  Each field keeps the bound it
 * had as a temporary (the sizes below), so one hostile field cannot crowd out the others. */
struct rec {
    char *p;
    size_t len, cap;              /* cap leaves room for the closing "}\n" */
    bool over;                    /* something did not fit: the record is replaced (never cut) */
};

static void rec_mem(struct rec *r, const char *s, size_t n)
{
    if (r->over || n > r->cap - r->len) {
        r->over = true;
        return;
    }
    memcpy(r->p + r->len, s, n);
    r->len += n;
}

#define rec_lit(r, lit) rec_mem((r), (lit), sizeof(lit) - 1)

static void rec_int(struct rec *r, long long v)
{
    char tmp[24], *q = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--q = (char)('0' + u % 10u);
        u /= 10u;
    } while (u);
    if (v < 0)
        *--q = '-';
    rec_mem(r, q, (size_t)(tmp + sizeof tmp - q));
}

/* A counter of a close record; negative means not known (an inference request's bytes are not
 * counted per request), which is JSON null, never a -1 that a log consumer would add up. */
static void rec_count(struct rec *r, long long v)
{
    if (v < 0)
        rec_lit(r, "null");
    else
        rec_int(r, v);
}

/* A JSON string of s (or null), as pd_json_str() would write it into a buffer of field_max. */
static void rec_jstr(struct rec *r, const char *s, size_t field_max)
{
    if (!s) {
        rec_lit(r, "null");
        return;
    }
    char tmp[1100];
    size_t lim = field_max < sizeof tmp ? field_max : sizeof tmp;
    size_t o = json_quote(tmp, lim, s);
    rec_mem(r, tmp, o);
}

void pd_log_decision(const struct pd_log_entry *e)
{
    if (!pd_declog_admit(e))
        return;                             /* counted; reported by pd_declog_report_suppressed */
    char line[4096], tbuf[40];
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
    unsigned ms = (unsigned)(ts.tv_nsec / 1000000);
    memcpy(tbuf, sec_str, sec_len);
    tbuf[sec_len] = '.';
    tbuf[sec_len + 1] = (char)('0' + ms / 100u);
    tbuf[sec_len + 2] = (char)('0' + ms / 10u % 10u);
    tbuf[sec_len + 3] = (char)('0' + ms % 10u);
    tbuf[sec_len + 4] = 'Z';
    size_t tlen = sec_len + 5;

    const struct pd_client *w = e->who;
    struct rec r = { .p = line, .cap = sizeof line - 2 };
    rec_lit(&r, "{\"time\":\"");
    rec_mem(&r, tbuf, tlen);
    rec_lit(&r, "\",\"account\":");
    rec_jstr(&r, w && w->user[0] ? w->user : NULL, 140);
    rec_lit(&r, ",\"uid\":");
    rec_int(&r, w && w->uid != (uid_t)-1 ? (long long)w->uid : -1);
    rec_lit(&r, ",\"profile\":");
    rec_jstr(&r, w && w->profile ? w->profile->name : NULL, 300);
    rec_lit(&r, ",\"mode\":\"");
    const char *mode = w ? mode_name(w->mode) : "unknown";
    rec_mem(&r, mode, strlen(mode));
    rec_lit(&r, "\",\"host\":");
    rec_jstr(&r, e->host, 540);
    rec_lit(&r, ",\"port\":");
    rec_int(&r, e->port);
    rec_lit(&r, ",\"address\":");
    rec_jstr(&r, e->address, 140);
    rec_lit(&r, ",\"decision\":");
    rec_jstr(&r, e->decision, 40);
    rec_lit(&r, ",\"reason\":");
    rec_jstr(&r, e->reason, 140);
    rec_lit(&r, ",\"rule\":");
    rec_jstr(&r, e->rule, 1100);
    rec_lit(&r, ",\"binary\":");
    rec_jstr(&r, e->binary, 1100);
    if (e->bytes_up >= 0 || e->bytes_down >= 0 || e->duration_ms >= 0) {
        rec_lit(&r, ",\"bytes_up\":");
        rec_count(&r, e->bytes_up);
        rec_lit(&r, ",\"bytes_down\":");
        rec_count(&r, e->bytes_down);
        rec_lit(&r, ",\"duration_ms\":");
        rec_count(&r, e->duration_ms);
    }
    if (e->extra_json && *e->extra_json) {
        rec_lit(&r, ",");
        rec_mem(&r, e->extra_json, strlen(e->extra_json));
    }
    if (r.over) {
        /* never write a truncated (unparseable) record: drop the extras */
        r = (struct rec){ .p = line, .cap = sizeof line - 2 };
        rec_lit(&r, "{\"time\":\"");
        rec_mem(&r, tbuf, tlen);
        rec_lit(&r, "\",\"decision\":");
        rec_jstr(&r, e->decision, 40);
        rec_lit(&r, ",\"reason\":\"record_too_long\"");
    }
    size_t len = r.len;
    line[len++] = '}';
    line[len] = '\0';
    syslog_queue(line, len);
    line[len++] = '\n';
    file_queue(line, len);
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
