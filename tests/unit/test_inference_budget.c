/* Request-body memory at inference.local (proxyd/inference_budget.c): an account holds at most its
 * share, the daemon at most its whole, one request of the largest allowed size always fits, and
 * what is given back can be taken again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxyd/inference_int.h"

#define MIB (1ull << 20)

static void account_share_then_daemon_whole(void **state)
{
    (void)state;
    struct inf_budget *b = inf_budget_new();
    /* MaxRequestSize 10M: 64 MiB per account, 256 MiB in all */
    for (int i = 0; i < 6; i++)
        assert_int_equal(inf_budget_take(b, 1000, 10 * MIB, 10 * MIB), INF_BUDGET_OK);
    assert_int_equal(inf_budget_take(b, 1000, 10 * MIB, 10 * MIB), INF_BUDGET_ACCOUNT_FULL);
    assert_int_equal(inf_budget_held(b, 1000), 60 * MIB);          /* a refusal reserves nothing */
    assert_int_equal(inf_budget_take(b, 1000, 4 * MIB, 10 * MIB), INF_BUDGET_OK);   /* exactly 64 */
    assert_int_equal(inf_budget_take(b, 1000, 1, 10 * MIB), INF_BUDGET_ACCOUNT_FULL);
    /* three more accounts fill the daemon's 256 MiB; a fifth is refused by the daemon's bound */
    for (uint32_t uid = 1001; uid <= 1003; uid++)
        assert_int_equal(inf_budget_take(b, uid, 64 * MIB, 10 * MIB), INF_BUDGET_OK);
    assert_int_equal(inf_budget_take(b, 1004, 1, 10 * MIB), INF_BUDGET_DAEMON_FULL);
    assert_int_equal(inf_budget_held(b, 1004), 0);
    /* given back: takeable again, by anyone */
    inf_budget_give(b, 1000, 64 * MIB);
    assert_int_equal(inf_budget_held(b, 1000), 0);
    assert_int_equal(inf_budget_take(b, 1004, 10 * MIB, 10 * MIB), INF_BUDGET_OK);
    /* giving back more than held never goes below zero or touches another account */
    inf_budget_give(b, 1004, 100 * MIB);
    assert_int_equal(inf_budget_held(b, 1004), 0);
    assert_int_equal(inf_budget_held(b, 1001), 64 * MIB);
    inf_budget_free(b);
}

static void largest_request_always_fits(void **state)
{
    (void)state;
    struct inf_budget *b = inf_budget_new();
    const uint64_t gib = 1024 * MIB;                             /* MaxRequestSize=1G */
    assert_int_equal(inf_budget_account_max(gib), gib);
    assert_int_equal(inf_budget_daemon_max(gib), 4 * gib);
    assert_int_equal(inf_budget_take(b, 1000, gib, gib), INF_BUDGET_OK);
    assert_int_equal(inf_budget_take(b, 1000, 1, gib), INF_BUDGET_ACCOUNT_FULL);
    /* a reload that lowers MaxRequestSize below what is held: refused, no wrap-around */
    assert_int_equal(inf_budget_take(b, 1000, 1, MIB), INF_BUDGET_ACCOUNT_FULL);
    assert_int_equal(inf_budget_take(b, 1001, 1, MIB), INF_BUDGET_DAEMON_FULL);   /* 1 GiB > 256 MiB */
    inf_budget_give(b, 1000, gib);
    assert_int_equal(inf_budget_take(b, 1001, 1, MIB), INF_BUDGET_OK);
    assert_int_equal(inf_budget_daemon_max(UINT64_MAX), UINT64_MAX);
    inf_budget_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(account_share_then_daemon_whole),
        cmocka_unit_test(largest_request_always_fits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
