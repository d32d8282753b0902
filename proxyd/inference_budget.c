/* Memory that inference.local holds for request bodies, bounded per account and for the daemon.
 *
 * Why: a request body is read whole before anything else happens (its model decides where it
 * goes), and an account may hold thousands of connections, each with up to MaxRequestSize of body
 * on the way.  Without a bound on the sum, one account sending large bodies slowly exhausts the
 * daemon's memory and takes egress down for every account.  Bytes are reserved before they are
 * read (the whole Content-Length at the head), so a refusal costs nothing.  Kept across reloads
 * (pd->inference owns it); an entry lives while its account holds bytes. */
#include <stdlib.h>
#include "common/util.h"
#include "proxyd/inference_int.h"

struct held {
    uint32_t uid;
    uint64_t bytes;
};

struct inf_budget {
    struct held *v;               /* accounts holding bytes now: few, so a plain array */
    size_t n, cap;
    uint64_t total;
};

struct inf_budget *inf_budget_new(void)
{
    return ps_xcalloc(1, sizeof(struct inf_budget));
}

void inf_budget_free(struct inf_budget *b)
{
    if (!b)
        return;
    free(b->v);
    free(b);
}

static struct held *find(const struct inf_budget *b, uint32_t uid)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->v[i].uid == uid)
            return &b->v[i];
    return NULL;
}

uint64_t inf_budget_account_max(uint64_t max_request)
{
    return max_request > INF_BUDGET_ACCOUNT ? max_request : INF_BUDGET_ACCOUNT;
}

uint64_t inf_budget_daemon_max(uint64_t max_request)
{
    uint64_t four = max_request > UINT64_MAX / 4 ? UINT64_MAX : max_request * 4;
    return four > INF_BUDGET_DAEMON ? four : INF_BUDGET_DAEMON;
}

enum inf_budget_err inf_budget_take(struct inf_budget *b, uint32_t uid, uint64_t n, uint64_t max_request)
{
    struct held *h = find(b, uid);
    uint64_t mine = h ? h->bytes : 0, account = inf_budget_account_max(max_request),
             daemon = inf_budget_daemon_max(max_request);
    /* (a reload may have lowered the bounds below what is held) */
    if (mine > account || n > account - mine)
        return INF_BUDGET_ACCOUNT_FULL;
    if (b->total > daemon || n > daemon - b->total)
        return INF_BUDGET_DAEMON_FULL;
    if (!n)
        return INF_BUDGET_OK;
    if (!h) {
        if (b->n == b->cap) {
            b->cap = b->cap ? b->cap * 2 : 16;
            b->v = ps_xrealloc(b->v, b->cap, sizeof *b->v);
        }
        h = &b->v[b->n++];
        h->uid = uid;
        h->bytes = 0;
    }
    h->bytes += n;
    b->total += n;
    return INF_BUDGET_OK;
}

void inf_budget_give(struct inf_budget *b, uint32_t uid, uint64_t n)
{
    struct held *h = find(b, uid);
    if (!h || !n)
        return;
    if (n > h->bytes)
        n = h->bytes;              /* never below zero, whatever a caller got wrong */
    h->bytes -= n;
    b->total -= n;
    if (!h->bytes)
        *h = b->v[--b->n];
}

uint64_t inf_budget_held(const struct inf_budget *b, uint32_t uid)
{
    const struct held *h = find(b, uid);
    return h ? h->bytes : 0;
}
