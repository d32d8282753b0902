/* Relay loops (DESIGN.md §6, "one loop per core").  The decision loop (pd->loop) accepts, parses,
 * identifies, decides, resolves, connects and logs; that is the part that needs the shared state
 * (configuration snapshots, the synthetic address table, the per-account caps, the rate limits,
 * the helper channel), and it stays single-threaded so that none of it needs a lock.  A decided
 * tunnel that stays busy (PD_RELAY_AFTER_EVENTS events on the decision loop) goes to whichever
 * loop holds the fewest busy tunnels: the decision loop itself (it keeps its share, and ties) or
 * one of the relay loops, one thread each, one per further CPU, which only move bytes and watch
 * the tunnels' upkeep timers.
 * When it ends there, its sockets are taken off the relay loop and the connection is handed back
 * to the decision loop to be finished (close record, the cap's slot, its configuration reference,
 * and only then the sockets' close).
 *
 * Short tunnels (a CONNECT, one exchange, close) never move: the two hand-overs would cost more
 * than they free.  SO_REUSEPORT listeners with a full loop per thread were measured instead
 * (bench/README.md): they gain nothing on new tunnels when the cores are already full, and they
 * would need every piece of shared state above behind locks.
 *
 * Hand-over: a mutex-protected list per receiving loop and an eventfd that is written only when
 * the list goes from empty to not empty (the receiver reads the eventfd, then takes the whole
 * list, so no wake-up is lost). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <syslog.h>
#include <unistd.h>
#include "proxyd/core.h"

#define PD_MAX_RELAYS 16
#define PD_RELAY_AFTER_EVENTS 32u    /* a short tunnel has 3-6; a kept-alive one a few per request */

struct handoff {
    pthread_mutex_t mu;
    struct pd_conn *list;            /* linked by handoff_next; order does not matter */
    int efd;                         /* eventfd: list became non-empty */
};

struct relay {
    struct pd_loop *loop;
    struct handoff inbox;            /* tunnels moving here */
    bool stop;                       /* __atomic: pd_relays_stop() asks the loop to end */
    unsigned held;                   /* tunnels on this loop (__atomic): the least held gets the next */
    pthread_t thread;
};

static struct relay relays[PD_MAX_RELAYS];
static unsigned n_relays;
static unsigned decision_held;       /* busy tunnels the decision loop kept (its thread only) */
static struct handoff retired = { .mu = PTHREAD_MUTEX_INITIALIZER, .efd = -1 };  /* to pd->loop */

