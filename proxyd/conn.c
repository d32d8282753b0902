/* A client connection's life: identity -> decision -> connect -> relay -> close record.  Both of
 * its sockets are registered on the loop with pd_conn_io; the state says what an event means. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "proxyd/core.h"
#include "proxyd/resolver.h"
#include "proxyd/synth.h"
#include "common/policy.h"
#include "common/util.h"

unsigned pd_max_conns_per_account = 4096;

bool pd_buf_reserve(struct pd_buf *b, size_t need)
{
    if (b->off > 0 && b->off == b->len)
        b->off = b->len = 0;
    if (b->cap - b->len >= need)
        return true;
    if (b->off > 0) {                       /* compact first */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->cap - b->len >= need)
            return true;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < need)
        cap *= 2;
    b->p = ps_xrealloc(b->p, cap, 1);
    b->cap = cap;
    return true;
}

/* Is it worth parsing the head pending in b again?  A head can only end, or first break a rule
 * checked per line, at a LF, so a head trickled in byte by byte must not cost a parse of all of
 * it per byte.  True for the first bytes of a head (what is not HTTP at all, a TLS ClientHello on
 * the plain port, is answered at once), when a LF arrived since the last call, and when the head
 * has reached the size limit (for the parser to reject it).  *scanned: bytes already searched. */
bool pd_head_has_new_lf(const struct pd_buf *b, size_t *scanned)
{
    size_t pending = b->len - b->off;
    if (*scanned > pending)
        *scanned = 0;
    bool first = *scanned == 0;
    bool found = first || pending >= HTTP_MAX_HEAD ||
                 memchr(b->p + b->off + *scanned, '\n', pending - *scanned) != NULL;
    *scanned = pending;
    return found;
}

