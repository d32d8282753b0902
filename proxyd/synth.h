/* Synthetic addresses handed out by policy DNS (DESIGN.md §5.3): (account, name) <-> address in
 * SyntheticRange.  A connection to a synthetic address is a connection to the name that address
 * was handed out for, to the same account only (synth.c says why). */
#ifndef PD_SYNTH_H
#define PD_SYNTH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "common/config.h"

#define SYNTH_RANGE_FULL (-1)   /* every address in use, none unused long enough to reuse */
#define SYNTH_SHARE_FULL (-2)   /* the account holds its whole share, none unused long enough */

struct synth *synth_new(const struct ps_cidr *range);
void synth_free(struct synth *s);
/* The address for a normalised name asked by account uid (the same account and name always get the
 * same address while it is remembered).  0, SYNTH_RANGE_FULL or SYNTH_SHARE_FULL. */
int synth_assign(struct synth *s, uid_t uid, const char *name, struct in_addr *out);
/* The same at a given time (CLOCK_MONOTONIC, ms): for tests of reuse. */
int synth_assign_at(struct synth *s, uid_t uid, const char *name, struct in_addr *out, uint64_t now_ms);
/* Does the account hold an address for the name already (answering it again takes nothing)? */
bool synth_has_name(const struct synth *s, uid_t uid, const char *name);
/* The name behind a synthetic address for account uid; false when the address was never handed
 * out to that account. */
bool synth_lookup(const struct synth *s, uid_t uid, struct in_addr addr, char name[PS_MAX_NAME + 1]);
/* How many names are remembered (for tests and status). */
size_t synth_count(const struct synth *s);

#endif
