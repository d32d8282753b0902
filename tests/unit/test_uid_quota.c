/* Per-account budgets (proxyd/uid_quota.c): one account spending its budget leaves the others
 * theirs, the budget comes back over its window, and a crowded table never refuses a stranger. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxyd/uid_quota.h"

static void spent_budget_is_per_account(void **state)
{
    (void)state;
    struct uid_quota *q = uid_quota_new(100, 600000);
    assert_non_null(q);
    for (int i = 0; i < 100; i++)
        assert_true(uid_quota_take(q, 1000, 1));
    assert_false(uid_quota_take(q, 1000, 1));          /* spent */
    assert_true(uid_quota_take(q, 1001, 1));           /* another account: untouched */
    assert_false(uid_quota_take(q, 1000, 2));
    /* a tenth of the window gives back a tenth of the budget, no more */
    for (int i = 0; i < 10; i++)
        assert_true(uid_quota_take(q, 1000, 1 + 60000));
    assert_false(uid_quota_take(q, 1000, 1 + 60000));
    /* a whole window later: full again, and never more than full */
    for (int i = 0; i < 100; i++)
        assert_true(uid_quota_take(q, 1000, 10000000));
    assert_false(uid_quota_take(q, 1000, 10000000));
    uid_quota_free(q);
}

static void crowded_table_lets_strangers_through(void **state)
{
    (void)state;
    struct uid_quota *q = uid_quota_new(1, 600000);
    /* every slot held by an account that has spent its single token */
    for (uid_t u = 0; u < 20 * UID_QUOTA_SLOTS; u++)
        (void)uid_quota_take(q, u, 5);
    unsigned refused = 0;
    for (uid_t u = 0; u < 20 * UID_QUOTA_SLOTS; u++)
        refused += !uid_quota_take(q, u, 5);
    /* the tracked ones are refused (they did spend), the rest could not be tracked: let through */
    assert_true(refused > 0 && refused <= UID_QUOTA_SLOTS);
    assert_null(uid_quota_new(0, 1));
    uid_quota_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spent_budget_is_per_account),
        cmocka_unit_test(crowded_table_lets_strangers_through),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
