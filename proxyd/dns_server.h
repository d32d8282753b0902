/* Policy DNS of sandbox-proxyd (DESIGN.md §5.3): UDP and TCP listeners on [Proxy] DNSListen=.
 * A query is answered only for a sandboxed account and only for a name its profile allows (or
 * inference.local for a profile with models): A gets a synthetic address, AAAA and other types an
 * empty NOERROR answer.  Everything else gets REFUSED, and no upstream query is ever sent for it.
 *
 * Lifecycle, called by the core (main.c) on the proxyd loop:
 *   dns_server_start()  after pd->loop and pd->conf exist.  Creates pd->synth and pd->resolver
 *                       when they are NULL (the connect path uses both), then binds every
 *                       DNSListen= address for UDP and TCP.  0, or -1 with the reason logged.
 *   dns_server_reload() after a valid SIGHUP reload (pd->conf already swapped): rebinds the
 *                       listeners when DNSListen= changed, reconfigures the upstream servers of
 *                       pd->resolver when Resolver= changed, and replaces pd->synth when
 *                       SyntheticRange= changed.  Queries read pd->conf each time, so profile
 *                       changes need nothing more.  0, or -1 (old listeners kept).
 *   dns_server_stop()   closes the listeners and open TCP connections (not synth/resolver;
 *                       the core frees those with synth_free()/resolver_free() at exit). */
#ifndef PD_DNS_SERVER_H
#define PD_DNS_SERVER_H

#include "common/config.h"
#include "proxyd/proxyd.h"

int dns_server_start(struct proxyd *d, const struct ps_config *cfg);
int dns_server_reload(struct proxyd *d, const struct ps_config *cfg);
void dns_server_stop(void);

#endif
