/* tunload: a small epoll HTTP load generator that can open CONNECT tunnels.
 *
 * wrk cannot speak CONNECT, and the proxies we compare (squid, tinyproxy, sandbox-proxyd) are
 * CONNECT proxies, so every row of the proxy bench is measured with this one tool (direct and
 * haproxy too, simply without the CONNECT step).  bench/proxy.sh also runs wrk on the rows wrk can
 * reach, as a cross-check that this tool is not the bottleneck.
 *
 * One thread, one epoll set, non-blocking sockets, TCP_NODELAY, no pipelining.  Each connection
 * is a small state machine:
 *   connect -> [send CONNECT -> read "200"] -> send GET -> read head + Content-Length body -> ...
 * Modes:
 *   ka    keep-alive: C connections, each opens one tunnel and repeats GET on it; requests/s.
 *   new   C workers, each repeats: connect, [CONNECT], GET with "Connection: close", read, close;
 *         completed exchanges/s.
 *   bulk  one connection, [CONNECT], GET of a large file, N times sequentially; MiB/s (median)
 *         timed from the GET to the last body byte (the data phase: mib_s, all), and from
 *         connect() (setup included: mib_s_conn, all_conn), plus the setup time (setup_us).
 *   idle  open C tunnels (in-flight setup capped), one GET through each, then hold them open for
 *         -d seconds after printing "ready"; reports how many stayed open.
 * Output: one line of key=value pairs on stdout (plus "ready" for idle).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { M_KA, M_NEW, M_BULK, M_IDLE };
enum state { S_CONNECTING, S_TUNNEL_REPLY, S_HEAD, S_BODY, S_IDLE, S_CLOSED };

#define HEAD_MAX 8192

struct conn {
    int fd;
    enum state st;
    char head[HEAD_MAX];
    size_t head_len;
    uint64_t body_left;
    uint64_t bytes;               /* body bytes of the current response */
};

static struct {
    enum mode mode;
    struct sockaddr_in server;
    const char *target;           /* host:port for CONNECT, or NULL */
    const char *host;             /* Host: header */
    const char *path;
    int conns;
    double secs, warm;
    int repeat;
    size_t rbuf_size;
} opt = { .mode = M_KA, .conns = 32, .secs = 5, .warm = 1, .repeat = 1, .rbuf_size = 256 * 1024 };

static int ep;
static char *rbuf;
static char connect_req[512], get_ka[512], get_close[512];
static uint64_t n_done, n_err, n_open_idle;
static char first_err[160];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *m)
{
    perror(m);
    exit(2);
}

static void note_err(const char *what)
{
    n_err++;
    if (!first_err[0])
        snprintf(first_err, sizeof first_err, "%s", what);
}

static bool conn_open(struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->head_len = 0;
    c->st = S_CONNECTING;
    if (connect(c->fd, (struct sockaddr *)&opt.server, sizeof opt.server) < 0 && errno != EINPROGRESS) {
        note_err(strerror(errno));
        close(c->fd);
        c->fd = -1;
        c->st = S_CLOSED;
        return false;
    }
    struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl");
    return true;
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->st = S_CLOSED;
}

/* Requests are a few hundred bytes and sent only when the peer owes us nothing, so a short
 * write means something is badly wrong; count it as an error rather than buffering. */
static bool send_all(struct conn *c, const char *s)
{
    size_t n = strlen(s);
    ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
    if (w != (ssize_t)n) {
        note_err(w < 0 ? strerror(errno) : "short write");
        return false;
    }
    return true;
}

static void want_read(struct conn *c)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static bool send_get(struct conn *c)
{
    c->head_len = 0;
    c->bytes = 0;
    c->st = S_HEAD;
    return send_all(c, opt.mode == M_NEW ? get_close : get_ka);
}

/* Parse a response head in c->head; returns bytes of head, 0 if incomplete, -1 on error.  Sets
 * body_left from Content-Length (nginx always sends it for static files). */
