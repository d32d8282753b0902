/* Synthetic addresses (proxyd/synth.c): stable per account and name, inside SyntheticRange,
 * reversible by the asking account only, bounded, one account held to its share. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/policy.h"
#include "proxyd/synth.h"

#define ALICE ((uid_t)1001)
#define BOB ((uid_t)1002)

static struct ps_cidr range(const char *s)
{
    struct ps_cidr c;
    memset(&c, 0, sizeof c);
    assert_int_equal(ps_cidr_parse(s, &c), 0);
    return c;
}

static bool in_range(const struct ps_cidr *c, struct in_addr a)
{
    uint32_t net, x = ntohl(a.s_addr);
    memcpy(&net, c->addr, 4);
    net = ntohl(net);
    uint32_t mask = c->prefix ? ~0u << (32 - c->prefix) : 0;
    return (x & mask) == (net & mask);
}

static void same_name_same_address(void **state)
{
    struct ps_cidr c = range("198.18.0.0/15");
    struct synth *s = synth_new(&c);
    assert_non_null(s);
    struct in_addr a1, a2, b;
    assert_int_equal(synth_assign(s, ALICE, "github.com", &a1), 0);
    assert_int_equal(synth_assign(s, ALICE, "pypi.org", &b), 0);
    assert_int_equal(synth_assign(s, ALICE, "github.com", &a2), 0);
    assert_int_equal(a1.s_addr, a2.s_addr);
    assert_int_not_equal(a1.s_addr, b.s_addr);
    assert_true(in_range(&c, a1));
    assert_true(in_range(&c, b));
    assert_int_equal(synth_count(s), 2);
    synth_free(s);
}

static void stable_across_instances(void **state)
{
    /* A restart (a new instance) gives a name the same address when nothing collides, so clients
     * that cached an answer across a restart still reach their name. */
    struct ps_cidr c = range("198.18.0.0/15");
    struct synth *s1 = synth_new(&c), *s2 = synth_new(&c);
    struct in_addr a, b;
    assert_int_equal(synth_assign(s1, ALICE, "example.com", &a), 0);
    assert_int_equal(synth_assign(s2, ALICE, "example.com", &b), 0);
    assert_int_equal(a.s_addr, b.s_addr);
    synth_free(s1);
    synth_free(s2);
}

static void lookup_reverses_assign(void **state)
{
    struct ps_cidr c = range("198.18.0.0/15");
    struct synth *s = synth_new(&c);
    struct in_addr a, other;
    char name[PS_MAX_NAME + 1];
    assert_int_equal(synth_assign(s, ALICE, "inference.local", &a), 0);
    assert_true(synth_lookup(s, ALICE, a, name));
    assert_string_equal(name, "inference.local");
    /* An address in the range that was never handed out, and one outside the range. */
    other.s_addr = htonl(ntohl(a.s_addr) ^ 1);
    assert_false(synth_lookup(s, ALICE, other, name));
    inet_pton(AF_INET, "203.0.113.10", &other);
    assert_false(synth_lookup(s, ALICE, other, name));
    inet_pton(AF_INET, "0.0.0.0", &other);
    assert_false(synth_lookup(s, ALICE, other, name));
    synth_free(s);
}

static void many_names_distinct(void **state)
{
    struct ps_cidr c = range("198.18.0.0/24");           /* 254 usable: collisions guaranteed */
    struct synth *s = synth_new(&c);
    struct in_addr seen[254];
    char name[32], back[PS_MAX_NAME + 1];
    /* five accounts, each under its share (254 / 4 = 63 entries) */
    for (int i = 0; i < 254; i++) {
        uid_t who = ALICE + (uid_t)(i % 5);
        snprintf(name, sizeof name, "host%d.example.com", i);
        assert_int_equal(synth_assign(s, who, name, &seen[i]), 0);
        assert_true(in_range(&c, seen[i]));
        uint32_t host = ntohl(seen[i].s_addr) & 0xff;
        assert_true(host != 0 && host != 255);            /* never network or broadcast */
        for (int j = 0; j < i; j++) assert_int_not_equal(seen[i].s_addr, seen[j].s_addr);
        assert_true(synth_lookup(s, who, seen[i], back));
        assert_string_equal(back, name);
    }
    /* The range is full and every name is fresh: no address may be recycled. */
    struct in_addr x;
    assert_int_equal(synth_assign(s, ALICE, "one-too-many.example.com", &x), SYNTH_RANGE_FULL);
    assert_int_equal(synth_assign(s, ALICE + 9, "one-too-many.example.com", &x), SYNTH_RANGE_FULL);
    /* Known names still get their address (host7 is ALICE + 2's). */
    assert_int_equal(synth_assign(s, ALICE + 2, "host7.example.com", &x), 0);
    assert_int_equal(x.s_addr, seen[7].s_addr);
    synth_free(s);
}

static void tiny_and_invalid_ranges(void **state)
{
    struct ps_cidr c = range("198.18.0.4/31");
    struct synth *s = synth_new(&c);
    struct in_addr a, b, x;
    assert_non_null(s);
    assert_int_equal(synth_assign(s, ALICE, "a.example", &a), 0);
    assert_int_equal(synth_assign(s, ALICE, "b.example", &b), 0);
    assert_int_not_equal(a.s_addr, b.s_addr);
    /* too small to share: one account may take it all, and then it is the range that is full */
    assert_int_equal(synth_assign(s, ALICE, "c.example", &x), SYNTH_RANGE_FULL);
    assert_int_equal(synth_assign(s, BOB, "c.example", &x), SYNTH_RANGE_FULL);
    synth_free(s);

    struct ps_cidr v6;
    memset(&v6, 0, sizeof v6);
    v6.family = AF_INET6;
    v6.prefix = 64;
    assert_null(synth_new(&v6));
    assert_null(synth_new(NULL));

    c = range("198.18.0.0/15");
    s = synth_new(&c);
    char longname[PS_MAX_NAME + 10];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(synth_assign(s, ALICE, longname, &x), -1);
    synth_free(s);
}

