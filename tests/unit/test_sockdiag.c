/* ps_sockdiag_lookup (common/sockdiag.c) against real kernel sockets on loopback: TCP and UDP,
 * IPv4, IPv6 and dual-stack (IPv4-mapped), the owner UID and the inode must be the client
 * socket's.  When the test runs as root, the client sockets are created with a different fsuid,
 * so a lookup that returned the caller's UID (or the server's socket) would fail. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sockdiag.h"

#define OWNER_UID 59301   /* used only as a socket owner, never a login */

static uid_t expected_uid(void)
{
    return getuid() == 0 ? OWNER_UID : getuid();
}

/* socket() owned by expected_uid(): the kernel stamps the fsuid at creation. */
static int owned_socket(int family, int type)
{
    if (getuid() == 0)
        setfsuid(OWNER_UID);
    int fd = socket(family, type | SOCK_CLOEXEC, 0);
    if (getuid() == 0)
        setfsuid(0);
    assert_true(fd >= 0);
    return fd;
}

static void addr_of(int family, const char *ip, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
        *len = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
        *len = sizeof *sin6;
    }
}

static int bound_server(int family, int type, const char *ip, struct sockaddr_storage *ss, socklen_t *len)
{
    int s = socket(family, type | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    addr_of(family, ip, ss, len);
    assert_int_equal(bind(s, (struct sockaddr *)ss, *len), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)ss, len), 0);
    if (type == SOCK_STREAM)
        assert_int_equal(listen(s, 4), 0);
    return s;
}

static uint64_t inode_of(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return st.st_ino;
}

/* Connect a client of client_family to the server (whose address is server_ip), and check that
 * the lookup of (client local, server) finds the client. */
static void check_tcp(int client_family, int server_family, const char *server_ip,
                      const char *connect_ip)
{
    struct sockaddr_storage srv, to, local;
    socklen_t srvlen, tolen, locallen = sizeof local;
    int s = bound_server(server_family, SOCK_STREAM, server_ip, &srv, &srvlen);
    addr_of(client_family, connect_ip, &to, &tolen);
    uint16_t port = server_family == AF_INET ? ((struct sockaddr_in *)&srv)->sin_port
                                             : ((struct sockaddr_in6 *)&srv)->sin6_port;
    if (client_family == AF_INET) ((struct sockaddr_in *)&to)->sin_port = port;
    else ((struct sockaddr_in6 *)&to)->sin6_port = port;

    int c = owned_socket(client_family, SOCK_STREAM);
    assert_int_equal(connect(c, (struct sockaddr *)&to, tolen), 0);
    int a = accept(s, NULL, NULL);
    assert_true(a >= 0);

    /* What proxyd has: the accepted socket's peer and its own address. */
    struct sockaddr_storage peer, me;
    socklen_t peerlen = sizeof peer, melen = sizeof me;
    assert_int_equal(getpeername(a, (struct sockaddr *)&peer, &peerlen), 0);
    assert_int_equal(getsockname(a, (struct sockaddr *)&me, &melen), 0);
    uid_t uid = (uid_t)-1;
    uint64_t ino = 0;
    assert_int_equal(ps_sockdiag_lookup(IPPROTO_TCP, (struct sockaddr *)&peer, (struct sockaddr *)&me,
                                        &uid, &ino), 0);
    assert_int_equal(uid, expected_uid());
    assert_int_equal(ino, inode_of(c));

    /* The client's own view gives the same answer when the families agree. */
    assert_int_equal(getsockname(c, (struct sockaddr *)&local, &locallen), 0);
    if (client_family == server_family) {
        assert_int_equal(ps_sockdiag_lookup(IPPROTO_TCP, (struct sockaddr *)&local,
                                            (struct sockaddr *)&to, &uid, &ino), 0);
        assert_int_equal(ino, inode_of(c));
    }
    /* Same addresses, wrong destination port: no such socket. */
    if (server_family == AF_INET) ((struct sockaddr_in *)&me)->sin_port ^= htons(1);
    else ((struct sockaddr_in6 *)&me)->sin6_port ^= htons(1);
    errno = 0;
    assert_int_equal(ps_sockdiag_lookup(IPPROTO_TCP, (struct sockaddr *)&peer, (struct sockaddr *)&me,
                                        &uid, &ino), -1);
    assert_int_equal(errno, ENOENT);
    close(a);
    close(c);
    close(s);
}

static void tcp_ipv4(void **state) { (void)state; check_tcp(AF_INET, AF_INET, "127.0.0.1", "127.0.0.1"); }
static void tcp_ipv6(void **state) { (void)state; check_tcp(AF_INET6, AF_INET6, "::1", "::1"); }
/* A dual-stack IPv6 client reaching an IPv4 listener: proxyd sees an IPv4 peer. */
static void tcp_mapped(void **state) { (void)state; check_tcp(AF_INET6, AF_INET, "127.0.0.1", "::ffff:127.0.0.1"); }

/* UDP: a connected client and an unconnected one, each sends a datagram; the server's view
 * (sender address from recvfrom, its own address) identifies the sender. */
