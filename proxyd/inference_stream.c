/* A backend's answer on its way to the client.  A stream (text/event-stream) is forwarded event
 * by event the moment each one is complete, as one HTTP chunk each, with no other buffering; its
 * usage is read on the way, the usage-only chunk we asked for is dropped when the client did not
 * ask, and a stream that ends early ends with an error event the SDKs parse.  Any other answer is
 * small JSON: it is held (bounded) so its usage can be logged and the backend's key can be
 * checked not to be echoed, then sent with a Content-Length. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "common/util.h"
#include "proxyd/inference_conn.h"

#define MAX_BUFFERED_ANSWER (32u << 20)

void inf_stream_head(struct inf_up *u)
{
    u->status = u->resp.status;
    u->fwd_len = 0;
    const struct http_header *ct = http_find_header(&u->resp.f, "content-type");
    u->sse = u->status == 200 && ct && ct->value.n >= 17 && strncasecmp(ct->value.p, "text/event-stream", 17) == 0;
    /* We ask for identity: an encoded answer could not be checked for the key (nor read for usage),
     * so it is withheld, whole (no head has gone out yet). */
    for (size_t i = 0; i < u->resp.f.n_headers; i++) {       /* every one: a second may say gzip */
        const struct http_header *h = &u->resp.f.headers[i];
        if (http_span_eq(h->name, "content-encoding") &&
            !(h->value.n == 8 && strncasecmp(h->value.p, "identity", 8) == 0)) {
            u->sse = false;
            u->cut = "backend_answer_encoded";
            return;
        }
    }
    for (size_t i = 0; i < u->resp.f.n_headers; i++) {
        const struct http_header *h = &u->resp.f.headers[i];
        if (!inf_resp_header_forwarded(h->name.p, h->name.n) || http_span_eq(h->name, "content-type") ||
            !inf_header_value_ok(h->value.p, h->value.n))
            continue;
        if (u->fwd_len + h->name.n + h->value.n + 5 > sizeof u->fwd)
            break;
        u->fwd_len += (size_t)snprintf(u->fwd + u->fwd_len, sizeof u->fwd - u->fwd_len, "%.*s: %.*s\r\n",
                                       (int)h->name.n, h->name.p, (int)h->value.n, h->value.p);
    }
    if (ct && ct->value.n < 200 && inf_header_value_ok(ct->value.p, ct->value.n) &&
        u->fwd_len + ct->value.n + 20 < sizeof u->fwd)
        u->fwd_len += (size_t)snprintf(u->fwd + u->fwd_len, sizeof u->fwd - u->fwd_len,
                                       "Content-Type: %.*s\r\n", (int)ct->value.n, ct->value.p);
    if (!u->sse)
        return;
    struct inf_conn *k = u->k;
    inf_buf_printf(&k->out, "HTTP/1.1 200 OK\r\n%.*sCache-Control: no-cache\r\n"
                   "Transfer-Encoding: chunked\r\n%s\r\n", (int)u->fwd_len, u->fwd,
                   k->close_after ? "Connection: close\r\n" : "");
    u->head_sent = true;
}

static bool is_final(const char *name, const char *data, size_t dl)
{
    return (dl == 6 && memcmp(data, "[DONE]", 6) == 0) || strcmp(name, "message_stop") == 0 ||
           strcmp(name, "error") == 0 || strcmp(name, "response.completed") == 0 ||
           strcmp(name, "response.failed") == 0 || strcmp(name, "response.incomplete") == 0;
}

static void forward_event(struct inf_up *u, const char *ev, size_t n)
{
    /* A backend quoting the admin's key back: stop the stream here rather than pass it on. */
    bool key_ok;
    const char *key = inf_state_key(u->k->st, u->be, &key_ok);
    if (key && inf_quotes_key(ev, n, key)) {
        u->cut = "backend_echoed_key";
        return;
    }
    char name[64];
    size_t dl = 0;
    char *data = inf_sse_data(ev, n, &dl, name, sizeof name);
    if (data) {
        if (is_final(name, data, dl))
            u->saw_final = true;
        /* Parse only events that can carry usage: the rest go through untouched and fast. */
        if (dl && data[0] == '{' && memmem(data, dl, "usage", 5)) {
            bool usage_only = false;
            inf_usage_scan(data, dl, &u->usage, &usage_only);
            if (usage_only && u->strip_usage_chunk) {
                free(data);
                return;
            }
        }
        /* Responses-API event types live in the data, not the event field. */
        if (!u->saw_final && dl && data[0] == '{' &&
            (memmem(data, dl, "\"response.completed\"", 20) || memmem(data, dl, "\"message_stop\"", 14)))
            u->saw_final = true;
        free(data);
    }
    inf_buf_printf(&u->k->out, "%zx\r\n", n);
    inf_buf_add(&u->k->out, ev, n);
    inf_buf_add(&u->k->out, "\r\n", 2);
}