static void handoff_push(struct handoff *h, struct pd_conn *c)
{
    pthread_mutex_lock(&h->mu);
    bool was_empty = h->list == NULL;
    c->handoff_next = h->list;
    h->list = c;
    pthread_mutex_unlock(&h->mu);
    if (was_empty) {
        uint64_t one = 1;
        /* cannot fail short of a counter at 2^64 - 1: it is read on every wake-up */
        while (write(h->efd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
}

static struct pd_conn *handoff_take(struct handoff *h)
{
    uint64_t n;
    while (read(h->efd, &n, sizeof n) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&h->mu);
    struct pd_conn *list = h->list;
    h->list = NULL;
    pthread_mutex_unlock(&h->mu);
    return list;
}

/* On a relay loop: tunnels handed over by the decision loop. */
static void on_inbox(struct pd_loop *l, int fd, uint32_t ev, void *arg)
{
    struct relay *r = arg;
    (void)fd;
    (void)ev;
    /* The eventfd is read (in handoff_take) before the stop flag is looked at: pd_relays_stop()
     * sets the flag before its write, so a read that took that write also sees the flag.  Looked
     * at first, a wake-up for a tunnel could take the stop request's write along with its own and
     * leave the loop waiting for good (a hang at SIGTERM, found in review). */
    struct pd_conn *list = handoff_take(&r->inbox);
    if (__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
        pd_loop_stop(l);               /* in this loop's own thread */
    for (struct pd_conn *c = list, *next; c; c = next) {
        next = c->handoff_next;
        c->handoff_next = NULL;
        c->loop = l;
        pd_tunnel_adopt(c);            /* may end it at once: then it comes back retired */
    }
}

/* On the decision loop: tunnels that ended on a relay loop. */
static void on_retired(struct pd_loop *l, int fd, uint32_t ev, void *arg)
{
    (void)l;
    (void)fd;
    (void)ev;
    (void)arg;
    for (struct pd_conn *c = handoff_take(&retired), *next; c; c = next) {
        next = c->handoff_next;
        pd_conn_finish(c);
    }
}

static void *relay_main(void *arg)
{
    struct relay *r = arg;
    if (pd_loop_run(r->loop) < 0) {
        /* epoll_wait fails only on a bug (EBADF, EINVAL, EFAULT).  Its tunnels, and their slots of
         * the per-account cap, would be stuck for good: better the service manager's restart. */
        syslog(LOG_CRIT, "relay loop %u failed: aborting", (unsigned)(r - relays));
        abort();
    }
    return NULL;
}

/* One loop per CPU, the decision loop being one of them. */
unsigned pd_relays_default(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) < 0)
        return 0;
    int n = CPU_COUNT(&set) - 1;
    if (n < 1)
        return 0;                      /* one CPU: moving tunnels would only add hand-overs */
    return n > PD_MAX_RELAYS ? PD_MAX_RELAYS : (unsigned)n;
}

/* Relay loops are an optimisation: any that cannot start is logged, and tunnels stay on the
 * decision loop (n_relays counts only those running). */
void pd_relays_start(unsigned n)
{
    if (n > PD_MAX_RELAYS)
        n = PD_MAX_RELAYS;
    if (n == 0)
        return;
    pd_tunnel_init();
    retired.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (retired.efd < 0 || pd_loop_add(pd->loop, retired.efd, EPOLLIN, on_retired, NULL) < 0) {
        syslog(LOG_ERR, "relay loops: %m; tunnels stay on the decision loop");
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        struct relay *r = &relays[n_relays];
        pthread_mutex_init(&r->inbox.mu, NULL);
        r->loop = pd_loop_new();
        r->inbox.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        int err = 0;
        if (!r->loop || r->inbox.efd < 0 || pd_loop_add(r->loop, r->inbox.efd, EPOLLIN, on_inbox, r) < 0)
            err = errno;
        /* Signals stay with the decision loop's signalfd: they are blocked before this, and a
         * new thread inherits the mask. */
        else if ((err = pthread_create(&r->thread, NULL, relay_main, r)) == 0) {
            char name[16];
            snprintf(name, sizeof name, "pd-relay%u", n_relays);
            pthread_setname_np(r->thread, name);
            n_relays++;
            continue;
        }
        syslog(LOG_ERR, "relay loop %u: %s", i, strerror(err));
        if (r->inbox.efd >= 0)
            close(r->inbox.efd);
        pd_loop_free(r->loop);
        pthread_mutex_destroy(&r->inbox.mu);
        memset(r, 0, sizeof *r);
        break;
    }
    if (n_relays)
        syslog(LOG_INFO, "%u relay loops for busy tunnels", n_relays);
}

void pd_relays_stop(void)
{
    for (unsigned i = 0; i < n_relays; i++) {
        __atomic_store_n(&relays[i].stop, true, __ATOMIC_RELEASE);
        uint64_t one = 1;
        while (write(relays[i].inbox.efd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
    for (unsigned i = 0; i < n_relays; i++)
        pthread_join(relays[i].thread, NULL);
    /* Tunnels they ended that the decision loop had not finished yet: their close records too.
     * (Tunnels still open are not logged at exit, on any loop.) */
    if (n_relays)
        on_retired(pd->loop, retired.efd, EPOLLIN, NULL);
    n_relays = 0;
}

bool pd_relay_offer(struct pd_conn *c)
{
    if (n_relays == 0 || c->relay >= 0 || c->busy_kept || ++c->tunnel_events < PD_RELAY_AFTER_EVENTS)
        return false;
    unsigned best = 0, best_held = __atomic_load_n(&relays[0].held, __ATOMIC_RELAXED);
    for (unsigned i = 1; i < n_relays; i++) {
        unsigned h = __atomic_load_n(&relays[i].held, __ATOMIC_RELAXED);
        if (h < best_held)
            best = i, best_held = h;
    }
    /* The decision loop is one of the loops: it keeps its share of the busy tunnels, and on a tie
     * the tunnel stays (a lone bulk transfer gains nothing from a hand-over, and can lose the CPU
     * it had while the relay thread waits for one). */
    if (decision_held <= best_held) {
        decision_held++;
        c->busy_kept = true;
        return false;
    }
    /* Off this loop entirely: its timer, and both sockets (an event for them still in this
     * turn's batch is dropped as stale by the loop's generation check). */
    if (c->timer)
        pd_timer_cancel(c->loop, c->timer);
    c->timer = NULL;
    if (c->creg)
        pd_loop_del(c->loop, c->cfd);
    if (c->ureg)
        pd_loop_del(c->loop, c->ufd);
    c->creg = c->ureg = c->cpark = c->upark = false;
    c->cmask = c->umask = 0;
    c->relay = (int)best;
    __atomic_add_fetch(&relays[best].held, 1, __ATOMIC_RELAXED);
    handoff_push(&relays[best].inbox, c);
    return true;
}

void pd_relay_forget(struct pd_conn *c)
{
    if (c->busy_kept)
        decision_held--;
    c->busy_kept = false;
}

void pd_relay_retire(struct pd_conn *c)
{
    __atomic_sub_fetch(&relays[c->relay].held, 1, __ATOMIC_RELAXED);
    c->loop = NULL;                    /* no loop's any more */
    handoff_push(&retired, c);
}
