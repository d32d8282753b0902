/* RequestsPerMinute (DESIGN.md §3.2): a token bucket per UID that holds rpm requests and refills
 * continuously at rpm per minute, so a burst up to rpm passes and the long-run rate is rpm.
 * Kept across config reloads (pd->inference owns it), sized by the accounts that used it. */
#include <stdlib.h>
#include <string.h>
#include "common/util.h"
#include "proxyd/inference_int.h"

/* Tokens are kept in units of 1/60000 of a request, so that a refill of rpm per 60000 ms is an
 * integer rpm per millisecond. */
#define UNIT 60000ull

struct bucket {
    uint32_t uid;
    unsigned rpm;
    uint64_t tokens;          /* in UNITs */
    uint64_t last_ms;
};

struct inf_rate {
    struct bucket *v;
    size_t n, cap;
};

struct inf_rate *inf_rate_new(void)
{
    return ps_xcalloc(1, sizeof(struct inf_rate));
}

void inf_rate_free(struct inf_rate *r)
{
    if (!r)
        return;
    free(r->v);
    free(r);
}

static struct bucket *find(struct inf_rate *r, uint32_t uid)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].uid == uid)
            return &r->v[i];
    return NULL;
}

unsigned inf_rate_take(struct inf_rate *r, uint32_t uid, unsigned rpm, uint64_t now_ms)
{
    if (rpm == 0)
        return 0;
    struct bucket *b = find(r, uid);
    uint64_t full = (uint64_t)rpm * UNIT;
    if (!b) {
        b = ps_vec_push(&r->v, &r->n, &r->cap, sizeof *b);
        b->uid = uid;
        b->rpm = rpm;
        b->tokens = full;
        b->last_ms = now_ms;
    }
    if (b->rpm != rpm) {                 /* the profile changed on reload: rescale, keep the debt */
        b->tokens = b->tokens > full ? full : b->tokens;
        b->rpm = rpm;
    }
    if (now_ms > b->last_ms) {
        uint64_t add = (now_ms - b->last_ms) * (uint64_t)rpm;
        b->tokens = add >= full - b->tokens ? full : b->tokens + add;
        b->last_ms = now_ms;
    }
    if (b->tokens >= UNIT) {
        b->tokens -= UNIT;
        return 0;
    }
    uint64_t missing = UNIT - b->tokens;             /* in UNITs; rpm UNITs arrive per ms */
    uint64_t ms = (missing + rpm - 1) / rpm;
    uint64_t s = (ms + 999) / 1000;
    return s ? (unsigned)s : 1;
}
