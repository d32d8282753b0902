/* Synthetic addresses (see synth.h).
 *
 * Why every entry belongs to one account: the table is proxyd's, but a mapping is a secret of the
 * account that asked.  Shared, any account could turn any address of the range back into a name
 * another account looked up (a CONNECT to it names the host in the 403; the address is a hash of
 * the name, so one CONNECT tests a guess), and one account asking for many names would push
 * everyone else's out.  So the key is (UID, name): another account's address is, to this one, an
 * address never handed out (denied as such), and each account holds at most a share of the table.
 * Why a hash of the UID and name picks the address: the same name then usually gets the same
 * address across proxyd restarts, so a client that cached an answer before a restart still reaches
 * the name it asked for (collisions probe linearly, so this is "usually", not a promise).
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
/* One account may hold at most 1/SYNTH_SHARE_DIVISOR of the entries (all of them in a range too
 * small to share), so that no account can take the table from the others. */
#define SYNTH_SHARE_DIVISOR 4u
#define SYNTH_OWNER_BUCKETS 256u

struct synth_owner;

struct synth_entry {
    char *name;
    struct synth_owner *owner;            /* the account it was handed to */
    uint32_t index;                       /* offset of the address inside the range */
    uint64_t last_ms;                     /* when the name was last handed out */
    struct synth_entry *by_name_next, *by_index_next;
    struct synth_entry *lru_prev, *lru_next;   /* the whole table, most recent at the head */
    struct synth_entry *own_prev, *own_next;   /* the owner's entries, most recent at the head */
};

/* An account holding entries; freed with its last entry. */
struct synth_owner {
    uid_t uid;
    size_t n;
    struct synth_entry *head, *tail;
    struct synth_owner *next;             /* bucket chain */
};

