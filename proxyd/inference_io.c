/* Byte buffers and a non-blocking socket that may carry TLS, for inference.local.  The socket
 * remembers which epoll event its last blocked read or write waits for: with TLS a read may need
 * the socket writable and a write readable. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include "common/util.h"
#include "proxyd/inference_conn.h"

char *inf_buf_space(struct inf_buf *b, size_t n)
{
    if (b->off && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + n > b->cap) {
        if (b->off) {                                /* reclaim consumed bytes first */
            memmove(b->p, b->p + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        if (b->len + n > b->cap) {
            size_t cap = b->cap ? b->cap : 4096;
            while (cap < b->len + n)
                cap *= 2;
            b->p = ps_xrealloc(b->p, cap, 1);
            b->cap = cap;
        }
    }
    return b->p + b->len;
}

void inf_buf_commit(struct inf_buf *b, size_t n)
{
    b->len += n;
}

void inf_buf_add(struct inf_buf *b, const void *d, size_t n)
{
    if (!n)
        return;
    memcpy(inf_buf_space(b, n), d, n);
    b->len += n;
}

void inf_buf_printf(struct inf_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    char *p = inf_buf_space(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

size_t inf_buf_used(const struct inf_buf *b)
{
    return b->len - b->off;
}

const char *inf_buf_data(const struct inf_buf *b)
{
    return b->p ? b->p + b->off : "";
}

void inf_buf_consume(struct inf_buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

void inf_buf_reset(struct inf_buf *b)
{
    b->off = b->len = 0;
}

void inf_buf_free(struct inf_buf *b)
{
    if (b->p)
        OPENSSL_cleanse(b->p, b->cap);   /* request buffers held a backend key */
    free(b->p);
    memset(b, 0, sizeof *b);
}

static ssize_t ssl_result(struct inf_io *io, int rc, bool reading)
{
    int e = SSL_get_error(io->ssl, rc);
    uint32_t *want = reading ? &io->rd_want : &io->wr_want;
    bool *blocked = reading ? &io->rd_blocked : &io->wr_blocked;
    switch (e) {
    case SSL_ERROR_WANT_READ:
        *want = EPOLLIN;
        *blocked = true;
        return INF_IO_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        *want = EPOLLOUT;
        *blocked = true;
        return INF_IO_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        ERR_clear_error();
        return INF_IO_ERR;
    }
}

ssize_t inf_io_read(struct inf_io *io, void *buf, size_t n)
{
    io->rd_blocked = false;
    if (io->ssl) {
        ERR_clear_error();
        size_t got = 0;
        int rc = SSL_read_ex(io->ssl, buf, n, &got);
        if (rc == 1)
            return (ssize_t)got;
        return ssl_result(io, rc, true);
    }
    ssize_t r = recv(io->fd, buf, n, 0);
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        io->rd_want = EPOLLIN;
        io->rd_blocked = true;
        return INF_IO_AGAIN;
    }
    return INF_IO_ERR;
}

ssize_t inf_io_write(struct inf_io *io, const void *buf, size_t n)
{
    io->wr_blocked = false;
    if (io->ssl) {
        ERR_clear_error();
        size_t put = 0;
        int rc = SSL_write_ex(io->ssl, buf, n, &put);
        if (rc == 1)
            return (ssize_t)put;
        ssize_t r = ssl_result(io, rc, false);
        return r == 0 ? INF_IO_ERR : r;
    }
    ssize_t r = send(io->fd, buf, n, MSG_NOSIGNAL);
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        io->wr_want = EPOLLOUT;
        io->wr_blocked = true;
        return INF_IO_AGAIN;
    }
    return INF_IO_ERR;
}

int inf_io_handshake(struct inf_io *io)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(io->ssl);
    if (rc == 1) {
        io->rd_blocked = false;
        return 1;
    }
    ssize_t r = ssl_result(io, rc, true);
    return r == INF_IO_AGAIN ? 0 : -1;
}

int inf_io_flush(struct inf_io *io, struct inf_buf *b)
{
    while (inf_buf_used(b)) {
        ssize_t w = inf_io_write(io, inf_buf_data(b), inf_buf_used(b));
        if (w == INF_IO_AGAIN)
            return 0;
        if (w < 0)
            return -1;
        inf_buf_consume(b, (size_t)w);
    }
    return 0;
}
