/* Owner of a local socket by its exact 4-tuple, via NETLINK_SOCK_DIAG (DESIGN.md §5.2): the
 * kernel's answer, which a client cannot forge.  Used by proxyd (identity) and by tests. */
#ifndef PS_SOCKDIAG_H
#define PS_SOCKDIAG_H

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

#endif
