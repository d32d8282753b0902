/* Decided tunnels.  Small exchanges (a request, a short answer) are copied with recv/send through a
 * stack buffer: for them two pipes and four splices cost more than the copy.  As soon as one read
 * fills the buffer, that direction switches to splice(2) (socket -> pipe -> socket, never through
 * user space) while it keeps moving data.  Pipes exist only for directions that carry bulk: a
 * tunnel quiet for a whole upkeep check gives them back (pd_tunnel_check), so an idle tunnel
 * costs its struct only.
 * Half-close is passed on (EOF one way shuts that way down), so protocols that send, shut down
 * and then read the answer work. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "proxyd/core.h"

/* Bulk moves in pipe-sized splices.  A 1 MiB pipe took a third less CPU per GiB than the default
 * 64 KiB one here (bench/); its pages are allocated only while data sits in it.  But the kernel
 * counts every pipe's capacity against the account (fs.pipe-user-pages-soft, 64 MiB by default),
 * and past that limit it gives new pipes two pages and refuses to grow them: every later bulk
 * tunnel would crawl.  So big pipes are used only while this process holds less than a quarter of
 * that limit; beyond it, the default size.  When the kernel refuses (pipe-max-size), the default. */
#define PIPE_BIG (1u << 20)
#define SPLICE_DEFAULT (1u << 16)
static size_t pipe_bytes_held;       /* shared by every loop's tunnels: __atomic only */

static size_t pipe_budget(void)
{
    static size_t budget;
    if (!budget) {
        unsigned long pages = 16384;             /* the kernel's default */
        FILE *f = fopen("/proc/sys/fs/pipe-user-pages-soft", "re");
        if (f) {
            if (fscanf(f, "%lu", &pages) != 1 || pages == 0)
                pages = 16384;                     /* 0 means no limit: keep the default's margin */
            fclose(f);
        }
        budget = (size_t)pages * 4096u / 4u;
    }
    return budget;
}

void pd_pipe_release(struct pd_dir *d)
{
    if (d->pipe[0] >= 0) {
        close(d->pipe[0]);
        close(d->pipe[1]);
        __atomic_sub_fetch(&pipe_bytes_held, d->pipe_size, __ATOMIC_RELAXED);
    }
    d->pipe[0] = d->pipe[1] = -1;
    d->pipe_size = 0;
}
#define COPY_CHUNK 16384             /* a read that fills this means bulk: splice from then on */

static int pipe_open(struct pd_dir *d)
{
    if (d->pipe[0] >= 0)
        return 0;
    if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    /* loops running at once may each take a big pipe past the budget: by one per loop at most */
    size_t held = __atomic_load_n(&pipe_bytes_held, __ATOMIC_RELAXED);
    int sz = held + PIPE_BIG <= pipe_budget() ? fcntl(d->pipe[1], F_SETPIPE_SZ, PIPE_BIG) : -1;
    if (sz <= 0)
        sz = fcntl(d->pipe[1], F_GETPIPE_SZ);
    d->pipe_size = sz > 0 ? (size_t)sz : SPLICE_DEFAULT;
    __atomic_add_fetch(&pipe_bytes_held, d->pipe_size, __ATOMIC_RELAXED);
    return 0;
}

/* A direction's hard errors say which socket failed: the tunnel then resets the other one. */
#define SRC_FAILED (-1)
#define DST_FAILED (-2)

/* Copy one read's worth; what dst does not take now waits in *pending (flushed first next time).
 * Returns 1 after a full read (there may be more), 2 after a short one (the socket had no more:
 * level-triggered epoll reports the rest, so no recv() that would only find EAGAIN), 0 for
 * nothing (EAGAIN or EOF), SRC_FAILED or DST_FAILED on error.  fin: epoll said src's peer has
 * sent its FIN (EPOLLRDHUP, no error), so a short read took the last bytes: EOF now, not after one
 * more recv() (a web server that answers and closes sends both together). */
static int copy_once(int src, int dst, struct pd_dir *d, int64_t *count, struct pd_buf *pending, bool fin)
{
    char buf[COPY_CHUNK];
    ssize_t n = recv(src, buf, sizeof buf, 0);
    if (n == 0) {
        d->eof = true;
        return 0;
    }
    if (n < 0)
        return (errno == EAGAIN || errno == EINTR) ? 0 : SRC_FAILED;
    *count += n;
    if ((size_t)n == sizeof buf)
        d->splice = true;
    else if (fin)
        d->eof = true;
    /* The last bytes before EOF: MSG_MORE holds them for the FIN that follows at once (pump()'s
     * shutdown, or close() when the other way is done already), so that data and FIN leave as one
     * segment, not two.  A partial send leaves the rest to pd_buf_flush(), which pushes. */
    ssize_t w = send(dst, buf, (size_t)n, MSG_NOSIGNAL | (d->eof ? MSG_MORE : 0));
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR)
            return DST_FAILED;
        w = 0;
    }
    if (w < n) {
        pd_buf_reserve(pending, (size_t)(n - w));
        memcpy(pending->p + pending->len, buf + w, (size_t)(n - w));
        pending->len += (size_t)(n - w);
    }
    return (size_t)n == sizeof buf ? 1 : 2;
}