static long parse_head(struct conn *c, bool tunnel_reply)
{
    char *end = memmem(c->head, c->head_len, "\r\n\r\n", 4);
    if (!end)
        return c->head_len >= HEAD_MAX ? -1 : 0;
    size_t hl = (size_t)(end - c->head) + 4;
    if (c->head_len < 12 || memcmp(c->head, "HTTP/1.", 7) != 0 || memcmp(c->head + 8, " 200", 4) != 0) {
        char m[64];
        snprintf(m, sizeof m, "status: %.40s", c->head);
        for (char *p = m; *p; p++)
            if (*p == '\r' || *p == '\n') *p = ' ';
        note_err(m);
        return -1;
    }
    c->body_left = 0;
    if (!tunnel_reply) {
        const char *p = c->head;
        bool have_cl = false;
        while (p < end) {
            const char *eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
            if (!eol)
                break;
            if ((size_t)(eol - p) > 15 && strncasecmp(p, "Content-Length:", 15) == 0) {
                c->body_left = strtoull(p + 15, NULL, 10);
                have_cl = true;
            }
            p = eol + 2;
        }
        if (!have_cl) {
            note_err("no Content-Length");
            return -1;
        }
    }
    return (long)hl;
}

static void response_done(struct conn *c);

/* Consume body bytes already read (after the head, or straight from recv). */
static void body_bytes(struct conn *c, size_t n)
{
    if (n > c->body_left) {
        note_err("more bytes than Content-Length");
        conn_close(c);
        return;
    }
    c->body_left -= n;
    c->bytes += n;
    if (c->body_left == 0)
        response_done(c);
}

static void on_event(struct conn *c, uint32_t events);

static double bulk_t0;
static double *bulk_rates;      /* MiB/s from the GET */
static double *bulk_rates_conn; /* MiB/s from connect() */
static double *bulk_setup;      /* connect() to GET sent: TCP connect (+ CONNECT and its 200) */
static int bulk_runs;

static void get_about_to_be_sent(void)
{
    if (opt.mode == M_BULK)
        bulk_setup[bulk_runs] = now() - bulk_t0;
}

static void start_exchange(struct conn *c)
{
    if (opt.target) {
        c->head_len = 0;
        c->st = S_TUNNEL_REPLY;
        if (!send_all(c, connect_req)) {
            conn_close(c);
            return;
        }
    } else {
        get_about_to_be_sent();
        if (!send_get(c)) {
            conn_close(c);
            return;
        }
    }
    want_read(c);
}

static int idle_setup_inflight, idle_started;

static void response_done(struct conn *c)
{
    n_done++;
    switch (opt.mode) {
    case M_KA:
        if (!send_get(c))
            conn_close(c);
        break;
    case M_NEW:
        conn_close(c);
        break;
    case M_BULK: {
        double t = now(), mib = (double)c->bytes / (1024.0 * 1024.0);
        bulk_rates[bulk_runs] = mib / (t - bulk_t0 - bulk_setup[bulk_runs]);
        bulk_rates_conn[bulk_runs] = mib / (t - bulk_t0);
        bulk_runs++;
        conn_close(c);
        break;
    }
    case M_IDLE:
        c->st = S_IDLE;
        n_open_idle++;
        idle_setup_inflight--;
        break;
    }
}

static void on_event(struct conn *c, uint32_t events)
{
    if (c->st == S_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            note_err(strerror(err));
            conn_close(c);
            return;
        }
        start_exchange(c);
        return;
    }
    if (c->st == S_IDLE) {
        /* An idle tunnel must stay silent; anything here is the proxy or origin giving up. */
        ssize_t r = recv(c->fd, rbuf, opt.rbuf_size, 0);
        if (r <= 0) {
            note_err(r == 0 ? "idle tunnel closed by peer" : strerror(errno));
            n_open_idle--;
            conn_close(c);
        }
        return;
    }
    /* Level-triggered: one recv per wakeup keeps the loop fair between connections. */
    ssize_t r;
    if (c->st == S_BODY)
        r = recv(c->fd, rbuf, opt.rbuf_size, 0);
    else
        r = recv(c->fd, c->head + c->head_len, HEAD_MAX - c->head_len, 0);
    if (r < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        note_err(strerror(errno));
        conn_close(c);
        return;
    }
    if (r == 0) {
        note_err(c->st == S_TUNNEL_REPLY ? "EOF before CONNECT reply" : "EOF mid-response");
        conn_close(c);
        return;
    }
    if (c->st == S_BODY) {
        body_bytes(c, (size_t)r);
        return;
    }
    c->head_len += (size_t)r;
    long hl = parse_head(c, c->st == S_TUNNEL_REPLY);
    if (hl < 0) {
        conn_close(c);
        return;
    }
    if (hl == 0)
        return;
    size_t extra = c->head_len - (size_t)hl;
    if (c->st == S_TUNNEL_REPLY) {
        if (extra) {
            note_err("bytes after CONNECT reply");
            conn_close(c);
            return;
        }
        get_about_to_be_sent();
        if (!send_get(c))
            conn_close(c);
        return;
    }
    c->st = S_BODY;
    if (c->body_left == 0 && extra == 0) {
        response_done(c);
        return;
    }
    body_bytes(c, extra);
}

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static void usage(void)
{
    fprintf(stderr,
        "usage: tunload -m ka|new|bulk|idle -s IP:PORT [-x HOST:PORT (CONNECT target)] [-H host]\n"
        "               [-p PATH] [-c CONNS] [-d SECS] [-w WARMUP_SECS] [-n REPEAT]\n");
    exit(2);
}

