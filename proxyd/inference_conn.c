/* One intercepted inference.local connection: the TLS session with the client, HTTP/1.1 request
 * heads and bodies (proxyd/http_parse.h, strict), keep-alive, timeouts, and the one driver that
 * moves bytes both ways.  What a complete request means is inference_request.c's business. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <syslog.h>
#include <unistd.h>
#include <openssl/err.h>
#include "common/policy.h"
#include "common/util.h"
#include "proxyd/inference_api.h"
#include "proxyd/inference_conn.h"

#define HANDSHAKE_MS 10000
#define FIRST_HEAD_MS 30000
#define KEEPALIVE_MS 60000
#define BODY_IDLE_MS 30000
/* However it trickles in (one byte per BODY_IDLE_MS would do otherwise), a body is complete
 * [Inference] RequestBodyTimeout= after its head or refused (default 5 min: 10 MiB at 35 KB/s). */
#define CLOSING_MS 5000
#define OUT_HIGH 1048576u             /* stop reading the backend while this much is queued */
/* Stop taking pipelined requests while this much of the answers is unread: requests answered here
 * (GET /v1/models, an unknown model) would otherwise queue answers without bound for a client that
 * sends and never reads, and one account could exhaust the daemon's memory. */
#define OUT_PIPELINE_MAX 65536u

static void on_io(struct pd_loop *l, int fd, uint32_t events, void *arg)
{
    struct inf_conn *k = arg;
    if (events & (EPOLLERR | EPOLLHUP))
        k->dead = true;               /* the client is gone: nothing more can reach it */
    inf_conn_run(k);
}

static void on_timer(struct pd_loop *l, void *arg)
{
    struct inf_conn *k = arg;
    k->timer = NULL;
    k->timer_at = 0;
    if (pd_now_ms() >= k->deadline_ms) {
        switch (k->phase) {
        case INF_PH_UPSTREAM:
            if (k->up)
                inf_up_timeout(k->up);
            break;
        case INF_PH_BODY:
            inf_conn_respond(k, 408, NULL, "application/json",
                             "{\"error\":\"request_timeout\"}", 27, true);
            inf_log(k, "deny", "request_body_timeout", NULL, NULL, NULL, 408, NULL);
            k->deadline_ms = pd_now_ms() + CLOSING_MS;
            break;
        default:
            k->dead = true;           /* idle keep-alive, handshake or close: just go */
            break;
        }
    }
    inf_conn_run(k);
}

void inf_conn_set_deadline(struct inf_conn *k, uint64_t ms_from_now)
{
    k->deadline_ms = pd_now_ms() + ms_from_now;
}

/* One timer per connection at the deadline; moving the deadline later costs nothing (the timer
 * fires early and re-arms), earlier re-arms it. */
static void arm_timer(struct inf_conn *k)
{
    if (k->timer && k->timer_at <= k->deadline_ms)
        return;
    if (k->timer)
        pd_timer_cancel(pd->loop, k->timer);
    uint64_t now = pd_now_ms();
    k->timer_at = k->deadline_ms;
    k->timer = pd_timer_add(pd->loop, k->deadline_ms > now ? k->deadline_ms - now : 0, on_timer, k);
}

static const char *status_text(int s)
{
    switch (s) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return s < 300 ? "OK" : s < 500 ? "Client Error" : "Server Error";
    }
}

void inf_conn_respond(struct inf_conn *k, int status, const char *extra_headers, const char *ctype,
                      const char *body, size_t len, bool close)
{
    if (close)
        k->close_after = true;
    inf_buf_printf(&k->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                   status, status_text(status), ctype, len, extra_headers ? extra_headers : "",
                   k->close_after ? "Connection: close\r\n" : "");
    inf_buf_add(&k->out, body, len);
    /* Refused before the request was complete: the rest of it is never read. */
    if (close && (k->phase == INF_PH_BODY || k->phase == INF_PH_HEAD)) {
        k->phase = INF_PH_CLOSING;
        inf_conn_set_deadline(k, CLOSING_MS);
    }
}

/* Give back the request body's memory and its budget; a large buffer is freed, not kept for the
 * next request, so that what the budget counts is what is held. */
