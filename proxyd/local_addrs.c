/* This host's own addresses, for the address classes of DESIGN.md §5.3 ("never allowed by a name
 * rule: ... proxyd's own addresses").  proxyd connects upstream as its own, unsteered account, so
 * a connection to one of them reaches every service of this host bound to 0.0.0.0 or [::]:
 * ps_addr_classify() counts them as loopback (a blanket Allow=0.0.0.0/0 does not open them; a
 * rule naming the address itself can, as for 127.0.0.1).  Interfaces change (DHCP, a VPN coming
 * up), so the set is read again every few seconds and on every reload. */
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <syslog.h>
#include "proxyd/core.h"
#include "common/policy.h"

#define REFRESH_MS 5000u

static struct pd_timer *refresh_timer;

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

void pd_local_addrs_refresh(void)
{
    struct ifaddrs *ifa;
    if (getifaddrs(&ifa) < 0) {
        /* keep the last set: an empty one would open what was closed */
        syslog(LOG_WARNING, "getifaddrs: %m (keeping the last list of this host's addresses)");
        return;
    }
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
}

static void on_refresh(struct pd_loop *l, void *arg)
{
    (void)arg;
    pd_local_addrs_refresh();
    refresh_timer = pd_timer_add(l, REFRESH_MS, on_refresh, NULL);
}

void pd_local_addrs_start(void)
{
    pd_local_addrs_refresh();
    if (!refresh_timer)
        refresh_timer = pd_timer_add(pd->loop, REFRESH_MS, on_refresh, NULL);
}