static void check_udp(int family, const char *ip, int do_connect)
{
    struct sockaddr_storage srv, from;
    socklen_t srvlen, fromlen = sizeof from;
    int s = bound_server(family, SOCK_DGRAM, ip, &srv, &srvlen);
    int c = owned_socket(family, SOCK_DGRAM);
    if (do_connect) {
        assert_int_equal(connect(c, (struct sockaddr *)&srv, srvlen), 0);
        assert_int_equal(send(c, "x", 1, 0), 1);
    } else {
        assert_int_equal(sendto(c, "x", 1, 0, (struct sockaddr *)&srv, srvlen), 1);
    }
    char b;
    assert_int_equal(recvfrom(s, &b, 1, 0, (struct sockaddr *)&from, &fromlen), 1);
    uid_t uid = (uid_t)-1;
    uint64_t ino = 0;
    assert_int_equal(ps_sockdiag_lookup(IPPROTO_UDP, (struct sockaddr *)&from, (struct sockaddr *)&srv,
                                        &uid, &ino), 0);
    assert_int_equal(uid, expected_uid());
    assert_int_equal(ino, inode_of(c));
    /* TCP has no such socket. */
    assert_int_equal(ps_sockdiag_lookup(IPPROTO_TCP, (struct sockaddr *)&from, (struct sockaddr *)&srv,
                                        &uid, &ino), -1);
    assert_int_equal(errno, ENOENT);
    close(c);
    /* Gone once closed. */
    assert_int_equal(ps_sockdiag_lookup(IPPROTO_UDP, (struct sockaddr *)&from, (struct sockaddr *)&srv,
                                        &uid, &ino), -1);
    assert_int_equal(errno, ENOENT);
    close(s);
}

static void udp_ipv4_connected(void **state) { (void)state; check_udp(AF_INET, "127.0.0.1", 1); }
static void udp_ipv4_unconnected(void **state) { (void)state; check_udp(AF_INET, "127.0.0.1", 0); }
static void udp_ipv6_connected(void **state) { (void)state; check_udp(AF_INET6, "::1", 1); }
static void udp_ipv6_unconnected(void **state) { (void)state; check_udp(AF_INET6, "::1", 0); }

/* No connection has the tuple, but a LISTENING socket holds the client's port (a dev server on
 * 0.0.0.0:P, a rewritten source port landing on it, a remote client choosing P): the kernel's
 * lookup falls back to that listener, and its owner must not be taken for the client. */
static void listener_on_client_port_is_not_the_client(void **state)
{
    (void)state;
    struct sockaddr_storage lst, srv, from;
    socklen_t ll, sl;
    int l = bound_server(AF_INET, SOCK_STREAM, "0.0.0.0", &lst, &ll);
    int s = bound_server(AF_INET, SOCK_STREAM, "127.0.0.1", &srv, &sl);
    addr_of(AF_INET, "127.0.0.1", &from, &sl);
    ((struct sockaddr_in *)&from)->sin_port = ((struct sockaddr_in *)&lst)->sin_port;
    uid_t uid = 4242;
    uint64_t ino = 4242;
    errno = 0;
    assert_int_equal(ps_sockdiag_lookup(IPPROTO_TCP, (struct sockaddr *)&from, (struct sockaddr *)&srv,
                                        &uid, &ino), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(uid, 4242);
    close(s);
    close(l);
}

/* After the client closed first, its socket is in TIME_WAIT: owned by nobody (uid 0, inode 0),
 * so "not found", never "root". */
static void time_wait_is_not_found(void **state)
{
    (void)state;
    struct sockaddr_storage srv, peer, me;
    socklen_t sl, pl = sizeof peer, ml = sizeof me;
    int s = bound_server(AF_INET, SOCK_STREAM, "127.0.0.1", &srv, &sl);
    int c = owned_socket(AF_INET, SOCK_STREAM);
    assert_int_equal(connect(c, (struct sockaddr *)&srv, sl), 0);
    int a = accept(s, NULL, NULL);
    assert_true(a >= 0);
    assert_int_equal(getpeername(a, (struct sockaddr *)&peer, &pl), 0);
    assert_int_equal(getsockname(a, (struct sockaddr *)&me, &ml), 0);
    close(c);                                   /* FIN_WAIT2 ... */
    char b;
    assert_int_equal(read(a, &b, 1), 0);
    close(a);                                   /* ... and TIME_WAIT once our FIN is acked */
    uid_t uid = 4242;
    uint64_t ino;
    int r = -1;
    for (int i = 0; i < 100; i++) {             /* the last ACK is processed asynchronously */
        errno = 0;
        r = ps_sockdiag_lookup(IPPROTO_TCP, (struct sockaddr *)&peer, (struct sockaddr *)&me, &uid, &ino);
        if (r < 0)
            break;
        usleep(10000);
    }
    assert_int_equal(r, -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(uid, 4242);
    close(s);
}

static void bad_arguments(void **state)
{
    (void)state;
    struct sockaddr_storage a4, a6;
    socklen_t l;
    addr_of(AF_INET, "127.0.0.1", &a4, &l);
    addr_of(AF_INET6, "::1", &a6, &l);
    ((struct sockaddr_in *)&a4)->sin_port = htons(1);
    uid_t uid;
    uint64_t ino;
    assert_int_equal(ps_sockdiag_lookup(IPPROTO_TCP, (struct sockaddr *)&a4, (struct sockaddr *)&a6,
                                        &uid, &ino), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(ps_sockdiag_lookup(IPPROTO_SCTP, (struct sockaddr *)&a4, (struct sockaddr *)&a4,
                                        &uid, &ino), -1);
    assert_int_equal(errno, EPROTONOSUPPORT);
    struct sockaddr un = { .sa_family = AF_UNIX };
    assert_int_equal(ps_sockdiag_lookup(IPPROTO_TCP, &un, &un, &uid, &ino), -1);
    assert_int_equal(errno, EAFNOSUPPORT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tcp_ipv4),
        cmocka_unit_test(tcp_ipv6),
        cmocka_unit_test(tcp_mapped),
        cmocka_unit_test(listener_on_client_port_is_not_the_client),
        cmocka_unit_test(time_wait_is_not_found),
        cmocka_unit_test(udp_ipv4_connected),
        cmocka_unit_test(udp_ipv4_unconnected),
        cmocka_unit_test(udp_ipv6_connected),
        cmocka_unit_test(udp_ipv6_unconnected),
        cmocka_unit_test(bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