void inf_stream_body(struct inf_up *u, const char *data, size_t len)
{
    if (!len || u->cut)
        return;
    if (u->sse) {
        if (inf_sse_feed(&u->ev, data, len) < 0) {
            u->cut = "backend_event_too_large";
            return;
        }
        const char *ev;
        size_t n;
        while (!u->cut && (n = inf_sse_next(&u->ev, &ev)) > 0)
            forward_event(u, ev, n);
        return;
    }
    if (inf_buf_used(&u->body) + len > MAX_BUFFERED_ANSWER) {
        u->cut = "backend_answer_too_large";
        return;
    }
    /* Held answers count with the request bodies in the account's and the daemon's budget
     * (inference_budget.c): a few 32 MiB answers at once must not exhaust the daemon either. */
    if (inf_budget_take(inf_daemon_budget(), u->k->who.uid, len,
                        u->k->who.conf->cfg->global.max_request_size) != INF_BUDGET_OK) {
        u->cut = "backend_answers_over_budget";
        return;
    }
    u->body_reserved += len;
    inf_buf_add(&u->body, data, len);
}

static void end_stream(struct inf_up *u, const char *cut)
{
    struct inf_conn *k = u->k;
    /* A backend that just closes a close-delimited stream without its final event was cut. */
    if (!cut && !u->saw_final && u->body_kind == HTTP_BODY_UNTIL_CLOSE)
        cut = "stream_ended_without_final_event";
    if (cut) {
        char msg[200];
        snprintf(msg, sizeof msg, "the inference stream was interrupted (%s)", cut);
        char *ev = inf_error_event(k->api, msg);
        size_t n = strlen(ev);
        inf_buf_printf(&k->out, "%zx\r\n%s\r\n", n, ev);
        free(ev);
        k->close_after = true;       /* the answer is incomplete: do not reuse the connection */
    }
    inf_buf_add(&k->out, "0\r\n\r\n", 5);
    inf_log(k, "allow", cut ? cut : "ok", u->model, u->upstream_model, u->be->name,
            u->status, &u->usage);
}

static void end_buffered(struct inf_up *u, const char *cut)
{
    struct inf_conn *k = u->k;
    bool key_ok;
    const char *key = inf_state_key(k->st, u->be, &key_ok);
    int status = u->status;
    const char *reason = "ok";
    const char *withhold = NULL;
    if (cut) {
        withhold = "the backend's answer was cut short";
        reason = cut;
    } else if (status == 401 || status == 403 || status == 407) {
        /* The backend refused the admin's credentials; its message may quote the key. */
        withhold = "the backend rejected the administrator's credentials; tell the administrator";
        reason = "backend_rejected_credentials";
    } else if (key && inf_quotes_key(inf_buf_data(&u->body), inf_buf_used(&u->body), key)) {
        withhold = "the backend's answer was withheld";
        reason = "backend_echoed_key";
    }
    if (withhold) {
        char *body = inf_error_body(k->api, k->api == PS_API_ANTHROPIC ? "api_error" : "server_error",
                                    NULL, withhold);
        inf_conn_respond(k, 502, NULL, "application/json", body, strlen(body), false);
        free(body);
        inf_log(k, "deny", reason, u->model, u->upstream_model, u->be->name, 502, NULL);
        return;
    }
    if (status >= 200 && status < 300)
        inf_usage_scan_answer(inf_buf_data(&u->body), inf_buf_used(&u->body), &u->usage);
    inf_buf_printf(&k->out, "HTTP/1.1 %d %s\r\n%.*sContent-Length: %zu\r\n%s\r\n", status,
                   status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error",
                   (int)u->fwd_len, u->fwd, inf_buf_used(&u->body),
                   k->close_after ? "Connection: close\r\n" : "");
    inf_buf_add(&k->out, inf_buf_data(&u->body), inf_buf_used(&u->body));
    /* the copy in out is the one that lives on (as long as the client takes to read it): the
     * budget goes with it (released as out drains, inference_conn.c), the original now */
    k->out_reserved += u->body_reserved;
    u->body_reserved = 0;
    inf_buf_free(&u->body);
    inf_log(k, "allow", status < 400 ? "ok" : "backend_error", u->model, u->upstream_model, u->be->name,
            status, &u->usage);
}

void inf_stream_end(struct inf_up *u, const char *cut)
{
    if (u->phase == INF_UP_DONE)
        return;
    /* Framed, complete and not refused: the connection can carry the next request. */
    u->reusable = !cut && !u->cut && u->body_done && !u->backend_close &&
                  (u->body_kind == HTTP_BODY_LENGTH || u->body_kind == HTTP_BODY_CHUNKED);
    if (u->head_sent)
        end_stream(u, cut);
    else
        end_buffered(u, cut);
    u->phase = INF_UP_DONE;
}
