/* Synthetic addresses (see synth.h).
 *
 * Why a hash of the name picks the address: the same name then usually gets the same address
 * across proxyd restarts, so a client that cached an answer before a restart still reaches the
 * name it asked for (collisions probe linearly, so this is "usually", not a promise).
 * Why entries are bounded and recycled only when old: a profile with a wildcard rule lets a client
 * ask for unlimited names; without a bound that would exhaust memory or the range.  An address is
 * reused only when its name was last handed out more than SYNTH_REUSE_AFTER_MS ago, far beyond the
 * TTL of our answers, so a client that follows TTLs never connects to a recycled address. */
#include "proxyd/synth.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SYNTH_MAX_ENTRIES 65536u
#define SYNTH_REUSE_AFTER_MS (10u * 60u * 1000u)

struct synth_entry {
    char *name;
    uint32_t index;                       /* offset of the address inside the range */
    uint64_t last_ms;                     /* when the name was last handed out */
    struct synth_entry *by_name_next, *by_index_next;
    struct synth_entry *lru_prev, *lru_next;   /* most recent at the head */
};

struct synth {
    uint32_t base;                        /* host order */
    uint32_t first, usable;               /* usable offsets: first .. first+usable-1 */
    size_t nbuckets, n, max;
    struct synth_entry **by_name, **by_index;
    struct synth_entry *lru_head, *lru_tail;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t hash_name(const char *s)            /* FNV-1a */
{
    uint32_t h = 2166136261u;
    for (; *s; s++) { h ^= (uint8_t)*s; h *= 16777619u; }
    return h;
}

struct synth *synth_new(const struct ps_cidr *range)
{
    if (!range || range->family != AF_INET || range->prefix > 32) return NULL;
    struct synth *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    uint32_t a;
    memcpy(&a, range->addr, 4);
    uint32_t bits = 32u - range->prefix;
    uint64_t size = (uint64_t)1 << bits;
    uint32_t mask = bits == 32 ? 0 : ~(uint32_t)((size - 1));
    s->base = ntohl(a) & mask;
    /* Leave out the network and broadcast addresses when the range is big enough to have them. */
    if (size >= 4) { s->first = 1; s->usable = (uint32_t)(size - 2); }
    else { s->first = 0; s->usable = (uint32_t)size; }
    s->max = s->usable < SYNTH_MAX_ENTRIES ? s->usable : SYNTH_MAX_ENTRIES;
    s->nbuckets = 1;
    while (s->nbuckets < s->max) s->nbuckets <<= 1;
    s->by_name = calloc(s->nbuckets, sizeof *s->by_name);
    s->by_index = calloc(s->nbuckets, sizeof *s->by_index);
    if (!s->by_name || !s->by_index) { synth_free(s); return NULL; }
    return s;
}

void synth_free(struct synth *s)
{
    if (!s) return;
    for (struct synth_entry *e = s->lru_head, *next; e; e = next) {
        next = e->lru_next;
        free(e->name);
        free(e);
    }
    free(s->by_name);
    free(s->by_index);
    free(s);
}

static struct synth_entry *find_name(const struct synth *s, const char *name)
{
    for (struct synth_entry *e = s->by_name[hash_name(name) & (s->nbuckets - 1)]; e; e = e->by_name_next)
        if (strcmp(e->name, name) == 0) return e;
    return NULL;
}

bool synth_has_name(const struct synth *s, const char *name)
{
    return find_name(s, name) != NULL;
}

static struct synth_entry *find_index(const struct synth *s, uint32_t index)
{
    for (struct synth_entry *e = s->by_index[index & (s->nbuckets - 1)]; e; e = e->by_index_next)
        if (e->index == index) return e;
    return NULL;
}

static void lru_unlink(struct synth *s, struct synth_entry *e)
{
    if (e->lru_prev) e->lru_prev->lru_next = e->lru_next; else s->lru_head = e->lru_next;
    if (e->lru_next) e->lru_next->lru_prev = e->lru_prev; else s->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_head(struct synth *s, struct synth_entry *e)
{
    e->lru_next = s->lru_head;
    e->lru_prev = NULL;
    if (s->lru_head) s->lru_head->lru_prev = e; else s->lru_tail = e;
    s->lru_head = e;
}

static void unlink_chain(struct synth_entry **head, struct synth_entry *e, bool by_name)
{
    for (struct synth_entry **pp = head; *pp; pp = by_name ? &(*pp)->by_name_next : &(*pp)->by_index_next)
        if (*pp == e) { *pp = by_name ? e->by_name_next : e->by_index_next; return; }
}

static void drop_entry(struct synth *s, struct synth_entry *e)
{
    unlink_chain(&s->by_name[hash_name(e->name) & (s->nbuckets - 1)], e, true);
    unlink_chain(&s->by_index[e->index & (s->nbuckets - 1)], e, false);
    lru_unlink(s, e);
    free(e->name);
    free(e);
    s->n--;
}

static void to_addr(const struct synth *s, uint32_t index, struct in_addr *out)
{
    out->s_addr = htonl(s->base + s->first + index);
}

int synth_assign(struct synth *s, const char *name, struct in_addr *out)
{
    uint64_t now = now_ms();
    if (strlen(name) > PS_MAX_NAME) return -1;
    struct synth_entry *e = find_name(s, name);
    if (e) {
        e->last_ms = now;
        lru_unlink(s, e);
        lru_push_head(s, e);
        to_addr(s, e->index, out);
        return 0;
    }
    if (s->n >= s->max) {
        struct synth_entry *old = s->lru_tail;
        if (!old || now - old->last_ms < SYNTH_REUSE_AFTER_MS) return -1;
        drop_entry(s, old);
    }
    /* With n < max <= usable there is a free offset; linear probing finds it. */
    uint32_t index = hash_name(name) % s->usable;
    while (find_index(s, index)) index = index + 1 == s->usable ? 0 : index + 1;
    e = calloc(1, sizeof *e);
    if (!e || !(e->name = strdup(name))) { free(e); return -1; }
    e->index = index;
    e->last_ms = now;
    size_t nb = hash_name(name) & (s->nbuckets - 1), ib = index & (s->nbuckets - 1);
    e->by_name_next = s->by_name[nb]; s->by_name[nb] = e;
    e->by_index_next = s->by_index[ib]; s->by_index[ib] = e;
    lru_push_head(s, e);
    s->n++;
    to_addr(s, index, out);
    return 0;
}

bool synth_lookup(const struct synth *s, struct in_addr addr, char name[PS_MAX_NAME + 1])
{
    uint32_t a = ntohl(addr.s_addr);
    if (a < s->base) return false;
    uint32_t off = a - s->base;
    if (off < s->first || off - s->first >= s->usable) return false;
    const struct synth_entry *e = find_index(s, off - s->first);
    if (!e) return false;
    size_t n = strlen(e->name);
    if (n > PS_MAX_NAME) return false;
    memcpy(name, e->name, n + 1);
    return true;
}

/* For tests: how many names are remembered. */
size_t synth_count(const struct synth *s) { return s->n; }
