/* The explicit listener: HTTP/1.1 proxy requests (CONNECT host:port, absolute-form http://),
 * strictly parsed, with JSON answers for denials and errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "proxyd/core.h"
#include "proxyd/synth.h"
#include "common/policy.h"
#include "common/util.h"

static const char *deny_hint(const char *reason)
{
    if (!reason)
        return "";
    if (strcmp(reason, "not_sandboxed") == 0 || strcmp(reason, "client_not_found") == 0)
        return "this proxy serves sandboxed accounts only";
    if (strncmp(reason, "address_class_", 14) == 0)
        return "the name resolves to an address that a name rule never reaches";
    if (strcmp(reason, "inference_not_permitted") == 0)
        return "the profile lists no inference models";
    return "ask the administrator for an Allow= rule (sandboxctl denials shows it)";
}

/* The reason phrase of each status proxyd answers with itself. */
static const char *status_phrase(int status)
{
    static const struct { int st; const char *ph; } phrases[] = {
        { 400, "Bad Request" }, { 403, "Forbidden" }, { 408, "Request Timeout" },
        { 414, "URI Too Long" }, { 417, "Expectation Failed" }, { 429, "Too Many Requests" },
        { 431, "Request Header Fields Too Large" }, { 501, "Not Implemented" },
        { 502, "Bad Gateway" }, { 504, "Gateway Timeout" }, { 505, "HTTP Version Not Supported" },
    };
    for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++)
        if (phrases[i].st == status)
            return phrases[i].ph;
    return status < 500 ? "Bad Request" : "Bad Gateway";
}

void pd_explicit_reply(struct pd_conn *c, int status, const char *deny, const char *json_error,
                       const char *detail, bool close)
{
    const char *phrase = status_phrase(status);
    char host[600], body[2048], hdr[1024], jdeny[160], jdetail[600], hint[200];
    pd_json_str(host, sizeof host, c->host[0] ? c->host : NULL);
    pd_json_str(jdeny, sizeof jdeny, deny);
    pd_json_str(jdetail, sizeof jdetail, detail);
    pd_json_str(hint, sizeof hint, deny_hint(deny));
    int bl;
    if (deny)
        bl = snprintf(body, sizeof body,
                      "{\"error\":\"%s\",\"reason\":%s,\"host\":%s,\"port\":%u,\"rule\":%s,\"hint\":%s}\n",
                      json_error, jdeny, host, (unsigned)c->port, jdetail, hint);
    else
        bl = snprintf(body, sizeof body, "{\"error\":\"%s\",\"detail\":%s,\"host\":%s,\"port\":%u}\n",
                      json_error, jdetail, host, (unsigned)c->port);
    if (bl < 0 || (size_t)bl >= sizeof body)
        bl = snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", json_error);
    int hl = snprintf(hdr, sizeof hdr,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                      "Cache-Control: no-store\r\n%s%s%s%s\r\n",
                      status, phrase, bl, deny ? "X-Sandbox-Deny: " : "", deny ? deny : "",
                      deny ? "\r\n" : "", close ? "Connection: close\r\n" : "");
    pd_buf_reserve(&c->out, (size_t)hl + (size_t)bl);
    memcpy(c->out.p + c->out.len, hdr, (size_t)hl);
    memcpy(c->out.p + c->out.len + hl, body, (size_t)bl);
    c->out.len += (size_t)hl + (size_t)bl;
    c->st = close ? CS_REPLY_CLOSE : CS_READ_HEAD;
    pd_conn_timer(c, PD_HEAD_TIMEOUT_MS);    /* a client that never reads its answer */
    int r = pd_buf_flush(&c->out, c->cfd);
    if (r < 0) {
        pd_conn_free(c);
        return;
    }
    if (r == 1 && close) {
        pd_conn_linger(c);
        return;
    }
    pd_conn_update(c);
}

static void bad_request(struct pd_conn *c, int status, const char *reason)
{
    pd_explicit_reply(c, status, NULL, "bad_request", reason, true);
}

/* Copy the request's host into c->host and decide whether it is a name or an address.  Returns 1
 * when the host was a synthetic address, c->host now the name it stands for; 0 otherwise; -1 for a
 * bad host. */