static void release_body(struct inf_conn *k)
{
    if (k->body.cap > 65536)
        inf_buf_free(&k->body);
    else
        inf_buf_reset(&k->body);
    inf_budget_give(inf_daemon_budget(), k->who.uid, k->body_reserved);
    k->body_reserved = 0;
}

/* out has drained: a held answer's memory and budget go back (a client that does not read keeps
 * both, counted, for as long as it keeps the connection) */
static void release_out(struct inf_conn *k)
{
    if (inf_buf_used(&k->out))
        return;
    if (k->out.cap > 65536)
        inf_buf_free(&k->out);
    inf_budget_give(inf_daemon_budget(), k->who.uid, k->out_reserved);
    k->out_reserved = 0;
}

void inf_conn_request_done(struct inf_conn *k)
{
    release_body(k);
    k->ep = INF_EP_NONE;
    k->hdrs_len = 0;
    k->anthropic_version[0] = 0;
    if (k->close_after) {
        k->phase = INF_PH_CLOSING;
        inf_conn_set_deadline(k, CLOSING_MS);
    } else {
        k->phase = INF_PH_HEAD;
        inf_conn_set_deadline(k, KEEPALIVE_MS);
    }
}

/* The path is not one of the API's: this is not an API client (or it is probing); answer like a
 * policy denial (DESIGN.md §5.3) and hang up. */
static void deny_path(struct inf_conn *k)
{
    static const char body[] = "{\"error\":\"policy_denied\",\"reason\":\"path_not_allowed\","
                               "\"message\":\"inference.local serves only the inference API paths\"}";
    inf_conn_respond(k, 403, "X-Sandbox-Deny: path_not_allowed\r\n", "application/json", body,
                     sizeof body - 1, true);
    inf_log(k, "deny", "path_not_allowed", NULL, NULL, NULL, 403, NULL);
}

static void bad_request(struct inf_conn *k, int status, const char *reason)
{
    char body[256];
    int n = snprintf(body, sizeof body, "{\"error\":\"bad_request\",\"reason\":\"%s\"}", reason);
    inf_conn_respond(k, status, NULL, "application/json", body, (size_t)n, true);
    inf_log(k, "deny", reason, NULL, NULL, NULL, status, NULL);
}

/* Reserve n more bytes of request body from the budget, or refuse the request (429: this account
 * holds its share; 503: the daemon's is spent) and close. */
static bool reserve_body(struct inf_conn *k, uint64_t n)
{
    uint64_t max = k->who.conf->cfg->global.max_request_size;
    enum inf_budget_err e = inf_budget_take(inf_daemon_budget(), k->who.uid, n, max);
    if (e == INF_BUDGET_OK) {
        k->body_reserved += n;
        return true;
    }
    const char *reason = e == INF_BUDGET_ACCOUNT_FULL ? "request_bodies_account_limit"
                                                      : "request_bodies_daemon_limit";
    int status = e == INF_BUDGET_ACCOUNT_FULL ? 429 : 503;
    char body[256];
    int len = snprintf(body, sizeof body, "{\"error\":\"overloaded\",\"reason\":\"%s\","
                       "\"message\":\"too many request bodies in transit; retry later\"}", reason);
    inf_conn_respond(k, status, "Retry-After: 5\r\n", "application/json", body, (size_t)len, true);
    inf_log(k, "deny", reason, NULL, NULL, NULL, status, NULL);
    return false;
}

/* The body's idle timeout, but never past its total one. */
static void body_deadline(struct inf_conn *k)
{
    uint64_t now = pd_now_ms(), left = k->body_deadline_ms > now ? k->body_deadline_ms - now : 0;
    inf_conn_set_deadline(k, left < BODY_IDLE_MS ? left : BODY_IDLE_MS);
}

/* Keep what the backend may see of the head (spans die when the head leaves the buffer). */
static bool keep_headers(struct inf_conn *k)
{
    return inf_client_headers(&k->req.f, k->hdrs, sizeof k->hdrs, &k->hdrs_len, k->anthropic_version,
                              sizeof k->anthropic_version) == 0;
}