struct synth {
    uint32_t base;                        /* host order */
    uint32_t first, usable;               /* usable offsets: first .. first+usable-1 */
    size_t nbuckets, n, max, share;
    struct synth_entry **by_name, **by_index;
    struct synth_entry *lru_head, *lru_tail;
    struct synth_owner *owners[SYNTH_OWNER_BUCKETS];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t hash_key(uid_t uid, const char *s)   /* FNV-1a of the UID's 4 bytes, then the name */
{
    uint32_t h = 2166136261u, u = (uint32_t)uid;
    for (int i = 0; i < 4; i++, u >>= 8) { h ^= u & 0xffu; h *= 16777619u; }
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
    s->share = s->max >= SYNTH_SHARE_DIVISOR ? s->max / SYNTH_SHARE_DIVISOR : s->max;
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
    for (size_t i = 0; i < SYNTH_OWNER_BUCKETS; i++)
        for (struct synth_owner *o = s->owners[i], *next; o; o = next) {
            next = o->next;
            free(o);
        }
    free(s->by_name);
    free(s->by_index);
    free(s);
}

static struct synth_entry *find_name(const struct synth *s, uid_t uid, const char *name)
{
    for (struct synth_entry *e = s->by_name[hash_key(uid, name) & (s->nbuckets - 1)]; e; e = e->by_name_next)
        if (e->owner->uid == uid && strcmp(e->name, name) == 0) return e;
    return NULL;
}

bool synth_has_name(const struct synth *s, uid_t uid, const char *name)
{
    return find_name(s, uid, name) != NULL;
}

static struct synth_owner **owner_slot(struct synth *s, uid_t uid)
{
    struct synth_owner **pp = &s->owners[(uint32_t)uid % SYNTH_OWNER_BUCKETS];
    while (*pp && (*pp)->uid != uid) pp = &(*pp)->next;
    return pp;
}

static void own_unlink(struct synth_entry *e)
{
    struct synth_owner *o = e->owner;
    if (e->own_prev) e->own_prev->own_next = e->own_next; else o->head = e->own_next;
    if (e->own_next) e->own_next->own_prev = e->own_prev; else o->tail = e->own_prev;
    e->own_prev = e->own_next = NULL;
}

static void own_push_head(struct synth_entry *e)
{
    struct synth_owner *o = e->owner;
    e->own_next = o->head;
    e->own_prev = NULL;
    if (o->head) o->head->own_prev = e; else o->tail = e;
    o->head = e;
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
    struct synth_owner *o = e->owner;
    unlink_chain(&s->by_name[hash_key(o->uid, e->name) & (s->nbuckets - 1)], e, true);
    unlink_chain(&s->by_index[e->index & (s->nbuckets - 1)], e, false);
    lru_unlink(s, e);
    own_unlink(e);
    if (--o->n == 0) {
        struct synth_owner **pp = owner_slot(s, o->uid);
        *pp = o->next;
        free(o);
    }
    free(e->name);
    free(e);
    s->n--;
}

static void to_addr(const struct synth *s, uint32_t index, struct in_addr *out)
{
    out->s_addr = htonl(s->base + s->first + index);
}

/* Make room for one more entry of o (NULL: an account that holds none yet): its own oldest entry
 * when it holds its whole share, else the table's oldest when the table is full; either only when
 * no client following our TTLs can still be using it.  0, or the synth_assign() error. */
static int make_room(struct synth *s, const struct synth_owner *o, uint64_t now)
{
    struct synth_entry *old = NULL;
    int err = 0;
    if (o && o->n >= s->share)            /* in a range too small to share, that is the range */
        old = o->tail, err = s->share < s->max ? SYNTH_SHARE_FULL : SYNTH_RANGE_FULL;
    else if (s->n >= s->max)
        old = s->lru_tail, err = SYNTH_RANGE_FULL;
    if (!err) return 0;
    if (!old || now - old->last_ms < SYNTH_REUSE_AFTER_MS) return err;
    drop_entry(s, old);
    return 0;
}

int synth_assign(struct synth *s, uid_t uid, const char *name, struct in_addr *out)
{
    return synth_assign_at(s, uid, name, out, now_ms());
}

int synth_assign_at(struct synth *s, uid_t uid, const char *name, struct in_addr *out, uint64_t now)
{
    if (strlen(name) > PS_MAX_NAME) return SYNTH_RANGE_FULL;
    struct synth_entry *e = find_name(s, uid, name);
    if (e) {
        e->last_ms = now;
        lru_unlink(s, e);
        lru_push_head(s, e);
        own_unlink(e);
        own_push_head(e);
        to_addr(s, e->index, out);
        return 0;
    }
    struct synth_owner **op = owner_slot(s, uid);
    int err = make_room(s, *op, now);
    if (err) return err;
    op = owner_slot(s, uid);              /* make_room may have freed the owner */
    if (!*op) {
        if (!(*op = calloc(1, sizeof **op))) return SYNTH_RANGE_FULL;
        (*op)->uid = uid;
    }
    struct synth_owner *o = *op;
    /* With n < max <= usable there is a free offset; linear probing finds it. */
    uint32_t h = hash_key(uid, name), index = h % s->usable;
    while (find_index(s, index)) index = index + 1 == s->usable ? 0 : index + 1;
    e = calloc(1, sizeof *e);
    if (!e || !(e->name = strdup(name))) {
        free(e);
        if (o->n == 0) { *op = o->next; free(o); }
        return SYNTH_RANGE_FULL;
    }
    e->owner = o;
    e->index = index;
    e->last_ms = now;
    size_t nb = h & (s->nbuckets - 1), ib = index & (s->nbuckets - 1);
    e->by_name_next = s->by_name[nb]; s->by_name[nb] = e;
    e->by_index_next = s->by_index[ib]; s->by_index[ib] = e;
    lru_push_head(s, e);
    own_push_head(e);
    o->n++;
    s->n++;
    to_addr(s, index, out);
    return 0;
}

bool synth_lookup(const struct synth *s, uid_t uid, struct in_addr addr, char name[PS_MAX_NAME + 1])
{
    uint32_t a = ntohl(addr.s_addr);
    if (a < s->base) return false;
    uint32_t off = a - s->base;
    if (off < s->first || off - s->first >= s->usable) return false;
    const struct synth_entry *e = find_index(s, off - s->first);
    if (!e || e->owner->uid != uid) return false;     /* another account's: never handed to this one */
    size_t n = strlen(e->name);
    if (n > PS_MAX_NAME) return false;
    memcpy(name, e->name, n + 1);
    return true;
}

/* For tests: how many names are remembered. */
size_t synth_count(const struct synth *s) { return s->n; }
