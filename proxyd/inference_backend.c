/* One exchange with an inference backend: resolve its host (the admin's name, through proxyd's
 * resolver), connect, TLS verified against the system trust store with the URL's host name (or
 * plain http for a private address, as the config allows), send the request, read the response
 * head (proxyd/http_parse.h) and de-frame the body (Content-Length, chunked, or until close) into
 * inference_stream.c.  A connection that ended its answer cleanly is kept idle for the next
 * request to the same backend URL (a TCP and TLS handshake per request would dominate the added
 * latency); a kept connection that turns out to be closed is replaced once, transparently. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "common/util.h"
#include "proxyd/inference_conn.h"
#include "proxyd/resolver.h"

#define CONNECT_MS 10000
#define READ_CHUNK 16384

static void on_up_io(struct pd_loop *l, int fd, uint32_t events, void *arg)
{
    inf_conn_run(arg);
}

/* ---- idle backend connections ---- */
#define IDLE_MAX 32
#define IDLE_MS 30000

struct idle {
    struct idle *next;
    char *url;                            /* the backend URL it was opened for */
    bool has_owner;                       /* ... and the BackendUser= its owner was checked */
    uid_t owner_uid;                      /*     against (an http:// backend on this host) */
    int fd;
    SSL *ssl;
    uint64_t since;
    char address[64];
};
static struct idle *idle_list;
static size_t n_idle;

static void idle_close(struct idle *i)
{
    for (struct idle **pp = &idle_list; *pp; pp = &(*pp)->next) {
        if (*pp == i) {
            *pp = i->next;
            break;
        }
    }
    n_idle--;
    pd_loop_del(pd->loop, i->fd);
    if (i->ssl)
        SSL_free(i->ssl);
    close(i->fd);
    free(i->url);
    free(i);
}

/* An idle connection has nothing to say: any event (the backend closing it, a stray byte) ends it. */
static void on_idle_io(struct pd_loop *l, int fd, uint32_t events, void *arg)
{
    idle_close(arg);
}

static void idle_put(struct inf_up *u)
{
    while (n_idle >= IDLE_MAX && idle_list) {
        struct idle *oldest = idle_list;
        while (oldest->next)
            oldest = oldest->next;
        idle_close(oldest);
    }
    struct idle *i = ps_xcalloc(1, sizeof *i);
    i->url = ps_xstrdup(u->be->url);
    i->has_owner = u->be->has_owner;
    i->owner_uid = u->be->owner_uid;
    i->fd = u->io.fd;
    i->ssl = u->io.ssl;
    i->since = pd_now_ms();
    snprintf(i->address, sizeof i->address, "%s", u->address);
    pd_loop_del(pd->loop, i->fd);
    if (pd_loop_add(pd->loop, i->fd, EPOLLIN, on_idle_io, i) < 0) {
        if (i->ssl)
            SSL_free(i->ssl);
        close(i->fd);
        free(i->url);
        free(i);
    } else {
        i->next = idle_list;           /* newest first */
        idle_list = i;
        n_idle++;
    }
    u->io.fd = -1;
    u->io.ssl = NULL;
}