/* A direction whose source has ended and whose last bytes are out passes the end on. */
static void end_if_done(int dst, struct pd_dir *d, const struct pd_buf *pending, bool other_done)
{
    if (d->eof && d->inpipe == 0 && pending->len == pending->off && !d->shut) {
        /* the last direction to finish needs no shutdown: both sockets are closed next, and
         * close() sends the FIN */
        if (!other_done)
            shutdown(dst, SHUT_WR);
        d->shut = true;
    }
}

/* Move what can be moved in one direction.  Returns SRC_FAILED or DST_FAILED on a hard error
 * (tear down), else 0. */
static int pump(int src, int dst, struct pd_dir *d, int64_t *count, struct pd_buf *pending,
                bool other_done, bool fin)
{
    while (!d->splice && !d->eof) {
        int r = copy_once(src, dst, d, count, pending, fin);
        if (r < 0)
            return r;
        if (r != 1 || pending->len > pending->off)
            break;                  /* nothing more to read now, or dst is full */
    }
    /* Bytes a partial send left in *pending go out before anything spliced after them: splicing
     * now would put newer bytes on the wire ahead of them. */
    if (!d->splice || pending->len > pending->off)
        goto out;
    for (int rounds = 0; rounds < 8; rounds++) {
        if (d->inpipe == 0 && !d->eof) {
            if (pipe_open(d) < 0) {
                /* out of descriptors: this tunnel goes on by copying (the next full read tries a
                 * pipe again) rather than being cut with its data */
                d->splice = false;
                goto out;
            }
            ssize_t n = splice(src, NULL, d->pipe[1], NULL, d->pipe_size,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n == 0) {
                d->eof = true;
            } else if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    break;
                return SRC_FAILED;
            } else {
                d->inpipe = (size_t)n;
                *count += n;
            }
        }
        if (d->inpipe > 0) {
            ssize_t n = splice(d->pipe[0], NULL, dst, NULL, d->inpipe,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    return 0;
                return DST_FAILED;
            }
            d->inpipe -= (size_t)n;
            if (d->inpipe > 0)
                return 0;       /* dst is full: wait for EPOLLOUT */
        }
        if (d->eof)
            break;
    }
out:
    end_if_done(dst, d, pending, other_done);
    return 0;
}

/* Upkeep of a tunnel, on a timer that costs a short tunnel one timer set and cancelled.
 * - Once it is a check old (a minute), its upstream socket gets the client side's TCP keepalive:
 *   an origin that vanishes while the client sits quiet would otherwise hold the tunnel and its
 *   slot of the per-account cap for good.  Short tunnels never pay the system calls.
 * - A tunnel one side has ended is closed once the other way carries nothing for
 *   HalfClosedTimeout= (a client that never closes after the server's FIN, a server that never
 *   answers a half-closed client).  Silence is seen by comparing the byte counters from check to
 *   check, so moving data costs nothing; a quiet half-closed tunnel goes between the timeout and
 *   one check later. */
#define TUNNEL_CHECK_MAX_MS 60000u

/* From the configuration the tunnel was decided under (its own reference: pd->conf belongs to the
 * decision loop, and a relay loop must not read it while a reload swaps it). */
static uint64_t half_closed_timeout(const struct pd_conn *c)
{
    return c->who.conf->cfg->global.half_closed_timeout_ms;
}

static uint64_t check_every(const struct pd_conn *c)
{
    uint64_t every = half_closed_timeout(c) / 4;
    return every > TUNNEL_CHECK_MAX_MS ? TUNNEL_CHECK_MAX_MS : every;   /* >= 250 ms (>= 1s / 4) */
}

/* Bytes handed to the kernel for the far side so far: read, minus what still waits in our pipes
 * and buffers.  A slow reader draining what proxyd holds is progress too; cutting then would lose
 * those bytes (what the kernel already holds is still delivered after close()). */
static int64_t delivered(const struct pd_conn *c)
{
    return c->bytes_up + c->bytes_down - (int64_t)c->up.inpipe - (int64_t)c->down.inpipe -
           (int64_t)(c->out.len - c->out.off) - (int64_t)(c->uout.len - c->uout.off);
}

/* A direction that carried bulk keeps its pipe while data moves; once the tunnel has been quiet
 * for a whole check, the pipe is given back (two descriptors, and capacity that counts against
 * fs.pipe-user-pages-soft for every pipe of this process) and the direction copies again until
 * its next full read.  Otherwise every long-lived tunnel that once moved bulk would hold its
 * pipes for good, and a few hundred of them would leave later bulk tunnels two-page pipes. */
static void release_idle_pipe(struct pd_dir *d)
{
    if (d->pipe[0] >= 0 && d->inpipe == 0) {
        pd_pipe_release(d);
        d->splice = false;
    }
}

