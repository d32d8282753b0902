/* Per-account token buckets (see uid_quota.h).  A fixed open-addressed table: an account's slot is
 * found by probing a few places from its hash; when all are held by other accounts, the one whose
 * bucket has refilled completely is taken over (its state is the same as a fresh one), and when
 * none has, the account is let through: this is fairness between accounts, not a security
 * boundary, and an attacker cannot make a victim's budget shrink by crowding the table. */
#include "proxyd/uid_quota.h"

#include <stdlib.h>

#define PROBES 8u

struct slot {
    bool used;
    uid_t uid;
    uint64_t tokens_milli;          /* thousandths of a token, for a smooth refill */
    uint64_t at_ms;                 /* when tokens_milli was last brought up to date */
};

struct uid_quota {
    uint64_t cap_milli, window_ms;
    struct slot slots[UID_QUOTA_SLOTS];
};

struct uid_quota *uid_quota_new(unsigned capacity, uint64_t window_ms)
{
    if (capacity == 0 || window_ms == 0)
        return NULL;
    struct uid_quota *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->cap_milli = (uint64_t)capacity * 1000u;
    q->window_ms = window_ms;
    return q;
}

void uid_quota_free(struct uid_quota *q)
{
    free(q);
}

static void refill(const struct uid_quota *q, struct slot *s, uint64_t now_ms)
{
    if (now_ms <= s->at_ms)
        return;
    uint64_t dt = now_ms - s->at_ms;
    /* cap_milli per window_ms; dt beyond a window refills completely (no overflow either) */
    uint64_t add = dt >= q->window_ms ? q->cap_milli : q->cap_milli * dt / q->window_ms;
    if (add == 0)
        return;                     /* too soon for a thousandth: keep counting from at_ms */
    s->tokens_milli = s->tokens_milli + add > q->cap_milli ? q->cap_milli : s->tokens_milli + add;
    s->at_ms = now_ms;
}

bool uid_quota_take(struct uid_quota *q, uid_t uid, uint64_t now_ms)
{
    uint32_t h = (uint32_t)uid * 2654435761u;
    struct slot *free_slot = NULL;
    for (unsigned i = 0; i < PROBES; i++) {
        struct slot *s = &q->slots[(h + i) % UID_QUOTA_SLOTS];
        if (s->used && s->uid == uid) {
            refill(q, s, now_ms);
            if (s->tokens_milli < 1000u)
                return false;
            s->tokens_milli -= 1000u;
            return true;
        }
        if (!free_slot) {
            if (!s->used) {
                free_slot = s;
            } else {
                refill(q, s, now_ms);
                if (s->tokens_milli == q->cap_milli)
                    free_slot = s;            /* full again: nothing to remember */
            }
        }
    }
    if (!free_slot)
        return true;
    free_slot->used = true;
    free_slot->uid = uid;
    free_slot->tokens_milli = q->cap_milli - 1000u;
    free_slot->at_ms = now_ms;
    return true;
}
