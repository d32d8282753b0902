/* The proxyd event loop (proxyd/loop.c): timers fire in deadline order and never after being
 * cancelled; fd callbacks get their events; a callback that deletes another fd in the same batch
 * stops its pending event from being delivered to whoever reuses the number. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "proxyd/proxyd.h"

struct proxyd *pd;                  /* loop.c needs none of it */

static char order[16];
static size_t n_order;

static void tcb(struct pd_loop *l, void *arg)
{
    order[n_order++] = *(const char *)arg;
    if (n_order == 3)
        pd_loop_stop(l);
}

static void timers_in_order(void **state)
{
    struct pd_loop *l = pd_loop_new();
    n_order = 0;
    static const char a = 'a', b = 'b', c = 'c', x = 'x';
    /* before the timers are added: a timer is due 30 ms after its own pd_timer_add(), and a clock
     * tick between that and a later t0 made the check below fail (CI, 2026-11-29) */
    uint64_t t0 = pd_now_ms();
    pd_timer_add(l, 30, tcb, (void *)&c);
    pd_timer_add(l, 10, tcb, (void *)&a);
    struct pd_timer *t = pd_timer_add(l, 15, tcb, (void *)&x);
    pd_timer_add(l, 20, tcb, (void *)&b);
    pd_timer_cancel(l, t);
    assert_int_equal(pd_loop_run(l), 0);
    assert_int_equal(n_order, 3);
    assert_memory_equal(order, "abc", 3);
    assert_true(pd_now_ms() - t0 >= 30);
    pd_loop_free(l);
}

static int fds[2][2];
static int fired[2];

static bool swapped;

static void stop_cb(struct pd_loop *l, void *arg)
{
    pd_loop_stop(l);
}

static void iocb(struct pd_loop *l, int fd, uint32_t ev, void *arg)
{
    int which = (int)(intptr_t)arg;
    char ch;
    fired[which]++;
    assert_true(ev & EPOLLIN);
    assert_int_equal(read(fd, &ch, 1), 1);
    if (swapped)
        return;
    swapped = true;
    /* the first one to run deletes and closes the other, then re-creates its number */
    int other = 1 - which;
    pd_loop_del(l, fds[other][0]);
    close(fds[other][0]);
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK), 0);   /* a stale dispatch would fail its read */
    /* p[0] reuses fds[other][0]'s number; it is registered fresh and is not readable */
    assert_int_equal(p[0], fds[other][0]);   /* the number is reused */
    pd_loop_add(l, p[0], EPOLLIN, iocb, (void *)(intptr_t)other);
    fds[other][0] = p[0];
}

static void stale_events_dropped(void **state)
{
    struct pd_loop *l = pd_loop_new();
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pipe(fds[i]), 0);
        assert_int_equal(write(fds[i][1], "x", 1), 1);
        assert_int_equal(pd_loop_add(l, fds[i][0], EPOLLIN, iocb, (void *)(intptr_t)i), 0);
    }
    fired[0] = fired[1] = 0;
    swapped = false;
    pd_timer_add(l, 50, stop_cb, NULL);
    pd_loop_run(l);
    /* both were ready in the same batch, but the stale event of the replaced fd was not handed
     * to the new, unreadable pipe that reuses its number (its read() would have failed) */
    assert_int_equal(fired[0] + fired[1], 1);
    pd_loop_free(l);
}

static void mod_and_errors(void **state)
{
    struct pd_loop *l = pd_loop_new();
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(pd_loop_mod(l, p[0], EPOLLIN), -1);    /* not registered */
    assert_int_equal(pd_loop_add(l, -1, EPOLLIN, iocb, NULL), -1);
    assert_int_equal(pd_loop_add(l, p[1], EPOLLOUT, iocb, NULL), 0);
    assert_int_equal(pd_loop_mod(l, p[1], EPOLLOUT | EPOLLIN), 0);
    pd_loop_del(l, p[1]);
    pd_loop_del(l, p[1]);                                    /* twice is harmless */
    pd_timer_cancel(l, NULL);
    pd_loop_free(l);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timers_in_order),
        cmocka_unit_test(stale_events_dropped),
        cmocka_unit_test(mod_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