static void begin_request(struct inf_conn *k)
{
    k->started_ms = pd_now_ms();
    k->ep = k->req.form == HTTP_FORM_ORIGIN
                ? inf_endpoint_of(k->req.method.p, k->req.method.n, k->req.target.p, k->req.target.n, &k->api)
                : INF_EP_NONE;
    if (k->ep == INF_EP_NONE) {
        deny_path(k);
        return;
    }
    if (k->req.f.conn_close)
        k->close_after = true;
    if (!keep_headers(k)) {
        bad_request(k, 400, "bad_header");
        return;
    }
    /* The rate limit at the head, before any of the body is read or held. */
    if (k->ep != INF_EP_MODELS && !inf_request_admit(k))
        return;
    uint64_t max = k->who.conf->cfg->global.max_request_size;
    switch (http_request_body(&k->req)) {
    case HTTP_BODY_LENGTH:
        if ((uint64_t)k->req.f.content_length > max) {
            bad_request(k, 413, "request_too_large");
            return;
        }
        if (!reserve_body(k, (uint64_t)k->req.f.content_length))
            return;
        k->body_need = k->req.f.content_length;
        break;
    case HTTP_BODY_CHUNKED:
        k->body_need = -1;
        http_chunked_init(&k->ck);
        break;
    default:
        k->body_need = 0;
        break;
    }
    if (k->req.f.expect_continue && k->body_need != 0 && k->req.minor >= 1)   /* no 1xx to HTTP/1.0 */
        inf_buf_add(&k->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    inf_buf_consume(&k->in, k->req.head_len);
    memset(&k->req, 0, sizeof k->req);
    k->phase = INF_PH_BODY;
    k->body_deadline_ms = pd_now_ms() + k->who.conf->cfg->global.request_body_timeout_ms;
    body_deadline(k);
}

/* Move body bytes from `in` to `body`; true when the body is complete. */
static bool take_body(struct inf_conn *k)
{
    uint64_t max = k->who.conf->cfg->global.max_request_size;
    size_t avail = inf_buf_used(&k->in);
    if (k->body_need >= 0) {
        size_t n = avail < (uint64_t)k->body_need ? avail : (size_t)k->body_need;
        inf_buf_add(&k->body, inf_buf_data(&k->in), n);
        inf_buf_consume(&k->in, n);
        k->body_need -= (int64_t)n;
        return k->body_need == 0;
    }
    if (!avail)
        return false;
    size_t outlen = 0;
    char *dst = inf_buf_space(&k->body, avail);
    ssize_t used = http_chunked_feed(&k->ck, inf_buf_data(&k->in), avail, dst, &outlen);
    if (used < 0) {
        bad_request(k, 400, k->ck.error ? k->ck.error : "bad_chunked_body");
        return false;
    }
    inf_buf_commit(&k->body, outlen);
    inf_buf_consume(&k->in, (size_t)used);
    if (inf_buf_used(&k->body) > max) {
        bad_request(k, 413, "request_too_large");
        return false;
    }
    /* reserved as decoded (framing and a pipelined request are not body), once decoded: what
     * was decoded beyond the budget is at most one read, and is refused with the request */
    uint64_t held = inf_buf_used(&k->body);
    if (held > k->body_reserved && !reserve_body(k, held - k->body_reserved))
        return false;
    return k->ck.done;
}

/* Parse and act on whatever complete input there is.  True on progress. */
static bool process_input(struct inf_conn *k)
{
    bool progress = false;
    for (;;) {
        if (k->phase == INF_PH_HEAD) {
            if (!inf_buf_used(&k->in) || inf_buf_used(&k->out) > OUT_PIPELINE_MAX)
                return progress;
            struct http_error err = { 0 };
            enum http_result r = http_parse_request(inf_buf_data(&k->in), inf_buf_used(&k->in), &k->req, &err);
            if (r == HTTP_INCOMPLETE)
                return progress;
            if (r == HTTP_ERROR) {
                bad_request(k, err.status ? err.status : 400, err.reason ? err.reason : "bad_request");
                return true;
            }
            progress = true;
            begin_request(k);
            continue;
        }
        if (k->phase == INF_PH_BODY) {
            if (!take_body(k))
                return progress;
            progress = true;
            k->phase = INF_PH_UPSTREAM;
            inf_request_handle(k);
            if (!k->up)
                inf_conn_request_done(k);
            else if (k->body.cap > 65536)
                inf_buf_free(&k->body);   /* the backend request holds its copy; the budget stays */
            continue;
        }
        return progress;
    }
}

static bool want_client_input(const struct inf_conn *k)
{
    if (k->phase != INF_PH_HEAD && k->phase != INF_PH_BODY)
        return false;
    if (k->phase == INF_PH_HEAD && inf_buf_used(&k->out) > OUT_PIPELINE_MAX)
        return false;                /* the client reads its answers first */
    /* Bounded: a head, or the body still missing plus one read. */
    uint64_t cap = HTTP_MAX_HEAD + 16384;
    return inf_buf_used(&k->in) < cap;
}

static bool client_io(struct inf_conn *k)
{
    bool progress = false;
    if (k->phase == INF_PH_HANDSHAKE) {
        int r = inf_io_handshake(&k->c);
        if (r < 0) {
            k->dead = true;
            inf_log(k, "deny", "client_tls_handshake_failed", NULL, NULL, NULL, 0, NULL);
            return false;
        }
        if (r == 0)
            return false;
        k->phase = INF_PH_HEAD;
        inf_conn_set_deadline(k, FIRST_HEAD_MS);
        progress = true;
    }
    while (want_client_input(k)) {
        char *p = inf_buf_space(&k->in, 16384);
        ssize_t n = inf_io_read(&k->c, p, 16384);
        if (n == INF_IO_AGAIN)
            break;
        if (n <= 0) {                /* EOF or error: nothing more will come */
            k->dead = true;
            return true;
        }
        inf_buf_commit(&k->in, (size_t)n);
        k->bytes_up += n;
        progress = true;
        if (k->phase == INF_PH_BODY)
            body_deadline(k);
        if (k->phase == INF_PH_HEAD && inf_buf_used(&k->in) > 0)
            break;                   /* parse before reading more */
    }
    progress |= process_input(k);
    return progress;
}

static uint32_t client_events(const struct inf_conn *k)
{
    uint32_t ev = 0;
    if (k->linger)
        return EPOLLIN;
    if (k->phase == INF_PH_HANDSHAKE)
        ev |= k->c.rd_want ? k->c.rd_want : EPOLLIN;
    else if (want_client_input(k))
        ev |= k->c.rd_blocked ? k->c.rd_want : EPOLLIN;
    if (inf_buf_used(&k->out))
        ev |= k->c.wr_blocked ? k->c.wr_want : EPOLLOUT;
    return ev;
}

/* What the connection holds of its account: the conf reference and its slot of the cap. */
static void release_who(struct inf_conn *k)
{
    if (k->who.counted)
        pd_account_release(k->who.uid);
    k->who.counted = false;
    pd_conf_unref(k->who.conf);
}

static void conn_free(struct inf_conn *k)
{
    inf_log_close(k);
    if (k->up)
        inf_up_free(k->up);
    if (k->timer)
        pd_timer_cancel(pd->loop, k->timer);
    pd_loop_del(pd->loop, k->c.fd);
    if (k->c.ssl)
        SSL_free(k->c.ssl);
    close(k->c.fd);
    inf_buf_free(&k->in);
    inf_buf_free(&k->out);
    release_body(k);
    inf_buf_free(&k->body);
    release_out(k);
    inf_state_unref(k->st);
    release_who(k);
    free(k);
}

/* Close after a final answer without destroying it: closing a socket with unread input (the
 * rest of a refused body) sends a reset that can discard the answer at the client before it is
 * read.  So send close_notify, shut the write side, and drain what the client still sends for a
 * short, bounded while (as nginx's lingering close does). */
#define LINGER_MS 2000
#define LINGER_MAX (1u << 20)
static bool linger(struct inf_conn *k)
{
    if (!k->linger) {
        SSL_shutdown(k->c.ssl);
        ERR_clear_error();
        shutdown(k->c.fd, SHUT_WR);
        k->linger = true;
        inf_conn_set_deadline(k, LINGER_MS);
    }
    char sink[16384];
    for (;;) {
        ssize_t n = recv(k->c.fd, sink, sizeof sink, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return false;
        if (n <= 0 || (k->lingered += (size_t)n) > LINGER_MAX) {
            k->dead = true;
            return true;
        }
    }
}

void inf_conn_run(struct inf_conn *k)
{
    for (int rounds = 0; rounds < 64 && !k->dead; rounds++) {
        bool progress = client_io(k);
        if (k->up) {
            progress |= inf_up_run(k->up);
            if (k->up->phase == INF_UP_DONE) {
                inf_up_free(k->up);
                k->up = NULL;
                inf_conn_request_done(k);
                progress = true;
            }
        }
        if (inf_buf_used(&k->out)) {
            size_t before = inf_buf_used(&k->out);
            if (inf_io_flush(&k->c, &k->out) < 0) {
                k->dead = true;
                break;
            }
            k->bytes_down += (int64_t)(before - inf_buf_used(&k->out));
            progress |= before != inf_buf_used(&k->out);
            release_out(k);
        }
        if (k->phase == INF_PH_CLOSING && !inf_buf_used(&k->out))
            progress |= linger(k);
        if (!progress)
            break;
    }
    if (k->dead) {
        conn_free(k);
        return;
    }
    pd_loop_mod(pd->loop, k->c.fd, client_events(k));
    if (k->up) {
        uint32_t ev = inf_buf_used(&k->out) > OUT_HIGH ? (inf_up_events(k->up) & ~(uint32_t)EPOLLIN)
                                                       : inf_up_events(k->up);
        if (k->up->io.fd >= 0)
            pd_loop_mod(pd->loop, k->up->io.fd, ev);
    }
    arm_timer(k);
}

bool inf_conn_backpressure(const struct inf_conn *k)
{
    return inf_buf_used(&k->out) > OUT_HIGH;
}

/* ---- entry points ---- */

static struct inf_daemon *daemon_state(void)
{
    if (!pd->inference) {
        struct inf_daemon *d = ps_xcalloc(1, sizeof *d);
        d->rate = inf_rate_new();
        d->budget = inf_budget_new();
        pd->inference = d;
    }
    return pd->inference;
}

int pd_inference_reload(struct pd_conf *conf, const struct pd_secrets *secrets)
{
    struct inf_daemon *d = daemon_state();
    char err[512] = "";
    struct inf_state *s = inf_state_load(conf->cfg, secrets, err, sizeof err);
    if (!s) {
        snprintf(d->last_error, sizeof d->last_error, "%s", err);
        syslog(LOG_WARNING, "inference.local: %s; %s", err,
               d->cur ? "keeping the previous CA and keys" : "interception unavailable");
        return -1;
    }
    inf_state_unref(d->cur);
    d->cur = s;
    d->last_error[0] = 0;
    return 0;
}

void pd_inference_shutdown(void)
{
    struct inf_daemon *d = pd->inference;
    if (!d)
        return;
    inf_state_unref(d->cur);
    inf_rate_free(d->rate);
    inf_budget_free(d->budget);
    free(d);
    pd->inference = NULL;
}

struct inf_rate *inf_daemon_rate(void)
{
    return daemon_state()->rate;
}

struct inf_budget *inf_daemon_budget(void)
{
    return daemon_state()->budget;
}

void pd_inference_accept(int fd, const struct pd_client *who)
{
    struct inf_daemon *d = daemon_state();
    struct inf_conn *k = ps_xcalloc(1, sizeof *k);
    k->who = *who;
    k->who.mode = PD_MODE_INFERENCE;
    k->c.fd = fd;
    k->up = NULL;
    if (!d->cur && pd->conf)
        pd_inference_reload(pd->conf, NULL); /* e.g. the CA was made after start-up */
    const char *why = NULL;
    if (!ps_profile_uses_inference(k->who.profile))
        why = "profile_without_models";
    else if (!d->cur)
        why = "inference_unavailable";
    if (why) {
        inf_log(k, "deny", why, NULL, NULL, NULL, 0, NULL);
        close(fd);
        release_who(k);
        free(k);
        return;
    }
    k->accepted_ms = pd_now_ms();
    k->st = inf_state_ref(d->cur);
    inf_state_refresh_leaf(k->st);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    k->c.ssl = SSL_new(k->st->srv);
    if (!k->c.ssl || SSL_set_fd(k->c.ssl, fd) != 1 ||
        pd_loop_add(pd->loop, fd, EPOLLIN, on_io, k) < 0) {
        ERR_clear_error();
        if (k->c.ssl)
            SSL_free(k->c.ssl);
        close(fd);
        inf_state_unref(k->st);
        release_who(k);
        free(k);
        return;
    }
    SSL_set_accept_state(k->c.ssl);
    k->phase = INF_PH_HANDSHAKE;
    inf_conn_set_deadline(k, HANDSHAKE_MS);
    inf_conn_run(k);
}