static void parse_server(const char *s)
{
    char ip[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof ip)
        usage();
    memcpy(ip, s, (size_t)(colon - s));
    ip[colon - s] = 0;
    opt.server.sin_family = AF_INET;
    opt.server.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, ip, &opt.server.sin_addr) != 1)
        usage();
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static struct conn *g_conns;

/* Run the loop until deadline or until done() says so. */
static void loop_until(double deadline, bool (*done)(void))
{
    struct epoll_event evs[256];
    while (!stop_flag && (!done || !done())) {
        double left = deadline - now();
        if (left <= 0)
            break;
        int n = epoll_wait(ep, evs, 256, left > 0.1 ? 100 : (int)(left * 1000) + 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++)
            on_event(evs[i].data.ptr, evs[i].events);
        if (opt.mode == M_NEW) {
            /* Replace every finished (or failed) exchange with a new connection at once. */
            for (int i = 0; i < opt.conns; i++)
                if (g_conns[i].st == S_CLOSED)
                    conn_open(&g_conns[i]);
        }
    }
}

static bool bulk_done(void) { return g_conns[0].st == S_CLOSED; }
static bool idle_setup_done(void) { return idle_started >= opt.conns && idle_setup_inflight <= 0; }

int main(int argc, char **argv)
{
    int ch;
    const char *server = NULL;
    while ((ch = getopt(argc, argv, "m:s:x:H:p:c:d:w:n:b:")) != -1) {
        switch (ch) {
        case 'm':
            if (!strcmp(optarg, "ka")) opt.mode = M_KA;
            else if (!strcmp(optarg, "new")) opt.mode = M_NEW;
            else if (!strcmp(optarg, "bulk")) opt.mode = M_BULK;
            else if (!strcmp(optarg, "idle")) opt.mode = M_IDLE;
            else usage();
            break;
        case 's': server = optarg; break;
        case 'x': opt.target = optarg; break;
        case 'H': opt.host = optarg; break;
        case 'p': opt.path = optarg; break;
        case 'c': opt.conns = atoi(optarg); break;
        case 'd': opt.secs = atof(optarg); break;
        case 'w': opt.warm = atof(optarg); break;
        case 'n': opt.repeat = atoi(optarg); break;
        case 'b': opt.rbuf_size = (size_t)atol(optarg); break;
        default: usage();
        }
    }
    if (!server || opt.conns < 1 || opt.repeat < 1 || opt.rbuf_size < 4096)
        usage();
    parse_server(server);
    if (!opt.path) opt.path = "/";
    if (!opt.host) opt.host = opt.target ? opt.target : server;
    snprintf(connect_req, sizeof connect_req, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n",
             opt.target ? opt.target : "", opt.target ? opt.target : "");
    snprintf(get_ka, sizeof get_ka, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tunload\r\n\r\n",
             opt.path, opt.host);
    snprintf(get_close, sizeof get_close,
             "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tunload\r\nConnection: close\r\n\r\n",
             opt.path, opt.host);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    rbuf = malloc(opt.rbuf_size);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (!rbuf || ep < 0)
        die("init");
    const char *mname[] = { "ka", "new", "bulk", "idle" };

    if (opt.mode == M_BULK) {
        g_conns = calloc(1, sizeof *g_conns);
        bulk_rates = calloc((size_t)opt.repeat, sizeof *bulk_rates);
        bulk_rates_conn = calloc((size_t)opt.repeat, sizeof *bulk_rates_conn);
        bulk_setup = calloc((size_t)opt.repeat, sizeof *bulk_setup);
        if (!bulk_rates || !bulk_rates_conn || !bulk_setup)
            die("calloc");
        uint64_t total = 0;
        for (int i = 0; i < opt.repeat && !stop_flag; i++) {
            bulk_t0 = now();
            conn_open(&g_conns[0]);
            loop_until(bulk_t0 + 600, bulk_done);
            total += g_conns[0].bytes;
            conn_close(&g_conns[0]);
            if (bulk_runs != i + 1)
                break;
        }
        double med = 0, med_conn = 0, setup = 0;
        if (bulk_runs) {
            qsort(bulk_rates, (size_t)bulk_runs, sizeof *bulk_rates, cmp_double);
            med = bulk_rates[bulk_runs / 2];
            qsort(bulk_rates_conn, (size_t)bulk_runs, sizeof *bulk_rates_conn, cmp_double);
            med_conn = bulk_rates_conn[bulk_runs / 2];
            qsort(bulk_setup, (size_t)bulk_runs, sizeof *bulk_setup, cmp_double);
            setup = bulk_setup[bulk_runs / 2];
        }
        printf("mode=bulk runs=%d bytes=%llu mib_s=%.1f min=%.1f max=%.1f mib_s_conn=%.1f "
               "setup_us=%.0f errors=%llu", bulk_runs, (unsigned long long)total, med,
               bulk_runs ? bulk_rates[0] : 0, bulk_runs ? bulk_rates[bulk_runs - 1] : 0, med_conn,
               setup * 1e6, (unsigned long long)n_err);
        /* Every run, sorted, so a caller can pool runs from several rounds. */
        printf(" all=");
        for (int i = 0; i < bulk_runs; i++)
            printf("%s%.1f", i ? "," : "", bulk_rates[i]);
        printf(" all_conn=");
        for (int i = 0; i < bulk_runs; i++)
            printf("%s%.1f", i ? "," : "", bulk_rates_conn[i]);
        printf(" all_setup_us=");
        for (int i = 0; i < bulk_runs; i++)
            printf("%s%.0f", i ? "," : "", bulk_setup[i] * 1e6);
        printf("%s%s\n", first_err[0] ? " first_error=" : "", first_err);
        return n_err || bulk_runs != opt.repeat;
    }

    g_conns = calloc((size_t)opt.conns, sizeof *g_conns);
    if (!g_conns)
        die("calloc");
    for (int i = 0; i < opt.conns; i++) {
        g_conns[i].fd = -1;
        g_conns[i].st = S_CLOSED;
    }

    if (opt.mode == M_IDLE) {
        /* Keep at most 64 setups in flight so no listener backlog overflows. */
        double deadline = now() + 60;
        while (!stop_flag && !idle_setup_done() && now() < deadline) {
            while (idle_started < opt.conns && idle_setup_inflight < 64) {
                if (conn_open(&g_conns[idle_started++]))
                    idle_setup_inflight++;
            }
            struct epoll_event evs[256];
            int n = epoll_wait(ep, evs, 256, 100);
            for (int i = 0; i < n; i++) {
                struct conn *c = evs[i].data.ptr;
                bool was_setup = c->st != S_IDLE;
                on_event(c, evs[i].events);
                if (was_setup && c->st == S_CLOSED)
                    idle_setup_inflight--;
            }
        }
        printf("ready open=%llu\n", (unsigned long long)n_open_idle);
        fflush(stdout);
        uint64_t at_ready = n_open_idle;
        loop_until(now() + opt.secs, NULL);
        printf("mode=idle conns=%d opened=%llu still_open=%llu errors=%llu%s%s\n", opt.conns,
               (unsigned long long)at_ready, (unsigned long long)n_open_idle, (unsigned long long)n_err,
               first_err[0] ? " first_error=" : "", first_err);
        return n_open_idle != (uint64_t)opt.conns;
    }

    for (int i = 0; i < opt.conns; i++)
        conn_open(&g_conns[i]);
    double t0 = now();
    loop_until(t0 + opt.warm, NULL);
    uint64_t d0 = n_done;
    double t1 = now();
    loop_until(t1 + opt.secs, NULL);
    double dt = now() - t1;
    /* total= includes the warm-up: it is what the proxy's CPU time over the whole run paid for.
     * errors= counts the warm-up too, and a run that completed nothing is an error in itself, so
     * a proxy that refuses everything can never show up as a rate. */
    if (n_done == d0)
        note_err("no exchange completed");
    printf("mode=%s conns=%d secs=%.2f done=%llu rate=%.1f total=%llu errors=%llu%s%s\n", mname[opt.mode],
           opt.conns, dt, (unsigned long long)(n_done - d0), (double)(n_done - d0) / dt,
           (unsigned long long)n_done, (unsigned long long)n_err, first_err[0] ? " first_error=" : "",
           first_err);
    return n_err != 0;
}
