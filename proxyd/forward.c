/* Absolute-form requests (GET http://host/...): one upstream connection per request, the client
 * connection kept alive across requests.  proxyd frames both bodies itself (Content-Length or
 * chunked, scanned with the strict decoder), so a request can never run into the next one, and
 * it rewrites the response head: hop-by-hop fields removed, its own Connection field added. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "proxyd/core.h"
#include "common/util.h"

static void append(struct pd_buf *b, const char *p, size_t n)
{
    if (n == 0)
        return;                         /* b->p may be NULL (an idle buffer is freed) */
    pd_buf_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void appends(struct pd_buf *b, const char *s)
{
    append(b, s, strlen(s));
}

void pd_forward_start(struct pd_conn *c)
{
    c->st = CS_FWD;
    c->resp_head_done = c->resp_done = c->dechunk = false;
    c->resp_scanned = 0;
    c->up.eof = c->down.eof = c->up.reset = c->down.reset = false;
    http_chunked_init(&c->resp_ch);
    /* Every wait of this state (the rest of the request body, the origin's answer, the client
     * reading it) has a limit; it starts again whenever a byte moves (pd_forward_io). */
    pd_conn_timer(c, PD_IDLE_TIMEOUT_MS);
    pd_forward_io(c);
}

/* Move request body bytes from c->in to c->uout, exactly as framed. */
static int move_request_body(struct pd_conn *c)
{
    while (!c->req_done && c->in.len > c->in.off) {
        const char *p = c->in.p + c->in.off;
        size_t avail = c->in.len - c->in.off, take;
        if (c->req_body == HTTP_BODY_LENGTH) {
            take = avail < (uint64_t)c->req_left ? avail : (size_t)c->req_left;
            c->req_left -= (int64_t)take;
            if (c->req_left == 0)
                c->req_done = true;
        } else {
            size_t ol;
            ssize_t k = http_chunked_feed(&c->req_ch, p, avail, NULL, &ol);
            if (k < 0)
                return -1;
            take = (size_t)k;
            if (c->req_ch.done)
                c->req_done = true;
        }
        append(&c->uout, p, take);
        c->bytes_up += (int64_t)take;
        c->in.off += take;
    }
    if (c->in.off == c->in.len)
        c->in.off = c->in.len = 0;
    return 0;
}

/* Queue the status line and the end-to-end fields of a response head (the framing and connection
 * fields are proxyd's own: take_response_head). */
static void put_head_fields(struct pd_conn *c, const struct http_response *r)
{
    char line[64];
    snprintf(line, sizeof line, "HTTP/1.1 %03d ", r->status);
    appends(&c->out, line);
    append(&c->out, r->reason.p ? r->reason.p : "", r->reason.n);
    appends(&c->out, "\r\n");
    for (size_t i = 0; i < r->f.n_headers; i++) {
        const struct http_header *h = &r->f.headers[i];
        if (http_span_eq(h->name, "content-length") || http_is_hop_by_hop(&r->f, h->name))
            continue;
        append(&c->out, h->name.p, h->name.n);
        appends(&c->out, ": ");
        append(&c->out, h->value.p, h->value.n);
        appends(&c->out, "\r\n");
    }
}

/* Rewrite and queue a response head; 1xx heads are passed on (to HTTP/1.1 clients) and parsing
 * goes on.  As for the request, the framing fields are written by proxyd from what it parsed,
 * never copied: an origin naming Content-Length in its Connection field must not leave the client
 * without a length. */