static int take_target(struct pd_conn *c, const struct http_request *rq)
{
    c->host[0] = '\0';                  /* nothing of an earlier request on this connection */
    if (rq->host.n > PS_MAX_NAME)
        return -1;
    char h[PS_MAX_NAME + 1];
    memcpy(h, rq->host.p, rq->host.n);
    h[rq->host.n] = '\0';
    c->port = rq->port;
    memset(&c->cands[0], 0, sizeof c->cands[0]);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&c->cands[0];
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->cands[0];
    if (rq->host_is_v6) {
        if (inet_pton(AF_INET6, h, &s6->sin6_addr) != 1) {
            snprintf(c->host, sizeof c->host, "%s", h);     /* as asked, for the log and the 400 */
            return -1;
        }
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(c->port);
        c->host_is_name = false;
        inet_ntop(AF_INET6, &s6->sin6_addr, c->host, sizeof c->host);
        return 0;
    }
    if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(c->port);
        /* A synthetic address (from policy DNS) stands for its name, as in transparent mode. */
        char name[PS_MAX_NAME + 1];
        if (ps_cidr_contains(&c->who.conf->cfg->global.synthetic_range, (struct sockaddr *)s4)) {
            if (!pd->synth || !c->who.profile || !synth_lookup(pd->synth, c->who.uid, s4->sin_addr, name)) {
                snprintf(c->host, sizeof c->host, "%s", h);
                c->host_is_name = false;
                return 0;           /* decide_addr denies it: address_class_synthetic */
            }
            snprintf(c->host, sizeof c->host, "%s", name);
            c->host_is_name = true;
            return 1;
        }
        snprintf(c->host, sizeof c->host, "%s", h);
        c->host_is_name = false;
        return 0;
    }
    char norm[PS_MAX_NAME + 1];
    if (ps_name_normalize(h, norm) < 0) {
        snprintf(c->host, sizeof c->host, "%s", h);          /* as asked, for the log and the 400 */
        return -1;
    }
    memcpy(c->host, norm, sizeof norm);
    c->host_is_name = true;
    return 0;
}

