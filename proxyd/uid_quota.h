/* A per-account budget that refills over time (a token bucket per UID), so that one account cannot
 * use up a resource shared by all: policy DNS's synthetic addresses, for one.  Pure (the caller
 * passes the time), for unit tests. */
#ifndef PD_UID_QUOTA_H
#define PD_UID_QUOTA_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define UID_QUOTA_SLOTS 1024u       /* accounts tracked at once; see uid_quota_take */

struct uid_quota;

/* capacity tokens per account, refilled at capacity per window_ms. */
struct uid_quota *uid_quota_new(unsigned capacity, uint64_t window_ms);
void uid_quota_free(struct uid_quota *q);
/* Take one token of uid's budget at time now_ms: false when it is spent. */
bool uid_quota_take(struct uid_quota *q, uid_t uid, uint64_t now_ms);

#endif