/* The newest live idle connection to this URL, moved to u; false when there is none. */
static bool idle_take(struct inf_up *u)
{
    uint64_t now = pd_now_ms();
    for (struct idle *i = idle_list, *next; i; i = next) {
        next = i->next;
        if (now - i->since > IDLE_MS) {
            idle_close(i);
            continue;
        }
        /* the same URL, and the same owner rule: a connection whose owner was accepted under
         * another BackendUser= (before a reload, or in another file) is not reused */
        if (strcmp(i->url, u->be->url) != 0 || i->has_owner != u->be->has_owner ||
            (i->has_owner && i->owner_uid != u->be->owner_uid))
            continue;
        char c;
        ssize_t r = recv(i->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (!(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
            idle_close(i);                 /* closed, or something unexpected to read */
            continue;
        }
        u->io.fd = i->fd;
        u->io.ssl = i->ssl;
        snprintf(u->address, sizeof u->address, "%s", i->address);
        i->ssl = NULL;
        i->fd = -1;
        for (struct idle **pp = &idle_list; *pp; pp = &(*pp)->next)
            if (*pp == i) {
                *pp = i->next;
                break;
            }
        n_idle--;
        pd_loop_del(pd->loop, u->io.fd);
        free(i->url);
        free(i);
        if (pd_loop_add(pd->loop, u->io.fd, EPOLLOUT, on_up_io, u->k) < 0) {
            if (u->io.ssl)
                SSL_free(u->io.ssl);
            close(u->io.fd);
            u->io.fd = -1;
            u->io.ssl = NULL;
            return false;
        }
        u->io.rd_blocked = u->io.wr_blocked = false;
        return true;
    }
    return false;
}

static void fail(struct inf_up *u, int status, const char *reason)
{
    u->fail_reason = reason;
    if (!u->head_sent) {
        /* Nothing of an answer went out yet: a whole error response in the API's shape. */
        char msg[200];
        snprintf(msg, sizeof msg, "the inference backend could not be reached (%s)", reason);
        char *body = inf_error_body(u->k->api, u->k->api == PS_API_ANTHROPIC ? "api_error" : "server_error",
                                    reason, msg);
        inf_conn_respond(u->k, status, NULL, "application/json", body, strlen(body), false);
        free(body);
        inf_log(u->k, "deny", reason, u->model, u->upstream_model, u->be->name, status, NULL);
        u->phase = INF_UP_DONE;
    } else {
        inf_stream_end(u, reason);
    }
}

static void close_fd(struct inf_up *u)
{
    if (u->io.ssl) {
        SSL_free(u->io.ssl);
        u->io.ssl = NULL;
    }
    if (u->io.fd >= 0) {
        pd_loop_del(pd->loop, u->io.fd);
        close(u->io.fd);
        u->io.fd = -1;
    }
}

static void connect_next(struct inf_up *u)
{
    while (u->next_addr < u->n_addrs) {
        struct sockaddr_storage *ss = &u->addrs[u->next_addr++];
        socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        if (ss->ss_family == AF_INET6)
            ((struct sockaddr_in6 *)ss)->sin6_port = htons(u->be->url_port);
        else
            ((struct sockaddr_in *)ss)->sin_port = htons(u->be->url_port);
        int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (struct sockaddr *)ss, len) < 0 && errno != EINPROGRESS) {
            close(fd);
            continue;
        }
        if (pd_loop_add(pd->loop, fd, EPOLLOUT, on_up_io, u->k) < 0) {
            close(fd);
            continue;
        }
        u->io.fd = fd;
        u->io.wr_want = EPOLLOUT;
        u->io.wr_blocked = true;
        char a[INET6_ADDRSTRLEN] = "";
        if (ss->ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ss)->sin6_addr, a, sizeof a);
        else
            inet_ntop(AF_INET, &((struct sockaddr_in *)ss)->sin_addr, a, sizeof a);
        snprintf(u->address, sizeof u->address, "%s", a);
        u->phase = INF_UP_CONNECT;
        return;
    }
    fail(u, 502, "backend_connect_failed");
}

static void resolved(void *arg, int status, const struct sockaddr_storage *addrs, size_t n, unsigned ttl)
{
    struct inf_up *u = arg;
    u->q = NULL;
    if (status != 0 || n == 0) {
        fail(u, 502, "backend_resolve_failed");
    } else {
        u->n_addrs = n < 8 ? n : 8;
        memcpy(u->addrs, addrs, u->n_addrs * sizeof *addrs);
        connect_next(u);
    }
    inf_conn_run(u->k);
}

static void connect_fresh(struct inf_up *u);

struct inf_up *inf_up_start(struct inf_conn *k, const struct ps_backend *be, char *request, size_t len)
{
    struct inf_up *u = ps_xcalloc(1, sizeof *u);
    u->k = k;
    u->be = be;
    u->io.fd = -1;
    u->owner_uid = -1;
    u->usage.input_tokens = u->usage.output_tokens = -1;
    inf_buf_add(&u->out, request, len);
    inf_conn_set_deadline(k, CONNECT_MS);
    if (idle_take(u)) {
        u->reused = true;
        inf_buf_add(&u->retry, request, len);
        u->phase = INF_UP_SEND;
        return u;
    }
    connect_fresh(u);
    return u;
}