static void append(struct pd_buf *b, const char *p, size_t n)
{
    pd_buf_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void appends(struct pd_buf *b, const char *s)
{
    append(b, s, strlen(s));
}

/* The request as the origin gets it: origin-form, Host from the URL we checked (the name, when the
 * URL had a synthetic address: BY_NAME), no hop-by-hop or proxy fields, one request per upstream
 * connection.  The framing fields are proxyd's own, written
 * from what it parsed and will forward: a client's Content-Length line is never copied, so naming
 * it in Connection (which makes it hop-by-hop) cannot leave the origin without a length while
 * proxyd still sends the body, which the origin would then read as a second request. */
static void build_upstream_request(struct pd_conn *c, const struct http_request *rq, bool by_name)
{
    struct pd_buf *b = &c->uout;
    append(b, rq->method.p, rq->method.n);
    appends(b, " ");
    if (rq->path.n == 0 || rq->path.p[0] == '?')
        appends(b, "/");
    append(b, rq->path.p, rq->path.n);
    appends(b, " HTTP/1.1\r\nHost: ");
    if (by_name) {
        /* proxyd decided on and connected to the name; the origin serves it by that name too,
         * not by an address only this account's policy DNS gave out */
        appends(b, c->host);
    } else {
        if (rq->host_is_v6)
            appends(b, "[");
        append(b, rq->host.p, rq->host.n);
        if (rq->host_is_v6)
            appends(b, "]");
    }
    if (rq->port != 80) {
        char pb[8];
        snprintf(pb, sizeof pb, ":%u", (unsigned)rq->port);
        appends(b, pb);
    }
    appends(b, "\r\n");
    for (size_t i = 0; i < rq->f.n_headers; i++) {
        const struct http_header *h = &rq->f.headers[i];
        if (http_span_eq(h->name, "host") || http_span_eq(h->name, "content-length") ||
            http_is_hop_by_hop(&rq->f, h->name))
            continue;
        /* RFC 9110 §10.1.1: an HTTP/1.0 request's 100-continue is ignored; passed on, it would
         * ask the origin for a 100 that must not reach this client (forward.c drops 1xx too) */
        if (rq->minor == 0 && http_span_eq(h->name, "expect"))
            continue;
        append(b, h->name.p, h->name.n);
        appends(b, ": ");
        append(b, h->value.p, h->value.n);
        appends(b, "\r\n");
    }
    if (rq->f.chunked)
        appends(b, "Transfer-Encoding: chunked\r\n");
    else if (rq->f.content_length >= 0) {
        char cl[48];
        snprintf(cl, sizeof cl, "Content-Length: %lld\r\n", (long long)rq->f.content_length);
        appends(b, cl);
    }
    appends(b, "Connection: close\r\n\r\n");
}

bool pd_explicit_read(struct pd_conn *c)
{
    for (;;) {
        /* parsed again only when that can change the outcome (pd_head_has_new_lf) */
        if (c->in.len - c->in.off > 0 && pd_head_has_new_lf(&c->in, &c->head_scanned)) {
            struct http_request *rq = ps_xmalloc(sizeof(*rq));
            struct http_error err;
            enum http_result r = http_parse_request(c->in.p + c->in.off, c->in.len - c->in.off, rq, &err);
            if (r == HTTP_ERROR) {
                free(rq);
                snprintf(c->host, sizeof c->host, "%s", "");
                pd_conn_log(c, "deny", err.reason, NULL, false);
                bad_request(c, err.status, err.reason);
                return false;
            }
            if (r == HTTP_OK) {
                pd_ident_refresh(c);
                int st = 0, target = 0;
                const char *why = NULL;
                c->head_scanned = 0;
                c->is_connect = rq->form == HTTP_FORM_AUTHORITY;
                c->keep_alive = !rq->f.conn_close;
                c->client_http10 = rq->minor == 0;
                if (rq->form == HTTP_FORM_ORIGIN || rq->form == HTTP_FORM_ASTERISK) {
                    st = 400; why = "not_a_proxy_request";
                } else if (rq->form == HTTP_FORM_ABSOLUTE && !http_span_eq(rq->scheme, "http")) {
                    st = 400; why = "use_connect_for_https";
                } else if (rq->method.n >= sizeof c->method) {
                    st = 501; why = "unsupported_method";
                } else if ((target = take_target(c, rq)) < 0) {
                    st = 400; why = "bad_host";
                }
                if (st) {
                    free(rq);
                    pd_conn_log(c, "deny", why, NULL, false);
                    bad_request(c, st, why);
                    return false;
                }
                memcpy(c->method, rq->method.p, rq->method.n);
                c->method[rq->method.n] = '\0';
                if (!c->is_connect) {
                    c->req_body = http_request_body(rq);
                    c->req_left = rq->f.content_length > 0 ? rq->f.content_length : 0;
                    http_chunked_init_request(&c->req_ch);     /* forwarded as written */
                    c->req_done = c->req_body == HTTP_BODY_NONE;
                    build_upstream_request(c, rq, target == 1);
                }
                c->in.off += rq->head_len;
                if (c->in.off == c->in.len)
                    c->in.off = c->in.len = 0;
                free(rq);
                pd_conn_timer(c, 0);
                c->st = CS_RESOLVING;
                pd_conn_update(c);
                pd_conn_decide(c);
                return false;
            }
            free(rq);
        }
        pd_buf_reserve(&c->in, 4096);
        ssize_t n = recv(c->cfd, c->in.p + c->in.len, c->in.cap - c->in.len, 0);
        if (n == 0) {
            pd_conn_free(c);
            return false;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                pd_conn_update(c);
                return true;
            }
            pd_conn_free(c);
            return false;
        }
        if (c->in.len == c->in.off)             /* first bytes of a request: the head clock starts */
            pd_conn_timer(c, PD_HEAD_TIMEOUT_MS);
        c->in.len += (size_t)n;
    }
}

void pd_explicit_connected(struct pd_conn *c)
{
    if (!c->is_connect) {
        pd_forward_start(c);
        return;
    }
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    append(&c->out, ok, sizeof ok - 1);
    if (c->in.len > c->in.off) {                /* bytes the client sent right after CONNECT */
        append(&c->uout, c->in.p + c->in.off, c->in.len - c->in.off);
        c->bytes_up += (int64_t)(c->in.len - c->in.off);
    }
    pd_buf_free(&c->in);
    pd_tunnel_start(c);
}