void pd_tunnel_check(struct pd_conn *c)
{
    uint64_t every = check_every(c);
    if (!c->up_keepalive && c->ufd >= 0) {
        pd_tcp_keepalive(c->ufd);
        c->up_keepalive = true;
    }
    int64_t moved = delivered(c);
    if (moved == c->bytes_at_check) {
        release_idle_pipe(&c->up);
        release_idle_pipe(&c->down);
    }
    if ((c->up.shut || c->down.shut) && moved == c->bytes_at_check)
        c->quiet_ms += every;
    else
        c->quiet_ms = 0;
    c->bytes_at_check = moved;
    if (c->quiet_ms >= half_closed_timeout(c)) {
        c->close_reason = "half_closed_idle";
        pd_conn_free(c);
        return;
    }
    pd_conn_timer(c, every);
}

void pd_tunnel_start(struct pd_conn *c)
{
    c->st = CS_TUNNEL;
    if (c->uin.len > c->uin.off) {     /* the origin's first bytes, read with an upstream proxy's 200 */
        if (!pd_buf_reserve(&c->out, c->uin.len - c->uin.off)) {
            pd_conn_abort(c, "out_of_memory");
            return;
        }
        memcpy(c->out.p + c->out.len, c->uin.p + c->uin.off, c->uin.len - c->uin.off);
        c->out.len += c->uin.len - c->uin.off;
        c->bytes_down += (int64_t)(c->uin.len - c->uin.off);
    }
    pd_buf_free(&c->uin);
    c->bytes_at_check = delivered(c);
    pd_conn_timer(c, check_every(c));
    pd_tunnel_io(c, -1, 0);
}

void pd_tunnel_adopt(struct pd_conn *c)
{
    pd_conn_timer(c, check_every(c));
    pd_tunnel_io(c, -1, 0);            /* flush, and register on this loop */
}

void pd_tunnel_init(void)
{
    (void)pipe_budget();               /* computed once, before other threads can ask */
}

/* Does an event on fd move the direction src -> dst?  Its source readable (or hung up), or its
 * destination writable again.  At the start (fd < 0) neither: only our own bytes are flushed and
 * the interests registered; whatever already waits is reported by the next epoll_wait.  The masks
 * (conn.c) keep every readiness a direction waits for registered, and epoll is level-triggered, so
 * a direction skipped here is reported again: this only saves the recv() that would find nothing
 * (the client of a CONNECT sends nothing before it has read our 200). */
static bool moves(int fd, uint32_t ev, int src, int dst)
{
    return (fd == src && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))) ||
           (fd == dst && (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)));
}

/* One side of the tunnel failed (a reset, or keepalive found it gone): the other side is reset
 * too, as it would be without proxyd in between.  A FIN would tell it that the stream ended
 * whole; what was still on its way through proxyd is lost either way. */
static void broken(struct pd_conn *c, bool client_side)
{
    pd_conn_abort(c, client_side ? "client_reset" : "upstream_reset");
}

void pd_tunnel_io(struct pd_conn *c, int fd, uint32_t ev)
{
    /* our own bytes first: "200 Connection established", bytes pipelined after CONNECT */
    if (c->out.len > c->out.off && pd_buf_flush(&c->out, c->cfd) < 0) {
        broken(c, true);
        return;
    }
    if (c->uout.len > c->uout.off && pd_buf_flush(&c->uout, c->ufd) < 0) {
        broken(c, false);
        return;
    }
    /* an error comes with EPOLLRDHUP too: then the next recv() reports it, nothing is assumed */
    bool fin = (ev & (EPOLLRDHUP | EPOLLERR)) == EPOLLRDHUP;
    int r = 0;
    if (c->uout.len == c->uout.off && moves(fd, ev, c->cfd, c->ufd))
        r = pump(c->cfd, c->ufd, &c->up, &c->bytes_up, &c->uout, c->down.shut, fin && fd == c->cfd);
    if (r < 0) {
        broken(c, r == SRC_FAILED);             /* up: the client is the source */
        return;
    }
    if (c->out.len == c->out.off && moves(fd, ev, c->ufd, c->cfd))
        r = pump(c->ufd, c->cfd, &c->down, &c->bytes_down, &c->out, c->up.shut, fin && fd == c->ufd);
    if (r < 0) {
        broken(c, r == DST_FAILED);             /* down: the client is the destination */
        return;
    }
    /* A direction can also end without an event of its own: its last buffered bytes went out in
     * the flush above, during an event for the other socket.  Nothing would report it again (it
     * waits for nothing now), so its end is passed on here. */
    end_if_done(c->ufd, &c->up, &c->uout, c->down.shut);
    end_if_done(c->cfd, &c->down, &c->out, c->up.shut);
    if (c->up.shut && c->down.shut) {
        pd_conn_free(c);
        return;
    }
    /* a drained pipe is given back: idle tunnels hold no pipes */
    if (c->up.inpipe == 0 && c->up.pipe[0] >= 0 && c->up.eof)
        pd_pipe_release(&c->up);
    if (c->down.inpipe == 0 && c->down.pipe[0] >= 0 && c->down.eof)
        pd_pipe_release(&c->down);
    if (c->relay < 0 && pd_relay_offer(c))
        return;                        /* moved to a relay loop, which registers it there */
    pd_conn_update(c);
}
