/* A /dev/log for the test, demo and bench worlds: receives syslog datagrams and appends them, one
 * per line, to a file that tests grep (pam_syslog lines, proxyd decisions).
 *
 * usage: syslog_catcher SOCKET_PATH OUT_FILE
 *
 * It is C rather than a script because in the bench world it receives two decision records per
 * proxied tunnel, and a Python receiver spent ~6% of the 2-vCPU machine doing so: CPU taken from
 * whichever proxy row logs (only proxyd does), not a cost of the proxy itself.  A batch of
 * datagrams is taken with one recvmmsg(2) and written with one write(2).  Embedded newlines become
 * spaces and trailing NULs/newlines are dropped, so that one datagram is always one line. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define BATCH 32
#define DGRAM_MAX 65536

static char in[BATCH][DGRAM_MAX];
static char out[BATCH * (DGRAM_MAX + 1)];

static size_t append_line(char *dst, const char *msg, size_t len)
{
    while (len > 0 && (msg[len - 1] == '\0' || msg[len - 1] == '\n'))
        len--;
    for (size_t i = 0; i < len; i++)
        dst[i] = msg[i] == '\n' ? ' ' : msg[i];
    dst[len] = '\n';
    return len + 1;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: syslog_catcher SOCKET_PATH OUT_FILE\n");
        return 2;
    }
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(argv[1]) >= sizeof sun.sun_path) {
        fprintf(stderr, "syslog_catcher: socket path too long: %s\n", argv[1]);
        return 2;
    }
    strcpy(sun.sun_path, argv[1]);
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&sun, sizeof sun) < 0 || chmod(argv[1], 0666) < 0) {
        fprintf(stderr, "syslog_catcher: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    int fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "syslog_catcher: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    struct mmsghdr mm[BATCH];
    struct iovec iov[BATCH];
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){ .iov_base = in[i], .iov_len = DGRAM_MAX };
            mm[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
        }
        /* MSG_WAITFORONE: block for the first datagram, then take what is already queued. */
        int n = recvmmsg(s, mm, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "syslog_catcher: recvmmsg: %s\n", strerror(errno));
            return 1;
        }
        size_t len = 0;
        for (int i = 0; i < n; i++)
            len += append_line(out + len, in[i], mm[i].msg_len);
        if (write_all(fd, out, len) < 0) {
            fprintf(stderr, "syslog_catcher: %s: %s\n", argv[2], strerror(errno));
            return 1;
        }
    }
}