static int take_response_head(struct pd_conn *c)
{
    if (c->uin.len == c->uin.off || !pd_head_has_new_lf(&c->uin, &c->resp_scanned))
        return 0;
    struct http_response *r = ps_xmalloc(sizeof(*r));
    struct http_error err;
    for (;;) {
        enum http_result res = http_parse_response(c->uin.p + c->uin.off, c->uin.len - c->uin.off, r, &err);
        if (res == HTTP_INCOMPLETE) {
            free(r);
            return (c->uin.len - c->uin.off >= HTTP_MAX_HEAD) ? -1 : 0;
        }
        if (res == HTTP_ERROR || r->status == 101) {
            free(r);
            return -1;
        }
        /* RFC 9110 §15.2: no 1xx to an HTTP/1.0 client, which cannot tell it from the answer (its
         * Expect was not passed on; an origin may still send 100, or 103 Early Hints) */
        bool shown = r->status >= 200 || !c->client_http10;
        if (shown)
            put_head_fields(c, r);
        c->uin.off += r->head_len;
        c->resp_scanned = 0;
        if (r->status < 200) {
            if (shown)
                appends(&c->out, "\r\n");
            if (c->uin.len == c->uin.off)
                break;
            continue;
        }
        c->resp_body = http_response_body(r, c->method, strlen(c->method));
        c->resp_left = r->f.content_length > 0 ? r->f.content_length : 0;
        if (c->resp_body == HTTP_BODY_CHUNKED && c->client_http10) {
            /* HTTP/1.0 has no chunked coding: the client gets the decoded body, ended by close */
            c->dechunk = true;
            c->keep_alive = false;
        } else if (c->resp_body == HTTP_BODY_CHUNKED) {
            appends(&c->out, "Transfer-Encoding: chunked\r\n");
        } else if (r->f.content_length >= 0 && r->status != 204) {
            /* the length frames the body, or (HEAD, 304) tells the size of the one not sent */
            char cl[48];
            snprintf(cl, sizeof cl, "Content-Length: %lld\r\n", (long long)r->f.content_length);
            appends(&c->out, cl);
        }
        if (c->resp_body == HTTP_BODY_UNTIL_CLOSE)
            c->keep_alive = false;
        if (!c->req_done)
            c->keep_alive = false;      /* an early answer: the rest of the request ends the connection */
        appends(&c->out, c->keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
        c->resp_head_done = true;
        free(r);
        return 1;
    }
    free(r);
    return 0;
}

/* Move response body bytes from c->uin to c->out; true once the response is complete. */
static int move_response_body(struct pd_conn *c, bool *complete)
{
    *complete = false;
    if (c->resp_body == HTTP_BODY_NONE) {
        *complete = true;
        return 0;
    }
    while (c->uin.len > c->uin.off) {
        const char *p = c->uin.p + c->uin.off;
        size_t avail = c->uin.len - c->uin.off, take = avail;
        if (c->resp_body == HTTP_BODY_LENGTH) {
            if ((uint64_t)c->resp_left < avail)
                take = (size_t)c->resp_left;
            c->resp_left -= (int64_t)take;
            if (c->resp_left == 0)
                *complete = true;
        } else if (c->resp_body == HTTP_BODY_CHUNKED) {
            size_t ol;
            /* decoding writes the data in place, never ahead of the input being read */
            char *dec = c->dechunk ? c->uin.p + c->uin.off : NULL;
            ssize_t k = http_chunked_feed(&c->resp_ch, p, avail, dec, &ol);
            if (k < 0)
                return -1;
            take = (size_t)k;
            if (c->resp_ch.done)
                *complete = true;
            if (dec) {
                append(&c->out, dec, ol);
                c->bytes_down += (int64_t)ol;
                c->uin.off += take;
                if (*complete)
                    break;
                continue;
            }
        }
        append(&c->out, p, take);
        c->bytes_down += (int64_t)take;
        c->uin.off += take;
        if (*complete)
            break;
    }
    if (c->uin.off == c->uin.len)
        c->uin.off = c->uin.len = 0;
    if (c->down.eof && !*complete) {
        /* only the origin's FIN ends a body that runs until close: a reset cut it short */
        if (c->resp_body == HTTP_BODY_UNTIL_CLOSE && !c->down.reset)
            *complete = true;
        else
            return -1;                          /* cut short: the client must not wait */
    }
    return 0;
}

/* The origin's side failed, or nothing moved for too long.  A client reading a body until the
 * close (or one decoded for HTTP/1.0, which also ends by close) cannot tell a FIN now from the end
 * of the body; so once a response head has gone out, the client gets a reset instead.  A body
 * framed by its length or by chunks would show the cut anyway: it gets the same, for one rule. */
void pd_forward_cut(struct pd_conn *c, const char *reason)
{
    if (c->resp_head_done)
        pd_conn_abort(c, reason);
    else
        pd_conn_free(c);                /* no answer begun (at most 1xx): a close shows that */
}

/* The response is complete: close the upstream, log, and wait for the next request. */
static void finish_request(struct pd_conn *c)
{
    pd_conn_log(c, "close", "closed", c->rule, true);
    c->decision = NULL;
    pd_conn_drop_upstream(c);
    pd_buf_free(&c->uin);
    pd_buf_free(&c->uout);
    if (!c->keep_alive || !c->req_done) {
        c->st = CS_REPLY_CLOSE;
        pd_conn_update(c);
        return;
    }
    c->st = CS_READ_HEAD;
    /* the framing flags of this exchange must not leak into the next one (a CONNECT may follow) */
    c->up.eof = c->up.shut = c->up.splice = c->up.reset = false;
    c->down.eof = c->down.shut = c->down.splice = c->down.reset = false;
    c->bytes_up = c->bytes_down = 0;
    c->t_start = pd_now_ms();
    c->addr_str[0] = '\0';
    c->rule[0] = '\0';
    c->n_cands = c->cand_i = 0;
    /* which program owns the socket is asked again per request: the descriptor may have passed to
     * another process since (inherited, or sent over a Unix socket), and binary= must judge the
     * owner of now, denying when owners disagree */
    free(c->binary);
    c->binary = NULL;
    c->bin_done = false;
    /* the next request's head, if part of it is already here, has the head's limit */
    pd_conn_timer(c, c->in.len > c->in.off ? PD_HEAD_TIMEOUT_MS : PD_IDLE_TIMEOUT_MS);
    if (c->in.len > c->in.off && c->out.len == c->out.off)
        pd_explicit_read(c);                     /* a pipelined request is already here */
    else
        pd_conn_update(c);
}

/* How much of the origin's answer is buffered before proxyd stops reading: a whole head may be
 * up to HTTP_MAX_HEAD (a 20 KiB head of cookies must not stall), a body PD_FWD_BUF at a time. */
size_t pd_forward_uin_limit(const struct pd_conn *c)
{
    return c->resp_head_done ? PD_FWD_BUF : HTTP_MAX_HEAD;
}

void pd_forward_io(struct pd_conn *c)
{
    bool moved = false;                 /* any byte in or out: the state's timer starts again */
    size_t before_out = c->out.len - c->out.off, before_uout = c->uout.len - c->uout.off;
    /* client -> proxyd */
    if (!c->req_done && !c->up.eof && c->uout.len - c->uout.off < PD_FWD_BUF) {
        pd_buf_reserve(&c->in, 4096);
        ssize_t n = recv(c->cfd, c->in.p + c->in.len, c->in.cap - c->in.len, MSG_DONTWAIT);
        if (n > 0)
            moved = true, c->in.len += (size_t)n;
        else if (n == 0)
            c->up.eof = true;
        else if (errno != EAGAIN && errno != EINTR)
            goto drop;
    }
    if (move_request_body(c) < 0) {
        if (c->resp_head_done || c->out.len > c->out.off)
            goto drop;                   /* an answer is already on its way: just cut */
        pd_conn_fail(c, 400, "bad_chunked_request_body");
        return;
    }
    if (c->up.eof && !c->req_done)
        goto drop;
    /* proxyd -> upstream */
    if (c->uout.len > c->uout.off && pd_buf_flush(&c->uout, c->ufd) < 0) {
        if (!c->resp_head_done && c->out.len == c->out.off) {
            pd_conn_fail(c, 502, "upstream_write_failed");
            return;
        }
        goto cut;
    }
    /* upstream -> proxyd */
    if (!c->down.eof && c->uin.len - c->uin.off < pd_forward_uin_limit(c) &&
        c->out.len - c->out.off < PD_FWD_BUF) {
        pd_buf_reserve(&c->uin, 8192);
        ssize_t n = recv(c->ufd, c->uin.p + c->uin.len, c->uin.cap - c->uin.len, MSG_DONTWAIT);
        if (n > 0)
            moved = true, c->uin.len += (size_t)n;
        else if (n == 0)
            c->down.eof = true;
        else if (errno != EAGAIN && errno != EINTR)
            c->down.eof = c->down.reset = true;
    }
    bool complete = false;
    if (!c->resp_head_done) {
        int r = take_response_head(c);
        if (r < 0 || (r == 0 && c->down.eof)) {
            if (c->out.len == c->out.off) {
                pd_conn_fail(c, 502, r < 0 ? "bad_upstream_response" : "upstream_closed");
                return;
            }
            goto cut;
        }
    }
    if (c->resp_head_done && !c->resp_done) {
        if (move_response_body(c, &complete) < 0)
            goto cut;
        c->resp_done = complete;
    }
    complete = c->resp_done;
    /* proxyd -> client */
    if (c->out.len > c->out.off) {
        int r = pd_buf_flush(&c->out, c->cfd);
        if (r < 0)
            goto drop;
    }
    if (complete && c->out.len == c->out.off) {
        finish_request(c);
        return;
    }
    if (complete)
        c->down.eof = true;     /* nothing more is read from upstream; wait for the client */
    if (moved || c->out.len - c->out.off < before_out || c->uout.len - c->uout.off < before_uout)
        pd_conn_timer(c, PD_IDLE_TIMEOUT_MS);
    pd_conn_update(c);
    return;
cut:
    pd_forward_cut(c, "response_cut_short");
    return;
drop:
    pd_conn_free(c);                    /* the client's doing: it gets what it asked for */
}