static void connect_fresh(struct inf_up *u)
{
    const struct ps_backend *be = u->be;
    u->n_addrs = u->next_addr = 0;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&u->addrs[0];
    struct sockaddr_in *s4 = (struct sockaddr_in *)&u->addrs[0];
    /* localhost is this host (RFC 6761), never a question for DNS: the resolver asks only the
     * configured servers, and whatever one of them answered would get the API key, in clear text
     * for an http:// backend (the only kind of http:// host allowed besides addresses). */
    const char *host = strcmp(be->url_host, "localhost") == 0 ? "127.0.0.1" : be->url_host;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        u->n_addrs = 1;
        connect_next(u);
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        u->n_addrs = 1;
        connect_next(u);
    } else if (pd->resolver) {
        u->phase = INF_UP_RESOLVE;
        u->q = resolver_lookup(pd->resolver, be->url_host, resolved, u);
        if (!u->q && u->phase == INF_UP_RESOLVE)
            fail(u, 502, "backend_resolve_failed");
    } else {
        fail(u, 502, "backend_resolve_failed");
    }
}

/* A kept connection failed before any answer came: the backend had closed it meanwhile.  Send the
 * request again on a new connection (nothing of it can have been processed). */
static bool retry_fresh(struct inf_up *u)
{
    if (!u->reused || u->got_bytes)
        return false;
    close_fd(u);
    u->reused = false;
    inf_buf_free(&u->out);
    inf_buf_add(&u->out, inf_buf_data(&u->retry), inf_buf_used(&u->retry));
    inf_buf_free(&u->retry);
    inf_buf_reset(&u->in);
    u->eof = false;
    inf_conn_set_deadline(u->k, CONNECT_MS);
    connect_fresh(u);
    return true;
}

void inf_up_free(struct inf_up *u)
{
    if (u->owner_timer)
        pd_timer_cancel(pd->loop, u->owner_timer);
    if (u->q)
        resolver_cancel(pd->resolver, u->q);
    if (u->reusable && u->io.fd >= 0 && !inf_buf_used(&u->in))
        idle_put(u);
    close_fd(u);
    inf_buf_free(&u->retry);
    inf_buf_free(&u->out);
    inf_buf_free(&u->in);
    inf_buf_free(&u->body);
    inf_budget_give(inf_daemon_budget(), u->k->who.uid, u->body_reserved);
    inf_sse_free(&u->ev);
    free(u);
}

uint32_t inf_up_events(const struct inf_up *u)
{
    switch (u->phase) {
    case INF_UP_CONNECT:
        return EPOLLOUT;
    case INF_UP_TLS:
    case INF_UP_HEAD:
    case INF_UP_BODY:
        return u->io.rd_blocked ? u->io.rd_want : EPOLLIN;
    case INF_UP_SEND:
        return u->io.wr_blocked ? u->io.wr_want : EPOLLOUT;
    default:
        return 0;
    }
}

void inf_up_timeout(struct inf_up *u)
{
    if (u->phase == INF_UP_DONE)
        return;
    if (u->owner_timer) {
        pd_timer_cancel(pd->loop, u->owner_timer);
        u->owner_timer = NULL;
    }
    /* a backend on this host that never accept()ed the connection: its owner stayed unknown */
    fail(u, 504, u->phase == INF_UP_OWNER ? "backend_owner_unknown"
                 : u->phase < INF_UP_HEAD ? "backend_connect_timeout" : "stream_idle_timeout");
}

