/* proxyd keeps this host's addresses current (common/addr_local.c says why they matter):
 * interfaces change (DHCP, a VPN coming up), so they are read again every few seconds and on
 * every reload. */
#include <syslog.h>
#include "proxyd/core.h"
#include "common/policy.h"

#define REFRESH_MS 5000u

static struct pd_timer *refresh_timer;

void pd_local_addrs_refresh(void)
{
    if (ps_addr_load_local() < 0)
        syslog(LOG_WARNING, "getifaddrs: %m (keeping the last list of this host's addresses)");
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
