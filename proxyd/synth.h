/* Synthetic addresses handed out by policy DNS (DESIGN.md §5.3): name <-> address in
 * SyntheticRange.  A transparent connection to a synthetic address is a connection to its name. */
#ifndef PD_SYNTH_H
#define PD_SYNTH_H

#include <netinet/in.h>
#include <stdbool.h>
#include "common/config.h"

struct synth *synth_new(const struct ps_cidr *range);
void synth_free(struct synth *s);
/* The address for a normalised name (the same name always gets the same address while it is
 * remembered).  0, or -1 when the range is exhausted. */
int synth_assign(struct synth *s, const char *name, struct in_addr *out);
/* Does the name hold an address already (answering it again takes nothing from the range)? */
bool synth_has_name(const struct synth *s, const char *name);
/* The name behind a synthetic address; false when the address was never handed out. */
bool synth_lookup(const struct synth *s, struct in_addr addr, char name[PS_MAX_NAME + 1]);
/* How many names are remembered (for tests and status). */
size_t synth_count(const struct synth *s);

#endif
