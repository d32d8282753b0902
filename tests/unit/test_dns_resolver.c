/* The upstream resolver (proxyd/resolver.c) on the real proxyd loop (proxyd/loop.c) against a
 * real UDP DNS responder on 127.0.0.1 run by the same loop: answers, TTL cache, negative cache,
 * coalescing, cancellation, callbacks never re-entrant, the cache bound. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/config.h"
#include "proxyd/dns_msg.h"
#include "proxyd/proxyd.h"
#include "proxyd/resolver.h"

/* resolver.c uses nothing else of the daemon; proxyd.h declares this global. */
struct proxyd *pd;

/* ---- the responder: NAME.test -> 192.0.2.1; "ttl1.test" has TTL 1; "nx*" NXDOMAIN ---- */
static int resp_fd;
static unsigned n_a_queries;           /* A queries received */
static char last_name[DNS_MAX_NAME_TEXT];
static bool responder_silent;

static void on_responder(struct pd_loop *l, int fd, uint32_t ev, void *arg)
{
    uint8_t buf[1500], out[1500];
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &plen);
    struct dns_query q;
    if (n < 0 || dns_parse_query(buf, (size_t)n, &q) != DNS_PARSE_OK) return;
    if (q.qtype == DNS_TYPE_A) { n_a_queries++; snprintf(last_name, sizeof last_name, "%s", q.name); }
    if (responder_silent) return;
    struct in_addr a;
    inet_pton(AF_INET, "192.0.2.1", &a);
    size_t m;
    if (strncmp(q.name, "nx", 2) == 0)
        m = dns_build_answer(&q, buf, DNS_RCODE_NXDOMAIN, NULL, 0, out, sizeof out);
    else if (q.qtype == DNS_TYPE_A)
        m = dns_build_answer(&q, buf, DNS_RCODE_NOERROR, &a,
                             strcmp(q.name, "ttl1.test") == 0 ? 1 : 300, out, sizeof out);
    else
        m = dns_build_answer(&q, buf, DNS_RCODE_NOERROR, NULL, 0, out, sizeof out);
    /* c-ares wants AA or RA-less answers to look authoritative; either is fine for it. */
    sendto(fd, out, m, 0, (struct sockaddr *)&peer, plen);
}

struct fixture {
    struct pd_loop *loop;
    struct ps_config *cfg;
    struct resolver *r;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->loop = pd_loop_new();
    resp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sin;
    assert_int_equal(bind(resp_fd, (struct sockaddr *)&sin, sizeof sin), 0);
    getsockname(resp_fd, (struct sockaddr *)&sin, &len);
    pd_loop_add(f->loop, resp_fd, EPOLLIN, on_responder, NULL);
    f->cfg = ps_config_new_empty("/nonexistent");
    f->cfg->global.resolvers = calloc(1, sizeof *f->cfg->global.resolvers);
    memcpy(&f->cfg->global.resolvers[0].ss, &sin, sizeof sin);
    f->cfg->global.resolvers[0].len = sizeof sin;
    f->cfg->global.n_resolvers = 1;
    f->r = resolver_new(f->loop, f->cfg);
    assert_non_null(f->r);
    n_a_queries = 0;
    responder_silent = false;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    resolver_free(f->r);
    pd_loop_del(f->loop, resp_fd);
    close(resp_fd);
    ps_config_free(f->cfg);
    pd_loop_free(f->loop);
    free(f);
    return 0;
}

/* ---- callbacks ---- */
struct result {
    int calls;
    int status;
    size_t n;
    unsigned ttl;
    char addr[INET6_ADDRSTRLEN];
    bool in_lookup;           /* set around resolver_lookup: a call then would be re-entrant */
    bool reentered;
    struct pd_loop *stop_after;
    int *pending;
};

static void on_result(void *arg, int status, const struct sockaddr_storage *addrs, size_t n,
                      unsigned ttl)
{
    struct result *r = arg;
    r->calls++;
    r->status = status;
    r->n = n;
    r->ttl = ttl;
    if (r->in_lookup) r->reentered = true;
    if (n && addrs[0].ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&addrs[0])->sin_addr, r->addr, sizeof r->addr);
    if (r->pending && --*r->pending == 0 && r->stop_after) pd_loop_stop(r->stop_after);
}

static void on_deadline(struct pd_loop *l, void *arg)
{
    *(bool *)arg = true;
    pd_loop_stop(l);
}

/* Run the loop until *pending reaches 0, or ms pass. */
static void run_until(struct fixture *f, int *pending, uint64_t ms)
{
    bool expired = false;
    struct pd_timer *t = pd_timer_add(f->loop, ms, on_deadline, &expired);
    if (*pending > 0) pd_loop_run(f->loop);
    if (!expired) pd_timer_cancel(f->loop, t);
}

static void lookup(struct fixture *f, const char *name, struct result *res, int *pending)
{
    res->stop_after = f->loop;
    res->pending = pending;
    res->in_lookup = true;
    assert_non_null(resolver_lookup(f->r, name, on_result, res));
    res->in_lookup = false;
}

