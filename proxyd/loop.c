/* The proxyd event loop (proxyd.h): epoll, level-triggered, plus one-shot timers in a binary heap.
 *
 * Each registered fd keeps a generation number that is stamped into the epoll data: when a
 * callback closes fd A and a new socket reuses the number in the same epoll_wait batch, a stale
 * event for the old A is recognised and dropped instead of being handed to the new owner. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include "proxyd/proxyd.h"
#include "common/util.h"

struct pd_fd_slot {
    pd_io_cb cb;
    void *arg;
    uint32_t gen;
    bool used;
};

struct pd_timer {
    uint64_t when;
    pd_timer_cb cb;
    void *arg;
    size_t idx;                 /* position in the heap */
};

struct pd_loop {
    int epfd;
    struct pd_fd_slot *slots;
    size_t n_slots;
    struct pd_timer **heap;
    size_t n_heap, cap_heap;
    bool stop;
    void (*idle)(void);         /* after each batch of events, before sleeping again */
};

uint64_t pd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct pd_loop *pd_loop_new(void)
{
    struct pd_loop *l = ps_xcalloc(1, sizeof(*l));
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return NULL;
    }
    return l;
}

void pd_loop_free(struct pd_loop *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_heap; i++)
        free(l->heap[i]);
    free(l->heap);
    free(l->slots);
    close(l->epfd);
    free(l);
}

static uint64_t ev_data(int fd, uint32_t gen)
{
    return ((uint64_t)gen << 32) | (uint32_t)fd;
}

int pd_loop_add(struct pd_loop *l, int fd, uint32_t events, pd_io_cb cb, void *arg)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if ((size_t)fd >= l->n_slots) {
        size_t n = l->n_slots ? l->n_slots : 64;
        while (n <= (size_t)fd)
            n *= 2;
        l->slots = ps_xrealloc(l->slots, n, sizeof(*l->slots));
        memset(l->slots + l->n_slots, 0, (n - l->n_slots) * sizeof(*l->slots));
        l->n_slots = n;
    }
    struct pd_fd_slot *s = &l->slots[fd];
    s->gen++;
    struct epoll_event ev = { .events = events, .data.u64 = ev_data(fd, s->gen) };
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -1;
    s->cb = cb;
    s->arg = arg;
    s->used = true;
    return 0;
}

int pd_loop_mod(struct pd_loop *l, int fd, uint32_t events)
{
    if (fd < 0 || (size_t)fd >= l->n_slots || !l->slots[fd].used) {
        errno = EBADF;
        return -1;
    }
    struct epoll_event ev = { .events = events, .data.u64 = ev_data(fd, l->slots[fd].gen) };
    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
}

static void forget(struct pd_loop *l, int fd)
{
    l->slots[fd].used = false;
    l->slots[fd].cb = NULL;
    l->slots[fd].arg = NULL;
    l->slots[fd].gen++;
}

void pd_loop_del(struct pd_loop *l, int fd)
{
    if (fd < 0 || (size_t)fd >= l->n_slots || !l->slots[fd].used)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    forget(l, fd);
}

void pd_loop_close(struct pd_loop *l, int fd)
{
    if (fd < 0)
        return;
    /* close() of the only descriptor of the socket removes it from the epoll set; proxyd never
     * duplicates its sockets or forks while they are open, so no EPOLL_CTL_DEL is needed. */
    if ((size_t)fd < l->n_slots && l->slots[fd].used)
        forget(l, fd);
    close(fd);
}

void pd_loop_set_idle(struct pd_loop *l, void (*cb)(void))
{
    l->idle = cb;
}

/* ---- timers: a min-heap on 'when' ---- */
static void heap_set(struct pd_loop *l, size_t i, struct pd_timer *t)
{
    l->heap[i] = t;
    t->idx = i;
}

static void heap_up(struct pd_loop *l, size_t i)
{
    struct pd_timer *t = l->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (l->heap[p]->when <= t->when)
            break;
        heap_set(l, i, l->heap[p]);
        i = p;
    }
    heap_set(l, i, t);
}

static void heap_down(struct pd_loop *l, size_t i)
{
    struct pd_timer *t = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->n_heap)
            break;
        if (c + 1 < l->n_heap && l->heap[c + 1]->when < l->heap[c]->when)
            c++;
        if (l->heap[c]->when >= t->when)
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, t);
}

static void heap_remove(struct pd_loop *l, struct pd_timer *t)
{
    size_t i = t->idx;
    struct pd_timer *last = l->heap[--l->n_heap];
    if (last != t) {
        heap_set(l, i, last);
        heap_up(l, i);
        heap_down(l, last->idx);
    }
}

struct pd_timer *pd_timer_add(struct pd_loop *l, uint64_t ms, pd_timer_cb cb, void *arg)
{
    struct pd_timer *t = ps_xcalloc(1, sizeof(*t));
    t->when = pd_now_ms() + ms;
    t->cb = cb;
    t->arg = arg;
    if (l->n_heap == l->cap_heap) {
        l->cap_heap = l->cap_heap ? l->cap_heap * 2 : 64;
        l->heap = ps_xrealloc(l->heap, l->cap_heap, sizeof(*l->heap));
    }
    heap_set(l, l->n_heap++, t);
    heap_up(l, t->idx);
    return t;
}

void pd_timer_cancel(struct pd_loop *l, struct pd_timer *t)
{
    if (!t)
        return;
    heap_remove(l, t);
    free(t);
}

static int next_timeout(struct pd_loop *l)
{
    if (l->n_heap == 0)
        return -1;
    uint64_t now = pd_now_ms();
    if (l->heap[0]->when <= now)
        return 0;
    uint64_t d = l->heap[0]->when - now;
    return d > 60000 ? 60000 : (int)d;
}

static void run_timers(struct pd_loop *l)
{
    uint64_t now = pd_now_ms();
    /* Only timers due now: a callback that adds a 0 ms timer runs it on the next turn. */
    while (l->n_heap > 0 && l->heap[0]->when <= now && !l->stop) {
        struct pd_timer *t = l->heap[0];
        heap_remove(l, t);
        pd_timer_cb cb = t->cb;
        void *arg = t->arg;
        free(t);                /* the handle is invalid once the timer fires */
        cb(l, arg);
    }
}

int pd_loop_run(struct pd_loop *l)
{
    struct epoll_event evs[256];
    l->stop = false;
    while (!l->stop) {
        int n = epoll_wait(l->epfd, evs, 256, next_timeout(l));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            syslog(LOG_ERR, "epoll_wait: %m");
            return -1;
        }
        for (int i = 0; i < n && !l->stop; i++) {
            int fd = (int)(uint32_t)evs[i].data.u64;
            uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
            if ((size_t)fd >= l->n_slots)
                continue;
            struct pd_fd_slot *s = &l->slots[fd];
            if (!s->used || s->gen != gen)
                continue;       /* deleted (and maybe reused) earlier in this batch */
            s->cb(l, fd, evs[i].events, s->arg);
        }
        run_timers(l);
        if (l->idle)
            l->idle();
    }
    return 0;
}

void pd_loop_stop(struct pd_loop *l)
{
    l->stop = true;
}
