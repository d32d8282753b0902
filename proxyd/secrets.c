/* Root-only files handed from the privileged helper to the proxy; see secrets.h. */
#include "proxyd/secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/util.h"

void pd_secret_wipe(unsigned char *data, size_t len)
{
    if (data) {
        OPENSSL_cleanse(data, len);
        free(data);
    }
}

/* Read a regular file of at most PD_SECRET_FILE_MAX bytes.  ENOENT is returned as 1. */
static int read_small_file(const char *path, unsigned char **data, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return e == ENOENT ? 1 : -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    unsigned char *buf = ps_xcalloc(1, PD_SECRET_FILE_MAX + 2);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, PD_SECRET_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            close(fd);
            pd_secret_wipe(buf, PD_SECRET_FILE_MAX + 2);
            return -1;
        }
        if (r == 0 || (n += (size_t)r) > PD_SECRET_FILE_MAX)
            break;
    }
    close(fd);
    if (n > PD_SECRET_FILE_MAX) {
        snprintf(err, errlen, "%s: longer than %u bytes", path, PD_SECRET_FILE_MAX);
        pd_secret_wipe(buf, PD_SECRET_FILE_MAX + 2);
        return -1;
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return 0;
}

static unsigned char *copy_nul(const unsigned char *src, size_t len)
{
    unsigned char *d = ps_xcalloc(1, len + 1);
    memcpy(d, src, len);
    return d;
}

int pd_secret_read(const struct pd_secrets *s, const char *path, unsigned char **data, size_t *len,
                   char *err, size_t errlen)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (strcmp(s->v[i].path, path) == 0) {
            *data = copy_nul(s->v[i].data, s->v[i].len);
            *len = s->v[i].len;
            return 0;
        }
    return read_small_file(path, data, len, err, errlen) == 0 ? 0 : -1;
}

static void push(struct pd_secrets *s, const char *path, size_t plen, unsigned char *data, size_t len)
{
    s->v = ps_xrealloc(s->v, s->n + 1, sizeof *s->v);
    s->v[s->n++] = (struct pd_secret){ .path = ps_xstrndup(path, plen), .data = data, .len = len };
}

int pd_secrets_add_file(struct pd_secrets *s, const char *path, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].path, path) == 0)
            return 0;                               /* two backends sharing one key file */
    if (s->n >= PD_SECRETS_MAX || strlen(path) >= PD_SECRET_PATH_MAX) {
        snprintf(err, errlen, "%s: too many or too long secret file names to hand over", path);
        return -1;
    }
    unsigned char *data;
    size_t len;
    int r = read_small_file(path, &data, &len, err, errlen);
    if (r == 1)
        return 0;
    if (r < 0)
        return -1;
    push(s, path, strlen(path), data, len);
    return 0;
}

static void put16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

size_t pd_secrets_encode(const struct pd_secrets *s, unsigned char *out, size_t cap)
{
    size_t o = 4;
    if (cap < 4 || s->n > PD_SECRETS_MAX)
        return 0;
    put32(out, (uint32_t)s->n);
    for (size_t i = 0; i < s->n; i++) {
        size_t pl = strlen(s->v[i].path);
        if (pl >= PD_SECRET_PATH_MAX || s->v[i].len > PD_SECRET_FILE_MAX || cap - o < 6 + pl + s->v[i].len)
            return 0;
        put16(out + o, (uint16_t)pl);
        memcpy(out + o + 2, s->v[i].path, pl);
        o += 2 + pl;
        put32(out + o, (uint32_t)s->v[i].len);
        memcpy(out + o + 4, s->v[i].data, s->v[i].len);
        o += 4 + s->v[i].len;
    }
    return o;
}

int pd_secrets_decode(struct pd_secrets *s, const unsigned char *in, size_t len)
{
    *s = (struct pd_secrets){ 0 };
    if (len < 4)
        return -1;
    uint32_t n = get32(in);
    size_t o = 4;
    if (n > PD_SECRETS_MAX)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        if (len - o < 2)
            goto bad;
        size_t pl = get16(in + o);
        o += 2;
        if (pl == 0 || pl >= PD_SECRET_PATH_MAX || len - o < pl + 4 || memchr(in + o, 0, pl))
            goto bad;
        const char *path = (const char *)(in + o);
        o += pl;
        size_t dl = get32(in + o);
        o += 4;
        if (dl > PD_SECRET_FILE_MAX || len - o < dl)
            goto bad;
        push(s, path, pl, copy_nul(in + o, dl), dl);
        o += dl;
    }
    if (o != len)
        goto bad;
    return 0;
bad:
    pd_secrets_free(s);
    return -1;
}

void pd_secrets_free(struct pd_secrets *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].path);
        pd_secret_wipe(s->v[i].data, s->v[i].len + 1);
    }
    free(s->v);
    *s = (struct pd_secrets){ 0 };
}