static void answers_and_caches_per_ttl(void **state)
{
    struct fixture *f = *state;
    struct result a = { 0 }, b = { 0 }, c = { 0 };
    int pending = 1;
    lookup(f, "ttl1.test", &a, &pending);
    assert_int_equal(a.calls, 0);                  /* never from inside resolver_lookup */
    run_until(f, &pending, 5000);
    assert_int_equal(a.calls, 1);
    assert_false(a.reentered);
    assert_int_equal(a.status, 0);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.addr, "192.0.2.1");
    assert_true(a.ttl <= 1);
    assert_int_equal(n_a_queries, 1);
    assert_string_equal(last_name, "ttl1.test");   /* absolute: no search domain appended */

    pending = 1;
    lookup(f, "TTL1.test.", &b, &pending);         /* same name, other spelling: cached */
    assert_int_equal(b.calls, 0);                  /* a cache hit is delivered later too */
    run_until(f, &pending, 5000);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, 0);
    assert_int_equal(n_a_queries, 1);
    unsigned long up, cached;
    resolver_stats(f->r, &up, &cached, NULL);
    assert_int_equal(cached, 1);

    int never = 1;
    run_until(f, &never, 1200);                    /* let the 1 s TTL expire */
    pending = 1;
    lookup(f, "ttl1.test", &c, &pending);
    run_until(f, &pending, 5000);
    assert_int_equal(c.status, 0);
    assert_int_equal(n_a_queries, 2);
}

static void nxdomain_is_cached(void **state)
{
    struct fixture *f = *state;
    struct result a = { 0 }, b = { 0 };
    int pending = 1;
    lookup(f, "nxname.test", &a, &pending);
    run_until(f, &pending, 5000);
    assert_int_equal(a.status, RESOLVER_ENOTFOUND);
    assert_int_equal(a.n, 0);
    pending = 1;
    lookup(f, "nxname.test", &b, &pending);
    run_until(f, &pending, 5000);
    assert_int_equal(b.status, RESOLVER_ENOTFOUND);
    assert_int_equal(n_a_queries, 1);
    assert_true(b.ttl <= RESOLVER_NEG_TTL && b.ttl > 0);
}

static void concurrent_lookups_share_one_query(void **state)
{
    struct fixture *f = *state;
    struct result r[6];
    memset(r, 0, sizeof r);
    int pending = 6;
    for (int i = 0; i < 6; i++) lookup(f, "shared.test", &r[i], &pending);
    run_until(f, &pending, 5000);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, 0);
    }
    assert_int_equal(n_a_queries, 1);
}

static void cancelled_lookup_never_calls_back(void **state)
{
    struct fixture *f = *state;
    struct result gone = { 0 }, kept = { 0 };
    int pending = 1;
    gone.stop_after = f->loop;
    struct resolver_query *q = resolver_lookup(f->r, "cancel.test", on_result, &gone);
    lookup(f, "cancel.test", &kept, &pending);
    resolver_cancel(f->r, q);
    run_until(f, &pending, 5000);
    assert_int_equal(kept.calls, 1);
    assert_int_equal(gone.calls, 0);

    /* Cancel a cache hit before the loop delivers it. */
    struct result hit = { 0 };
    q = resolver_lookup(f->r, "cancel.test", on_result, &hit);
    resolver_cancel(f->r, q);
    int never = 1;
    run_until(f, &never, 100);
    assert_int_equal(hit.calls, 0);
}

static void invalid_names_fail_later(void **state)
{
    struct fixture *f = *state;
    struct result a = { 0 };
    int pending = 1;
    lookup(f, "bad..name", &a, &pending);
    assert_int_equal(a.calls, 0);
    run_until(f, &pending, 1000);
    assert_int_equal(a.status, RESOLVER_EINVAL);
    assert_int_equal(n_a_queries, 0);
}

static void silent_upstream_fails_uncached(void **state)
{
    struct fixture *f = *state;
    struct result a = { 0 };
    int pending = 1;
    responder_silent = true;
    lookup(f, "silent.test", &a, &pending);
    run_until(f, &pending, 15000);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, RESOLVER_EFAIL);
    unsigned before = n_a_queries;
    responder_silent = false;
    struct result b = { 0 };
    pending = 1;
    lookup(f, "silent.test", &b, &pending);
    run_until(f, &pending, 5000);
    assert_int_equal(b.status, 0);                 /* the failure was not remembered */
    assert_int_equal(n_a_queries, before + 1);
}

static void cache_is_bounded(void **state)
{
    struct fixture *f = *state;
    const int total = (int)RESOLVER_CACHE_MAX + 50;
    static struct result r[RESOLVER_CACHE_MAX + 50];
    memset(r, 0, sizeof r);
    int pending = 0;
    char name[64];
    /* In batches, so that the upstream socket never holds thousands of queries at once. */
    for (int i = 0; i < total;) {
        int batch = 0;
        for (; i < total && batch < 64; i++, batch++) {
            snprintf(name, sizeof name, "n%d.test", i);
            pending++;
            lookup(f, name, &r[i], &pending);
        }
        run_until(f, &pending, 20000);
        assert_int_equal(pending, 0);
    }
    size_t entries;
    resolver_stats(f->r, NULL, NULL, &entries);
    assert_true(entries <= RESOLVER_CACHE_MAX);
    for (int i = 0; i < total; i++) assert_int_equal(r[i].status, 0);
    /* The most recent name is still cached, the very first was evicted. */
    unsigned before = n_a_queries;
    struct result last = { 0 }, first = { 0 };
    pending = 2;
    snprintf(name, sizeof name, "n%d.test", total - 1);
    lookup(f, name, &last, &pending);
    lookup(f, "n0.test", &first, &pending);
    run_until(f, &pending, 5000);
    assert_int_equal(n_a_queries, before + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(answers_and_caches_per_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(nxdomain_is_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_lookups_share_one_query, setup, teardown),
        cmocka_unit_test_setup_teardown(cancelled_lookup_never_calls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_names_fail_later, setup, teardown),
        cmocka_unit_test_setup_teardown(silent_upstream_fails_uncached, setup, teardown),
        cmocka_unit_test_setup_teardown(cache_is_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