/* The attack: a mapping is the asking account's secret.  Another account connecting to the address
 * (to learn which name it stands for, or to test a guess) must find an address never handed out. */
static void accounts_do_not_see_each_other(void **state)
{
    struct ps_cidr c = range("198.18.0.0/15");
    struct synth *s = synth_new(&c);
    struct in_addr a, b;
    char name[PS_MAX_NAME + 1];
    assert_int_equal(synth_assign(s, ALICE, "payroll.internal.example", &a), 0);
    assert_false(synth_lookup(s, BOB, a, name));
    assert_false(synth_has_name(s, BOB, "payroll.internal.example"));
    assert_true(synth_has_name(s, ALICE, "payroll.internal.example"));
    assert_true(synth_lookup(s, ALICE, a, name));
    assert_string_equal(name, "payroll.internal.example");
    /* The same name asked by BOB is BOB's own entry, at an address of its own. */
    assert_int_equal(synth_assign(s, BOB, "payroll.internal.example", &b), 0);
    assert_int_not_equal(a.s_addr, b.s_addr);
    assert_false(synth_lookup(s, ALICE, b, name));
    assert_true(synth_lookup(s, BOB, b, name));
    assert_string_equal(name, "payroll.internal.example");
    assert_int_equal(synth_count(s), 2);
    synth_free(s);
}

/* The attack: one account asking for many names (a wildcard rule over a zone that answers every
 * name) must not take the range from the others. */
static void one_account_holds_its_share_only(void **state)
{
    struct ps_cidr c = range("198.18.0.0/24");           /* 254 usable: a share is 63 */
    struct synth *s = synth_new(&c);
    struct in_addr first, x;
    char name[32];
    for (int i = 0; i < 63; i++) {
        snprintf(name, sizeof name, "n%d.flood.example", i);
        assert_int_equal(synth_assign(s, ALICE, name, i ? &x : &first), 0);
    }
    assert_int_equal(synth_assign(s, ALICE, "n63.flood.example", &x), SYNTH_SHARE_FULL);
    /* asking again for a held name still works, and takes nothing */
    assert_int_equal(synth_assign(s, ALICE, "n0.flood.example", &x), 0);
    assert_int_equal(x.s_addr, first.s_addr);
    /* everyone else still gets addresses */
    for (int i = 0; i < 63; i++) {
        snprintf(name, sizeof name, "b%d.example", i);
        assert_int_equal(synth_assign(s, BOB, name, &x), 0);
    }
    assert_int_equal(synth_count(s), 126);
    synth_free(s);
}

/* Reuse waits until a name was last handed out 10 minutes ago (far beyond our 10 s TTL), and an
 * account over its share gives up its own oldest entry, never another account's. */
static void reuse_after_ten_minutes_own_entries_first(void **state)
{
    const uint64_t t0 = 1000000, later = t0 + 10u * 60u * 1000u;
    struct ps_cidr c = range("198.18.0.0/24");
    struct synth *s = synth_new(&c);
    struct in_addr a0, bob, x;
    char name[PS_MAX_NAME + 1];
    assert_int_equal(synth_assign_at(s, BOB, "bob.example", &bob, t0), 0);
    for (int i = 0; i < 63; i++) {
        snprintf(name, sizeof name, "n%d.flood.example", i);
        assert_int_equal(synth_assign_at(s, ALICE, name, i ? &x : &a0, t0 + 1 + (uint64_t)i), 0);
    }
    assert_int_equal(synth_assign_at(s, ALICE, "late.flood.example", &x, later - 1), SYNTH_SHARE_FULL);
    /* BOB's entry is the table's oldest, but ALICE may only give up her own: n0 */
    assert_int_equal(synth_assign_at(s, ALICE, "late.flood.example", &x, later + 1), 0);
    assert_false(synth_lookup(s, ALICE, a0, name));
    assert_true(synth_lookup(s, BOB, bob, name));
    assert_string_equal(name, "bob.example");
    assert_int_equal(synth_count(s), 64);
    synth_free(s);

    /* A full range: the oldest entry goes, whoever's it is, once 10 minutes old. */
    s = synth_new(&c);
    for (int i = 0; i < 254; i++) {
        snprintf(name, sizeof name, "h%d.example", i);
        assert_int_equal(synth_assign_at(s, ALICE + (uid_t)(i % 5), name, i ? &x : &a0, t0 + (uint64_t)i), 0);
    }
    assert_int_equal(synth_assign_at(s, BOB + 10, "new.example", &x, t0 + 600), SYNTH_RANGE_FULL);
    assert_int_equal(synth_assign_at(s, BOB + 10, "new.example", &x, later + 1), 0);
    assert_false(synth_lookup(s, ALICE, a0, name));      /* h0, ALICE's, was the oldest */
    assert_true(synth_lookup(s, BOB + 10, x, name));
    assert_string_equal(name, "new.example");
    synth_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_name_same_address),
        cmocka_unit_test(stable_across_instances),
        cmocka_unit_test(lookup_reverses_assign),
        cmocka_unit_test(many_names_distinct),
        cmocka_unit_test(tiny_and_invalid_ranges),
        cmocka_unit_test(accounts_do_not_see_each_other),
        cmocka_unit_test(one_account_holds_its_share_only),
        cmocka_unit_test(reuse_after_ten_minutes_own_entries_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