void pd_buf_free(struct pd_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

int pd_buf_flush(struct pd_buf *b, int fd)
{
    while (b->off < b->len) {
        ssize_t n = send(fd, b->p + b->off, b->len - b->off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return errno == EINTR ? pd_buf_flush(b, fd) : 0;
            return -1;
        }
        b->off += (size_t)n;
    }
    b->off = b->len = 0;
    {                                        /* idle connections keep no buffers */
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
    return 1;
}

/* Dropping the read interest of a quiet socket would cost an EPOLL_CTL_DEL now and an ADD when it
 * is wanted again: typically the client's socket while proxyd connects upstream, 2 of the ~23
 * system calls of a short tunnel.  So a socket registered for reading only stays registered,
 * "parked", when nothing is wanted; if it does report while parked, pd_conn_io() removes it then,
 * once (level-triggered epoll would report it again and again).  Only read interest is parked: a
 * socket is nearly always writable, so a parked EPOLLOUT would fire at once. */
static void set_fd_mask(struct pd_conn *c, int fd, bool *reg, uint32_t *cur, bool *parked, uint32_t want)
{
    if (fd < 0)
        return;
    *parked = false;
    if (want == 0) {
        if (*reg && *cur == PD_EV_READ) {
            *parked = true;
            return;
        }
        if (*reg)
            pd_loop_del(c->loop, fd);
        *reg = false;
        *cur = 0;
        return;
    }
    if (!*reg) {
        if (pd_loop_add(c->loop, fd, want, pd_conn_io, c) == 0) {
            *reg = true;
            *cur = want;
        } else if (!c->io_failed) {
            /* (ENOMEM, or fs.epoll.max_user_watches) A socket no epoll watches would never move
             * again, and a tunnel has no idle limit: end the connection, from a timer because the
             * caller still holds it. */
            syslog(LOG_ERR, "epoll: %m (a connection is ended)");
            c->io_failed = true;
            pd_conn_timer(c, 1);
        }
    } else if (*cur != want) {
        if (pd_loop_mod(c->loop, fd, want) == 0)
            *cur = want;
    }
}

/* An event on a parked socket (see set_fd_mask): unregister it now.  True when fd was parked. */
static bool unpark(struct pd_conn *c, int fd)
{
    bool *reg, *parked;
    uint32_t *cur;
    if (fd == c->cfd) {
        reg = &c->creg, cur = &c->cmask, parked = &c->cpark;
    } else if (fd == c->ufd) {
        reg = &c->ureg, cur = &c->umask, parked = &c->upark;
    } else {
        return false;
    }
    if (!*parked)
        return false;
    pd_loop_del(c->loop, fd);
    *reg = *parked = false;
    *cur = 0;
    return true;
}

static void tunnel_masks(struct pd_conn *c, uint32_t *cm, uint32_t *um)
{
    *cm = *um = 0;
    /* client -> upstream */
    if (c->uout.len > c->uout.off || c->up.inpipe > 0)
        *um |= EPOLLOUT;
    else if (!c->up.eof)
        *cm |= PD_EV_READ;
    /* upstream -> client */
    if (c->out.len > c->out.off || c->down.inpipe > 0)
        *cm |= EPOLLOUT;
    else if (!c->down.eof)
        *um |= PD_EV_READ;
}

static void fwd_masks(struct pd_conn *c, uint32_t *cm, uint32_t *um)
{
    *cm = *um = 0;
    if (c->uout.len > c->uout.off)
        *um |= EPOLLOUT;
    else if (!c->req_done && !c->up.eof)
        *cm |= PD_EV_READ;
    if (c->out.len > c->out.off)
        *cm |= EPOLLOUT;
    else if (c->ufd >= 0 && !c->down.eof && c->uin.len - c->uin.off < pd_forward_uin_limit(c))
        *um |= PD_EV_READ;
}

void pd_conn_update(struct pd_conn *c)
{
    uint32_t cm = 0, um = 0;
    switch (c->st) {
    case CS_READ_HEAD:
        cm = (c->out.len > c->out.off) ? EPOLLOUT : PD_EV_READ;
        break;
    case CS_RESOLVING:
        break;
    case CS_CONNECTING:
        um = EPOLLOUT;
        break;
    case CS_PROXY_HANDSHAKE:
        um = PD_EV_READ;          /* our CONNECT was written; client bytes wait behind it */
        break;
    case CS_TUNNEL:
        tunnel_masks(c, &cm, &um);
        break;
    case CS_FWD:
        fwd_masks(c, &cm, &um);
        break;
    case CS_REPLY_CLOSE:
        cm = EPOLLOUT;
        break;
    case CS_DRAIN:
        cm = PD_EV_READ;
        break;
    }
    set_fd_mask(c, c->cfd, &c->creg, &c->cmask, &c->cpark, cm);
    set_fd_mask(c, c->ufd, &c->ureg, &c->umask, &c->upark, um);
}

static void on_timer(struct pd_loop *l, void *arg)
{
    struct pd_conn *c = arg;
    c->timer = NULL;
    if (c->io_failed) {
        pd_conn_abort(c, "epoll_failed");
        return;
    }
    switch (c->st) {
    case CS_CONNECTING:
    case CS_PROXY_HANDSHAKE:
        pd_connect_io(c, 0);           /* 0 events: the attempt timed out */
        return;
    case CS_READ_HEAD:
        if (c->in.len > c->in.off && c->who.mode == PD_MODE_EXPLICIT) {
            pd_explicit_reply(c, 408, NULL, "request_timeout",
                              "the request head did not arrive in time", true);
            return;
        }
        break;
    case CS_TUNNEL:
        pd_tunnel_check(c);
        return;
    case CS_FWD:
        /* nothing moved for PD_IDLE_TIMEOUT_MS: a client that stopped sending its body gets a
         * 408, an origin that never answers a 504; once part of an answer has gone out, the
         * connection can only be cut, with a reset (pd_forward_cut) */
        if (!c->resp_head_done && c->out.len == c->out.off) {
            if (!c->req_done)
                pd_conn_fail(c, 408, "request_body_timeout");
            else
                pd_conn_fail(c, 504, "upstream_timeout");
            return;
        }
        pd_forward_cut(c, "response_timeout");
        return;
    default:
        break;
    }
    pd_conn_free(c);
}

void pd_conn_timer(struct pd_conn *c, uint64_t ms)
{
    if (c->timer)
        pd_timer_cancel(c->loop, c->timer);
    c->timer = ms ? pd_timer_add(c->loop, ms, on_timer, c) : NULL;
}

struct pd_conn *pd_conn_new(int cfd, enum pd_mode mode)
{
    struct pd_conn *c = ps_xcalloc(1, sizeof(*c));
    c->loop = pd->loop;
    c->relay = -1;
    c->cfd = cfd;
    c->ufd = -1;
    c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
    c->who.conf = pd_conf_ref(pd->conf);
    c->who.uid = (uid_t)-1;
    c->who.mode = mode;
    c->t_start = pd_now_ms();
    return c;
}


void pd_conn_log(struct pd_conn *c, const char *decision, const char *reason, const char *rule,
                 bool close_record)
{
    struct pd_log_entry e = {
        .who = &c->who, .host = c->host[0] ? c->host : NULL, .port = c->port,
        .address = c->addr_str[0] ? c->addr_str : NULL, .decision = decision, .reason = reason,
        .rule = rule, .binary = c->binary,
        .bytes_up = close_record ? c->bytes_up : -1,
        .bytes_down = close_record ? c->bytes_down : -1,
        .duration_ms = close_record ? (int64_t)((c->t_end ? c->t_end : pd_now_ms()) - c->t_start) : -1,
    };
    pd_log_decision(&e);
    if (!close_record && c->decision && decision == c->decision)
        c->decision_logged = true;
}

/* The loop-local half of the end: timer, sockets, pipes, buffers.  A relay loop only takes the
 * sockets off its epoll and hands c back to pd->loop, which alone touches the decision log, the cap
 * and the conf counts; it closes the sockets after those, so that a client that sees the tunnel end
 * and connects again at once finds its slot of the cap free again, as with one loop. */
void pd_conn_free(struct pd_conn *c)
{
    if (!c)
        return;
    if (c->rq)
        resolver_cancel(pd->resolver, c->rq);
    c->rq = NULL;
    if (c->binq)
        pd_binary_cancel(c->binq);
    c->binq = NULL;
    if (c->timer)
        pd_timer_cancel(c->loop, c->timer);
    c->timer = NULL;
    pd_pipe_release(&c->up);
    pd_pipe_release(&c->down);
    pd_buf_free(&c->in);
    pd_buf_free(&c->out);
    pd_buf_free(&c->uout);
    pd_buf_free(&c->uin);
    if (c->relay >= 0) {
        if (c->creg)
            pd_loop_del(c->loop, c->cfd);
        if (c->ureg)
            pd_loop_del(c->loop, c->ufd);
        c->creg = c->ureg = false;
        c->t_end = pd_now_ms();
        pd_relay_retire(c);
        return;
    }
    if (c->cfd >= 0)
        pd_loop_close(c->loop, c->cfd);
    if (c->ufd >= 0)
        pd_loop_close(c->loop, c->ufd);
    c->cfd = c->ufd = -1;
    pd_conn_finish(c);
}

void pd_conn_finish(struct pd_conn *c)
{
    pd_relay_forget(c);
    if (c->decision && c->addr_str[0] && (c->st == CS_TUNNEL || c->st == CS_FWD))
        pd_conn_log(c, "close", c->close_reason ? c->close_reason : "closed", c->rule, true);
    free(c->binary);
    if (c->counted)
        pd_account_release(c->who.uid);
    pd_conf_unref(c->who.conf);
    if (c->cfd >= 0)                   /* a relay loop's: on no loop any more */
        close(c->cfd);
    if (c->ufd >= 0)
        close(c->ufd);
    free(c);
}

/* Close the upstream socket (a failed attempt, a finished request); the client side stays. */
void pd_conn_drop_upstream(struct pd_conn *c)
{
    if (c->ufd < 0)
        return;
    pd_loop_close(c->loop, c->ufd);
    c->ufd = -1;
    c->ureg = c->upark = false;
    c->umask = 0;
}

/* close() of fd will send a reset instead of a FIN (and drop what its send queue still holds). */
static void reset_on_close(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

/* Transparent denial: a TCP reset, so the client fails at once and learns nothing. */
void pd_conn_reset(struct pd_conn *c)
{
    reset_on_close(c->cfd);
    c->decision = NULL;
    pd_conn_free(c);
}

/* A FIN tells a peer that everything was sent.  When one side broke off (a reset, a response cut
 * short), the other must not get one: a client reading a body until close would take what it has
 * for the whole of it.  Unlike pd_conn_reset, the decision stays, so the close record is written. */
void pd_conn_abort(struct pd_conn *c, const char *reason)
{
    /* Not a side that already has all of its stream and our FIN (down.shut: the client, up.shut:
     * the origin): a reset would discard what its kernel has still to deliver of a stream that
     * ended cleanly. */
    if (!c->down.shut)
        reset_on_close(c->cfd);
    if (!c->up.shut)
        reset_on_close(c->ufd);
    c->close_reason = reason;
    pd_conn_free(c);
}

/* A final answer is out: send the FIN, then keep reading (and discarding) until the client's own
 * FIN, for at most PD_LINGER_MS.  Closing at once would make the kernel answer bytes the client
 * still sends (the rest of a body, or its request, when the answer came first, as a 429 at
 * accept does) with a reset, which can destroy the answer before the client has read it. */
void pd_conn_linger(struct pd_conn *c)
{
    shutdown(c->cfd, SHUT_WR);
    c->st = CS_DRAIN;
    pd_conn_timer(c, PD_LINGER_MS);
    pd_conn_update(c);
}

void pd_conn_over_cap(struct pd_conn *c)
{
    pd_conn_log(c, "deny", "too_many_connections", "default", false);
    if (c->who.mode == PD_MODE_EXPLICIT)
        pd_explicit_reply(c, 429, "too_many_connections",
                          "too_many_connections", "per-account connection limit", true);
    else
        pd_conn_reset(c);
}

void pd_conn_deny(struct pd_conn *c, const char *reason, const char *rule)
{
    pd_conn_log(c, "deny", reason, rule, false);
    c->decision = NULL;
    if (c->who.mode == PD_MODE_EXPLICIT)
        pd_explicit_reply(c, 403, reason, "policy_denied", rule, true);
    else
        pd_conn_reset(c);
}

void pd_conn_fail(struct pd_conn *c, int status, const char *reason)
{
    /* Mode=report: policy would have denied this before it failed upstream.  Log that first, so
     * that the roll-out (sandboxctl denials) sees every would_deny, not only those that connected. */
    if (c->decision && strcmp(c->decision, "would_deny") == 0 && !c->decision_logged)
        pd_conn_log(c, c->decision, c->reason, c->rule, false);
    pd_conn_log(c, "error", reason, c->rule[0] ? c->rule : NULL, false);
    c->decision = NULL;
    pd_conn_drop_upstream(c);
    if (c->who.mode == PD_MODE_EXPLICIT)
        pd_explicit_reply(c, status, NULL, status == 400 || status == 408 ? "bad_request" : "upstream_failed",
                          reason, true);
    else
        pd_conn_reset(c);
}

static void hand_to_inference(struct pd_conn *c)
{
    pd_conn_log(c, "allow", "inference", "default", false);
    if (c->timer)
        pd_timer_cancel(c->loop, c->timer);
    c->timer = NULL;
    if (c->creg)
        pd_loop_del(c->loop, c->cfd);
    c->creg = c->cpark = false;
    struct pd_client who = c->who;           /* the reference moves to inference */
    who.mode = PD_MODE_INFERENCE;
    who.counted = c->counted;                /* and so does the connection's slot of the cap */
    int fd = c->cfd;
    c->cfd = -1;
    c->who.conf = NULL;
    c->decision = NULL;
    c->counted = false;
    pd_inference_accept(fd, &who);
    pd_conn_free(c);
}

static void binary_known(void *arg, int status, const char *path)
{
    struct pd_conn *c = arg;
    c->binq = NULL;
    c->bin_done = true;
    if (status == PD_BIN_AMBIGUOUS) {
        /* processes with different executables share the socket: nobody can say who connects */
        pd_conn_deny(c, "binary_ambiguous", "default");
        return;
    }
    if (status == PD_BIN_FOUND && path)
        c->binary = ps_xstrdup(path);
    pd_conn_decide(c);
}

/* host/port (and for an address, cands[0]) are set.  Policy first; names are resolved and their
 * addresses classified in connect.c. */
void pd_conn_decide(struct pd_conn *c)
{
    const struct ps_config *cfg = c->who.conf->cfg;
    if (!c->id_ok) {
        pd_conn_deny(c, c->id_err ? c->id_err : "client_not_found", "default");
        return;
    }
    if (!c->counted) {
        if (!pd_account_acquire(c->who.uid)) {
            pd_conn_over_cap(c);
            return;
        }
        c->counted = true;
    }
    const struct ps_profile *p = c->who.profile;
    if (c->host_is_name && ps_is_inference_name(c->host) && c->port == 443) {
        /* §5.4: intercepted on 443 only, and only for a profile with models. */
        if (!ps_profile_uses_inference(p)) {
            pd_conn_deny(c, "inference_not_permitted", "default");
            return;
        }
        if (c->who.mode == PD_MODE_EXPLICIT && c->is_connect) {
            static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
            /* A small blocking-free write: the socket buffer of a fresh connection has room. */
            ssize_t n = send(c->cfd, ok, sizeof ok - 1, MSG_NOSIGNAL);
            if (n != (ssize_t)(sizeof ok - 1) || c->in.len > c->in.off) {
                /* bytes pipelined after CONNECT cannot be handed over with the fd */
                pd_conn_free(c);
                return;
            }
        } else if (c->who.mode == PD_MODE_EXPLICIT) {
            pd_explicit_reply(c, 400, NULL, "bad_request",
                              "inference.local:443 is reached with CONNECT (HTTPS)", true);
            return;
        }
        hand_to_inference(c);
        return;
    }
    if (!c->bin_done && pd_profile_uses_binary(p)) {
        c->binq = pd_binary_lookup(c->who.uid, c->inode, binary_known, c);
        if (c->binq)
            return;                        /* binary_known() decides */
        c->bin_done = true;                /* no helper: unknown, binary= allows never match */
    }
    struct ps_decision d;
    if (c->host_is_name)
        ps_policy_decide(p, c->host, c->port, c->binary, &d);
    else
        ps_policy_decide_addr(p, &c->cands[0].sa, c->port, c->binary,
                              &cfg->global.synthetic_range, &d);
    snprintf(c->rule, sizeof c->rule, "%s", d.where);
    if (d.verdict == PS_DENY) {
        pd_conn_deny(c, d.reason, d.where);
        return;
    }
    c->decision = d.would_deny ? "would_deny" : "allow";
    c->decision_logged = false;
    c->reason = d.reason;
    if (!c->host_is_name)
        c->n_cands = 1;
    pd_connect_start(c);
}

void pd_conn_io(struct pd_loop *l, int fd, uint32_t ev, void *arg)
{
    struct pd_conn *c = arg;
    (void)l;
    if (unpark(c, fd))
        return;
    switch (c->st) {
    case CS_READ_HEAD:
        if (c->out.len > c->out.off) {
            int r = pd_buf_flush(&c->out, c->cfd);
            if (r < 0) {
                pd_conn_free(c);
                return;
            }
            if (r == 0)
                return;
            /* a request may already wait in the buffer (pipelining) */
        }
        pd_explicit_read(c);
        return;
    case CS_RESOLVING:
        return;
    case CS_CONNECTING:
    case CS_PROXY_HANDSHAKE:
        if (fd == c->ufd)
            pd_connect_io(c, ev);
        return;
    case CS_TUNNEL:
        pd_tunnel_io(c, fd, ev);
        return;
    case CS_FWD:
        pd_forward_io(c);
        return;
    case CS_REPLY_CLOSE: {
        int r = pd_buf_flush(&c->out, c->cfd);
        if (r < 0)
            pd_conn_free(c);
        else if (r > 0)
            pd_conn_linger(c);
        return;
    }
    case CS_DRAIN: {
        char junk[4096];
        for (int i = 0; i < 16; i++) {
            ssize_t n = recv(c->cfd, junk, sizeof junk, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                pd_conn_free(c);           /* the client's FIN (or its reset): done */
                return;
            }
            if (n < 0)
                return;
        }
        return;
    }
    }
}