static bool connected(struct inf_up *u)
{
    struct pollfd p = { .fd = u->io.fd, .events = POLLOUT };
    if (poll(&p, 1, 0) <= 0)
        return false;                 /* still connecting */
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(u->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
        close_fd(u);
        connect_next(u);
        return true;
    }
    u->io.wr_blocked = false;
    if (!u->be->tls) {
        u->phase = INF_UP_OWNER;
        u->owner_wait_ms = 0;
        return true;
    }
    u->io.ssl = SSL_new(u->k->st->cli);
    if (!u->io.ssl || SSL_set_fd(u->io.ssl, u->io.fd) != 1) {
        ERR_clear_error();
        fail(u, 502, "backend_tls_failed");
        return true;
    }
    SSL_set_connect_state(u->io.ssl);
    struct in6_addr tmp;
    bool literal = inet_pton(AF_INET, u->be->url_host, &tmp) == 1 ||
                   inet_pton(AF_INET6, u->be->url_host, &tmp) == 1;
    /* The name (or address) the certificate must carry: if it cannot be set, the certificate's
     * chain would be checked but not whom it was issued to, so the key is not sent. */
    bool named = literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(u->io.ssl), u->be->url_host) == 1
                         : SSL_set_tlsext_host_name(u->io.ssl, u->be->url_host) == 1 &&
                               SSL_set1_host(u->io.ssl, u->be->url_host) == 1;
    if (!named) {
        ERR_clear_error();
        fail(u, 502, "backend_tls_failed");
        return true;
    }
    u->phase = INF_UP_TLS;
    return true;
}

static void on_owner_timer(struct pd_loop *l, void *arg)
{
    (void)l;
    struct inf_up *u = arg;
    u->owner_timer = NULL;
    inf_conn_run(u->k);
}

/* A plain-http connection is up: send on it only when its other end is held by an account the key
 * may go to (inference_owner.c).  While the backend has not accept()ed it yet, look again after 1,
 * 2, 4 ... 64 ms, until the connect deadline. */
static bool owner_checked(struct inf_up *u)
{
    if (u->owner_timer) {
        /* Woken before the timer: with no interest registered, only by an error or hang-up, which
         * level-triggered epoll would report again and again. */
        struct pollfd p = { .fd = u->io.fd, .events = 0 };
        if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLERR | POLLHUP)))
            return false;
        pd_timer_cancel(pd->loop, u->owner_timer);
        u->owner_timer = NULL;
        close_fd(u);
        fail(u, 502, "backend_connect_failed");
        return true;
    }
    switch (inf_backend_owner(u->io.fd, u->be, &u->owner_uid)) {
    case INF_OWNER_OK:
        u->phase = INF_UP_SEND;
        return true;
    case INF_OWNER_PENDING:
        u->owner_wait_ms = u->owner_wait_ms ? (u->owner_wait_ms < 64 ? u->owner_wait_ms * 2 : 64) : 1;
        u->owner_timer = pd_timer_add(pd->loop, u->owner_wait_ms, on_owner_timer, u);
        return false;
    case INF_OWNER_MISMATCH:
        close_fd(u);                 /* nothing was sent on it */
        fail(u, 502, "backend_owner_mismatch");
        return true;
    default:
        close_fd(u);
        fail(u, 502, "backend_owner_unknown");
        return true;
    }
}

/* De-frame what is buffered.  True on progress. */
static bool body_bytes(struct inf_up *u)
{
    size_t avail = inf_buf_used(&u->in);
    if (!avail)
        return false;
    char *p = (char *)inf_buf_data(&u->in);
    switch (u->body_kind) {
    case HTTP_BODY_LENGTH: {
        size_t n = avail < (uint64_t)u->remaining ? avail : (size_t)u->remaining;
        inf_stream_body(u, p, n);
        inf_buf_consume(&u->in, n);
        u->remaining -= (int64_t)n;
        u->body_done = u->remaining == 0;
        break;
    }
    case HTTP_BODY_CHUNKED: {
        size_t outlen = 0;
        ssize_t used = http_chunked_feed(&u->ck, p, avail, p, &outlen);   /* in place */
        if (used < 0) {
            u->cut = "backend_bad_chunked_body";
            return true;
        }
        inf_stream_body(u, p, outlen);
        inf_buf_consume(&u->in, (size_t)used);
        u->body_done = u->ck.done;
        break;
    }
    case HTTP_BODY_UNTIL_CLOSE:
        inf_stream_body(u, p, avail);
        inf_buf_consume(&u->in, avail);
        break;
    default:
        inf_buf_consume(&u->in, avail);
        u->body_done = true;
        break;
    }
    return true;
}

