/* Identity of DNS clients (proxyd/dns_ident.c) against real sockets: the owner of a UDP source
 * port (connected, unconnected, dual-stack), no owner, two owners sharing a port (refused as
 * ambiguous; needs root to create the second owner), and TCP through ps_sockdiag_lookup. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proxyd/dns_ident.h"

static int udp4(const char *bind_addr, uint16_t port, bool reuse)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, bind_addr, &a.sin_addr);
    if (reuse) setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    return s;
}

static struct sockaddr_storage local_of(int s)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    getsockname(s, (struct sockaddr *)&ss, &len);
    return ss;
}

static struct sockaddr_storage v4(const char *addr, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, addr, &a->sin_addr);
    return ss;
}

static void owner_of_connected_and_unconnected(void **state)
{
    int s = udp4("127.0.0.1", 0, false);
    struct sockaddr_storage me = local_of(s);
    uid_t uid = 12345;
    assert_int_equal(dns_ident_udp(&me, 0, &uid), 0);          /* unconnected */
    assert_int_equal(uid, getuid());
    struct sockaddr_storage srv = v4("127.0.0.1", 53);
    assert_int_equal(connect(s, (struct sockaddr *)&srv, sizeof(struct sockaddr_in)), 0);
    uid = 12345;
    assert_int_equal(dns_ident_udp(&me, 0, &uid), 0);          /* connected elsewhere */
    assert_int_equal(uid, getuid());
    close(s);
    errno = 0;
    assert_int_equal(dns_ident_udp(&me, 0, &uid), -1);         /* gone */
    assert_int_equal(errno, ENOENT);
}

static void wildcard_and_dual_stack_sockets(void **state)
{
    int s = udp4("0.0.0.0", 0, false);                     /* sends from 127.0.0.1 too */
    struct sockaddr_storage me = local_of(s);
    struct sockaddr_storage as_seen = v4("127.0.0.1", ntohs(((struct sockaddr_in *)&me)->sin_port));
    uid_t uid;
    assert_int_equal(dns_ident_udp(&as_seen, 0, &uid), 0);
    close(s);

    int s6 = socket(AF_INET6, SOCK_DGRAM, 0), zero = 0;
    setsockopt(s6, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    struct sockaddr_in6 any6 = { .sin6_family = AF_INET6 };
    assert_int_equal(bind(s6, (struct sockaddr *)&any6, sizeof any6), 0);
    struct sockaddr_storage me6 = local_of(s6);
    as_seen = v4("127.0.0.1", ntohs(((struct sockaddr_in6 *)&me6)->sin6_port));
    assert_int_equal(dns_ident_udp(&as_seen, 0, &uid), 0);     /* a v4 datagram from a v6 socket */
    assert_int_equal(uid, getuid());
    close(s6);
}

static void other_address_same_port_is_not_the_sender(void **state)
{
    /* A socket bound to 127.0.0.2:P cannot have sent a datagram from 127.0.0.1:P. */
    int s = udp4("127.0.0.2", 0, false);
    struct sockaddr_storage me = local_of(s);
    struct sockaddr_storage other = v4("127.0.0.1", ntohs(((struct sockaddr_in *)&me)->sin_port));
    uid_t uid;
    errno = 0;
    assert_int_equal(dns_ident_udp(&other, 0, &uid), -1);
    assert_int_equal(errno, ENOENT);
    close(s);
}

/* The spoof: another account's socket on 127.0.0.2:P sends from 127.0.0.1:P with IP_PKTINFO
 * (unprivileged), where our socket is bound.  The datagram really arrives from 127.0.0.1:P, and
 * must not be credited to us: two owners on the port, refused. */
static void source_address_chosen_with_pktinfo_is_ambiguous(void **state)
{
    (void)state;
    if (geteuid() != 0) { skip(); return; }
    int victim = udp4("127.0.0.1", 0, false);
    struct sockaddr_storage vaddr = local_of(victim);
    uint16_t port = ntohs(((struct sockaddr_in *)&vaddr)->sin_port);
    int srv = udp4("127.0.0.1", 0, false);
    struct sockaddr_storage srv_addr = local_of(srv);
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        alarm(10);                                           /* never outlive a failed parent */
        if (setresgid(59798, 59798, 59798) < 0 || setresuid(59798, 59798, 59798) < 0) _exit(2);
        int t = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
        inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
        if (bind(t, (struct sockaddr *)&a, sizeof a) < 0) _exit(3);
        char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))] = { 0 };
        struct iovec iov = { .iov_base = "q", .iov_len = 1 };
        struct msghdr m = { .msg_name = &srv_addr, .msg_namelen = sizeof(struct sockaddr_in),
                            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = IPPROTO_IP;
        cm->cmsg_type = IP_PKTINFO;
        cm->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
        struct in_pktinfo pi = { 0 };
        inet_pton(AF_INET, "127.0.0.1", &pi.ipi_spec_dst);
        memcpy(CMSG_DATA(cm), &pi, sizeof pi);
        if (sendmsg(t, &m, 0) != 1) _exit(4);
        if (write(ready[1], "r", 1) != 1) _exit(5);
        if (read(go[0], &c, 1) < 0) _exit(6);
        _exit(0);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    assert_int_equal(recvfrom(srv, &c, 1, 0, (struct sockaddr *)&from, &fl), 1);
    char a[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &((struct sockaddr_in *)&from)->sin_addr, a, sizeof a);
    assert_string_equal(a, "127.0.0.1");                      /* the spoof works at the IP level */
    assert_int_equal(ntohs(((struct sockaddr_in *)&from)->sin_port), port);
    uid_t uid = 12345;
    errno = 0;
    assert_int_equal(dns_ident_udp(&from, 0, &uid), -1);
    assert_int_equal(errno, ENOTUNIQ);
    assert_int_equal(uid, 12345);
    assert_int_equal(write(go[1], "g", 1), 1);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(dns_ident_udp(&from, 0, &uid), 0);          /* the other owner gone: ours */
    assert_int_equal(uid, 0);
    close(srv);
    close(victim);
}

