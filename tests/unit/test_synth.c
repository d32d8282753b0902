/* Synthetic addresses (proxyd/synth.c): stable per name, inside SyntheticRange, reversible,
 * bounded. */
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
    assert_int_equal(synth_assign(s, "github.com", &a1), 0);
    assert_int_equal(synth_assign(s, "pypi.org", &b), 0);
    assert_int_equal(synth_assign(s, "github.com", &a2), 0);
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
    assert_int_equal(synth_assign(s1, "example.com", &a), 0);
    assert_int_equal(synth_assign(s2, "example.com", &b), 0);
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
    assert_int_equal(synth_assign(s, "inference.local", &a), 0);
    assert_true(synth_lookup(s, a, name));
    assert_string_equal(name, "inference.local");
    /* An address in the range that was never handed out, and one outside the range. */
    other.s_addr = htonl(ntohl(a.s_addr) ^ 1);
    assert_false(synth_lookup(s, other, name));
    inet_pton(AF_INET, "203.0.113.10", &other);
    assert_false(synth_lookup(s, other, name));
    inet_pton(AF_INET, "0.0.0.0", &other);
    assert_false(synth_lookup(s, other, name));
    synth_free(s);
}

static void many_names_distinct(void **state)
{
    struct ps_cidr c = range("198.18.0.0/24");           /* 254 usable: collisions guaranteed */
    struct synth *s = synth_new(&c);
    struct in_addr seen[254];
    char name[32], back[PS_MAX_NAME + 1];
    for (int i = 0; i < 254; i++) {
        snprintf(name, sizeof name, "host%d.example.com", i);
        assert_int_equal(synth_assign(s, name, &seen[i]), 0);
        assert_true(in_range(&c, seen[i]));
        uint32_t host = ntohl(seen[i].s_addr) & 0xff;
        assert_true(host != 0 && host != 255);            /* never network or broadcast */
        for (int j = 0; j < i; j++) assert_int_not_equal(seen[i].s_addr, seen[j].s_addr);
        assert_true(synth_lookup(s, seen[i], back));
        assert_string_equal(back, name);
    }
    /* The range is full and every name is fresh: no address may be recycled. */
    struct in_addr x;
    assert_int_equal(synth_assign(s, "one-too-many.example.com", &x), -1);
    /* Known names still get their address. */
    assert_int_equal(synth_assign(s, "host7.example.com", &x), 0);
    assert_int_equal(x.s_addr, seen[7].s_addr);
    synth_free(s);
}

static void tiny_and_invalid_ranges(void **state)
{
    struct ps_cidr c = range("198.18.0.4/31");
    struct synth *s = synth_new(&c);
    struct in_addr a, b, x;
    assert_non_null(s);
    assert_int_equal(synth_assign(s, "a.example", &a), 0);
    assert_int_equal(synth_assign(s, "b.example", &b), 0);
    assert_int_not_equal(a.s_addr, b.s_addr);
    assert_int_equal(synth_assign(s, "c.example", &x), -1);
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
    assert_int_equal(synth_assign(s, longname, &x), -1);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