static bool parse_head(struct inf_up *u)
{
    for (;;) {
        struct http_error err = { 0 };
        enum http_result r = http_parse_response(inf_buf_data(&u->in), inf_buf_used(&u->in), &u->resp, &err);
        if (r == HTTP_INCOMPLETE) {
            if (u->eof && !retry_fresh(u))
                fail(u, 502, "backend_bad_response");
            return u->eof;
        }
        if (r == HTTP_ERROR) {
            fail(u, 502, "backend_bad_response");
            return true;
        }
        if (u->resp.status >= 100 && u->resp.status < 200) {     /* 100 Continue and friends */
            inf_buf_consume(&u->in, u->resp.head_len);
            continue;
        }
        u->backend_close = u->resp.f.conn_close;
        inf_buf_free(&u->retry);
        u->body_kind = http_response_body(&u->resp, "POST", 4);
        u->remaining = u->resp.f.content_length;
        if (u->body_kind == HTTP_BODY_CHUNKED)
            http_chunked_init(&u->ck);
        inf_stream_head(u);
        inf_buf_consume(&u->in, u->resp.head_len);
        memset(&u->resp, 0, sizeof u->resp);
        u->phase = INF_UP_BODY;
        u->body_done = u->body_kind == HTTP_BODY_NONE ||
                       (u->body_kind == HTTP_BODY_LENGTH && u->remaining == 0);
        return true;
    }
}

bool inf_up_run(struct inf_up *u)
{
    bool progress = false;
    for (int guard = 0; guard < 256 && u->phase != INF_UP_DONE; guard++) {
        bool step = false;
        switch (u->phase) {
        case INF_UP_RESOLVE:
            return progress;
        case INF_UP_CONNECT:
            step = connected(u);
            break;
        case INF_UP_OWNER:
            step = owner_checked(u);
            break;
        case INF_UP_TLS: {
            int r = inf_io_handshake(&u->io);
            if (r < 0) {
                long v = SSL_get_verify_result(u->io.ssl);
                fail(u, 502, v != X509_V_OK ? "backend_certificate_invalid" : "backend_tls_failed");
                step = true;
            } else if (r == 1) {
                u->phase = INF_UP_SEND;
                step = true;
            }
            break;
        }
        case INF_UP_SEND:
            if (inf_io_flush(&u->io, &u->out) < 0) {
                if (!retry_fresh(u))
                    fail(u, 502, "backend_write_failed");
                step = true;
            } else if (!inf_buf_used(&u->out)) {
                inf_buf_free(&u->out);       /* wipe the request that carried the key */
                u->phase = INF_UP_HEAD;
                inf_conn_set_deadline(u->k, u->k->who.conf->cfg->global.stream_idle_timeout_ms);
                step = true;
            }
            break;
        case INF_UP_HEAD:
        case INF_UP_BODY: {
            /* Buffered bytes first, then the socket, unless the client is slow. */
            if (u->phase == INF_UP_HEAD)
                step = parse_head(u);
            else
                step = body_bytes(u);
            if (u->phase == INF_UP_DONE)
                break;
            if (u->cut) {
                inf_stream_end(u, u->cut);
                step = true;
                break;
            }
            if (u->phase == INF_UP_BODY && u->body_done) {
                inf_stream_end(u, NULL);
                step = true;
                break;
            }
            if (u->eof) {
                if (u->phase == INF_UP_BODY) {
                    inf_stream_end(u, u->body_kind == HTTP_BODY_UNTIL_CLOSE ? NULL : "backend_closed_early");
                    step = true;
                } else if (!step) {
                    fail(u, 502, "backend_bad_response");
                    step = true;
                }
                break;
            }
            if (step || inf_conn_backpressure(u->k))
                break;
            char *p = inf_buf_space(&u->in, READ_CHUNK);
            ssize_t n = inf_io_read(&u->io, p, READ_CHUNK);
            if (n == INF_IO_AGAIN)
                break;
            if (n <= 0) {
                u->eof = true;
            } else {
                u->got_bytes = true;
                inf_buf_commit(&u->in, (size_t)n);
                inf_conn_set_deadline(u->k, u->k->who.conf->cfg->global.stream_idle_timeout_ms);
            }
            step = true;
            break;
        }
        default:
            return progress;
        }
        if (!step)
            break;
        progress = true;
    }
    return progress;
}
