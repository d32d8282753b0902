/* This host's own addresses, read from its interfaces, for the address classes (DESIGN.md §5.3:
 * "never allowed by a name rule: ... proxyd's own addresses").  proxyd connects upstream as its
 * own, unsteered account, so a connection to one of them reaches every service of this host bound
 * to 0.0.0.0 or [::]: ps_addr_classify() counts them as loopback once they are loaded.  proxyd
 * reloads them every few seconds; sandboxctl decide once, so that both give the same answer. */
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <syslog.h>
#include "common/policy.h"

/* Loopback and link-local addresses are never reached through a name or a public rule anyway;
 * a host with hundreds of interfaces has one fe80:: address on each. */
static bool already_closed(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        return (a >> 24) == 127 || (a >> 16) == 0xa9fe;
    }
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a6) || IN6_IS_ADDR_LINKLOCAL(a6);
}

int ps_addr_load_local(void)
{
    struct ifaddrs *ifa;
    if (getifaddrs(&ifa) < 0)
        return -1;                        /* the last set stays: an empty one would open what was closed */
    struct sockaddr_storage addrs[PS_MAX_LOCAL_ADDRS];
    size_t n = 0;
    bool truncated = false;
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
        if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
            continue;
        if (already_closed(i->ifa_addr))
            continue;                     /* room for the ones that matter on a host of many veths */
        if (n == PS_MAX_LOCAL_ADDRS) {
            truncated = true;
            break;
        }
        memset(&addrs[n], 0, sizeof addrs[n]);
        memcpy(&addrs[n], i->ifa_addr, i->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                                          : sizeof(struct sockaddr_in6));
        n++;
    }
    freeifaddrs(ifa);
    static bool warned;
    if (truncated && !warned) {
        warned = true;
        syslog(LOG_WARNING, "more than %d local addresses: the rest are not classified as this host's",
               PS_MAX_LOCAL_ADDRS);
    }
    ps_addr_set_local(addrs, n);
    return 0;
}
