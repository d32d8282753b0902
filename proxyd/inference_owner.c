/* Whom an http:// backend's key goes to.  A backend on this host listens on a port that any local
 * account can bind while the backend is down or restarting; over plain http nothing else tells the
 * real backend from a squatter, and the squatter would receive the API key with the first request.
 * So before the request is sent, the kernel is asked (sock_diag, the exact 4-tuple) who holds the
 * other end of the connection: when it is on this host it must belong to root, to proxyd's own
 * user, or to BackendUser=.  https needs no such check: the certificate names the backend.
 * Sandboxed accounts cannot squat either way (their replies are refused, DESIGN.md §5.1); this is
 * about local accounts that are not sandboxed.
 *
 * The other end has an owner only once a process has accept()ed it: until then the kernel reports
 * no inode and a uid that means nothing (the request would wait in the squatter's accept queue just
 * as well), so the check waits for it (INF_OWNER_PENDING). */
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include "common/policy.h"
#include "common/sockdiag.h"
#include "proxyd/inference_conn.h"

enum inf_owner inf_backend_owner(int fd, const struct ps_backend *be, int64_t *owner_uid)
{
    struct sockaddr_storage me, peer;
    socklen_t ml = sizeof me, pl = sizeof peer;
    *owner_uid = -1;
    if (getsockname(fd, (struct sockaddr *)&me, &ml) < 0 ||
        getpeername(fd, (struct sockaddr *)&peer, &pl) < 0)
        return INF_OWNER_UNKNOWN;
    struct ps_sockdiag_answer a;
    /* The other end's socket has the backend's address as its own and ours as its peer. */
    if (ps_sockdiag_tcp_find((struct sockaddr *)&peer, (struct sockaddr *)&me, &a) < 0) {
        if (errno != ENOENT)
            return INF_OWNER_UNKNOWN;
        /* No socket found: a remote backend, unless the address is this host's own after all.
         * sock_diag's lookup does not find every local socket (not one bound to a device, which
         * any account may do to a socket it accepted), so ask the routing table, not the
         * socket table, whether it is.  A local end that cannot be found is never trusted. */
        switch (ps_route_is_local((struct sockaddr *)&peer)) {
        case 0:
            return INF_OWNER_OK;
        case 1:
            return INF_OWNER_PENDING;
        default:
            return INF_OWNER_UNKNOWN;
        }
    }
    if (!a.exact || a.inode == 0) {
        /* Only a listener, or the connection not yet accepted (or already gone to TIME_WAIT,
         * which the connect deadline then ends). */
        return INF_OWNER_PENDING;
    }
    if (a.uid == 0 || a.uid == geteuid() || (be->has_owner && a.uid == be->owner_uid))
        return INF_OWNER_OK;
    *owner_uid = a.uid;
    return INF_OWNER_MISMATCH;
}
