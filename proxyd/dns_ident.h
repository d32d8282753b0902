/* Who sent a DNS query (DESIGN.md §5.2), for policy DNS.
 *
 * TCP: the accepted socket's pre-NAT destination (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST, or its
 * own address when it was not redirected) completes the exact 4-tuple for ps_sockdiag_lookup().
 *
 * UDP has no equivalent, which is why this file exists:
 *  - the socket option SO_ORIGINAL_DST is implemented for TCP and SCTP only (ENOPROTOOPT);
 *  - IP_RECVORIGDSTADDR reports the datagram's destination *after* nat redirect (it is meant for
 *    TPROXY, where nothing is rewritten), i.e. our own listen address;
 *  - conntrack over netlink would know the original tuple, but needs CAP_NET_ADMIN, which proxyd
 *    has dropped by the time it serves queries;
 *  - an exact sock_diag lookup with a wildcard destination finds only *unconnected* client sockets,
 *    and glibc, dig and most stub resolvers connect() their UDP socket to the server they picked;
 *    and the kernel's exact lookup returns one best match, hiding a second owner of the same port.
 * So for UDP we dump every UDP socket bound to the datagram's source port (a port filter runs in
 * the kernel), require one whose local address is the source address or a wildcard, and accept
 * the answer only when every socket on that port, whatever its address, belongs to one UID.  Two
 * owners (SO_REUSEADDR sharing, or a socket on another local address, which can send from this
 * one with IP_PKTINFO) mean "ambiguous", and the query is refused.  No privilege is needed.
 * What the socket table cannot show is a socket that sent and was closed before the dump (it
 * shared the port with SO_REUSEADDR, so the other owner must have set that too).  So when the
 * ruleset is loaded, a sandboxed account's DNS datagrams also carry its UID as their mark (the
 * egress chain sets it from meta skuid, through the map uidmark, since nft 1.0.6 refuses to set a
 * mark from skuid directly), read with SO_RCVMARK: that identity needs no socket at all.  DNS over
 * TCP has no such gap. */
#ifndef PD_DNS_IDENT_H
#define PD_DNS_IDENT_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* 0 with *uid set; -1 with errno: ENOENT (no such socket), ENOTUNIQ (sockets of more than one
 * owner share the source port), or the netlink error.  mark: the datagram's mark (SO_RCVMARK), 0
 * for none; the ruleset stamps a sandboxed sender's DNS datagrams with its UID, and then that is
 * the answer unless a socket of another owner holds the port. */
int dns_ident_udp(const struct sockaddr_storage *peer, uint32_t mark, uid_t *uid);

/* fd: the accepted TCP connection; peer: its remote address.  orig_dst (may be NULL) receives the
 * pre-NAT destination used for the lookup.  0 with *uid set, or -1 with errno. */
int dns_ident_tcp(int fd, const struct sockaddr_storage *peer, struct sockaddr_storage *orig_dst,
                  uid_t *uid);

#endif