/* A datagram marked with its sender's UID (the ruleset does it) is that UID's even when no socket
 * is left on the port (it sent and closed), and never when another owner's socket holds it. */
static void mark_is_the_sender_unless_another_owner_holds_the_port(void **state)
{
    (void)state;
    int s = udp4("127.0.0.1", 0, false);
    struct sockaddr_storage me = local_of(s);
    uid_t uid = 12345;
    close(s);                                                 /* the sender is gone */
    assert_int_equal(dns_ident_udp(&me, 0, &uid), -1);        /* unmarked: nobody to ask */
    assert_int_equal(dns_ident_udp(&me, 59797, &uid), 0);     /* marked: the sender's UID */
    assert_int_equal(uid, 59797);
    s = udp4("127.0.0.1", ntohs(((struct sockaddr_in *)&me)->sin_port), false);
    uid = 12345;
    errno = 0;
    assert_int_equal(dns_ident_udp(&me, 59797, &uid), -1);    /* our socket holds the port */
    assert_int_equal(errno, ENOTUNIQ);
    assert_int_equal(uid, 12345);
    assert_int_equal(dns_ident_udp(&me, (uint32_t)getuid(), &uid), 0);   /* consistent: fine */
    assert_int_equal(uid, getuid());
    close(s);
}

static void two_owners_are_ambiguous(void **state)
{
    if (geteuid() != 0) { skip(); return; }
    int s = udp4("0.0.0.0", 0, true);
    struct sockaddr_storage me = local_of(s);
    uint16_t port = ntohs(((struct sockaddr_in *)&me)->sin_port);
    int go[2], ready[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) {                                          /* another account, same port */
        char c;
        if (setresgid(59799, 59799, 59799) < 0 || setresuid(59799, 59799, 59799) < 0) _exit(2);
        int t = socket(AF_INET, SOCK_DGRAM, 0), one = 1;
        setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (bind(t, (struct sockaddr *)&a, sizeof a) < 0) _exit(3);
        if (write(ready[1], "r", 1) != 1) _exit(4);
        if (read(go[0], &c, 1) < 0) _exit(5);
        _exit(0);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    struct sockaddr_storage seen = v4("127.0.0.1", port);
    uid_t uid = 12345;
    errno = 0;
    assert_int_equal(dns_ident_udp(&seen, 0, &uid), -1);
    assert_int_equal(errno, ENOTUNIQ);
    assert_int_equal(uid, 12345);                             /* nobody's identity handed out */
    assert_int_equal(write(go[1], "g", 1), 1);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(dns_ident_udp(&seen, 0, &uid), 0);          /* alone again: ours */
    assert_int_equal(uid, 0);
    close(s);
}

static void tcp_connection_owner(void **state)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_storage lo = v4("127.0.0.1", 0);
    assert_int_equal(bind(l, (struct sockaddr *)&lo, sizeof(struct sockaddr_in)), 0);
    assert_int_equal(listen(l, 1), 0);
    struct sockaddr_storage srv = local_of(l);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&srv, sizeof(struct sockaddr_in)), 0);
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    int a = accept(l, (struct sockaddr *)&peer, &plen);
    assert_true(a >= 0);
    uid_t uid = 12345;
    struct sockaddr_storage dst;
    assert_int_equal(dns_ident_tcp(a, &peer, &dst, &uid), 0);
    assert_int_equal(uid, getuid());
    assert_memory_equal(&dst, &srv, sizeof(struct sockaddr_in));   /* not redirected: ourselves */
    close(c);
    close(a);
    close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(owner_of_connected_and_unconnected),
        cmocka_unit_test(wildcard_and_dual_stack_sockets),
        cmocka_unit_test(other_address_same_port_is_not_the_sender),
        cmocka_unit_test(two_owners_are_ambiguous),
        cmocka_unit_test(source_address_chosen_with_pktinfo_is_ambiguous),
        cmocka_unit_test(mark_is_the_sender_unless_another_owner_holds_the_port),
        cmocka_unit_test(tcp_connection_owner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
