/* Owner of a local socket by its exact 4-tuple, via NETLINK_SOCK_DIAG (DESIGN.md §5.2): the
 * kernel's answer, which a client cannot forge.  Used by proxyd (identity) and by tests. */
#ifndef PS_SOCKDIAG_H
#define PS_SOCKDIAG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* proto: IPPROTO_TCP or IPPROTO_UDP.  src: the client socket's own address (what proxyd sees as
 * the peer); dst: where the client sent it *before* NAT (SO_ORIGINAL_DST for redirected
 * connections).  Both the same family.  Returns 0 with *uid and *inode set, or -1 with errno
 * (ENOENT: no such socket).  Keeps one NETLINK_SOCK_DIAG socket open between calls (close-on-exec;
 * not for concurrent use from several threads). */
int ps_sockdiag_lookup(int proto, const struct sockaddr *src, const struct sockaddr *dst,
                       uid_t *uid, uint64_t *inode);

/* The TCP socket the kernel finds for the connection local <-> remote, as seen from its local end:
 * the connection itself when it exists on this host in any state (exact), else the listener that
 * would take it (not exact).  The kernel reports no inode (0) for a socket that no process holds
 * yet (in a listener's accept queue, half-open, TIME_WAIT), and its uid then says nothing.
 * 0 with *a set, or -1 with errno (ENOENT: nothing on this host). */
struct ps_sockdiag_answer {
    int state;                         /* TCP_ESTABLISHED, ... as the kernel numbers them */
    uid_t uid;
    uint64_t inode;
    bool exact;
};
int ps_sockdiag_tcp_find(const struct sockaddr *local, const struct sockaddr *remote,
                         struct ps_sockdiag_answer *a);

/* sockdiag_dump.c: every TCP listener (proto IPPROTO_TCP) or UDP socket (IPPROTO_UDP) of family
 * AF_INET or AF_INET6 in this network namespace, one cb call each; 0, or -1 with errno. */
struct ps_bound_socket {
    int family, proto;
    uint8_t addr[16];                  /* local address (IPv4 in the first 4 bytes) */
    uint16_t port;                     /* local port, host order */
    uid_t uid;
    uint64_t inode;
    bool has_mark;                     /* the kernel tells only CAP_NET_ADMIN */
    uint32_t mark;                     /* SO_MARK */
};
typedef void (*ps_bound_cb)(void *arg, const struct ps_bound_socket *s);
int ps_sockdiag_dump_bound(int family, int proto, ps_bound_cb cb, void *arg);

#endif
