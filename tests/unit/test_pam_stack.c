/* libpam's control fields and stack walk as sandboxctl doctor models them (ctl/pam_stack.c).  The
 * expectations are what Debian 12's libpam did with the built module on the same stacks (a session
 * through a failing pam_sandbox.so: refused, or opened without no_new_privs); t_doctor checks the
 * doctor's findings on real files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "ctl/pam_stack.h"

static struct pam_control parse(const char *control)
{
    struct pam_control c;
    assert_int_equal(pam_control_parse(control, &c), PAM_CONTROL_MODULE);
    return c;
}

static void all_bad(const char *control)
{
    struct pam_control c = parse(control);
    for (int v = 0; v < PAM_STACK_NVALUES; v++)
        if (c.act[v] != PAM_ACT_BAD)
            fail_msg("%s: value %d is %d, want bad (libpam's answer to a syntax error)", control, v, c.act[v]);
}

static void test_keywords(void **state)
{
    (void)state;
    struct pam_control c = parse("required");
    assert_int_equal(c.act[PAM_SUCCESS], PAM_ACT_OK);
    assert_int_equal(c.act[PAM_IGNORE], PAM_ACT_IGNORE);
    assert_int_equal(c.act[PAM_SYSTEM_ERR], PAM_ACT_BAD);
    assert_int_equal(parse("Requisite").act[PAM_SYSTEM_ERR], PAM_ACT_DIE);   /* any case, as libpam */
    assert_int_equal(parse("optional").act[PAM_SYSTEM_ERR], PAM_ACT_IGNORE);
    c = parse("SUFFICIENT");
    assert_int_equal(c.act[PAM_SUCCESS], PAM_ACT_DONE);
    assert_int_equal(c.act[PAM_SYSTEM_ERR], PAM_ACT_IGNORE);
    assert_int_equal(pam_control_parse("include", &c), PAM_CONTROL_INCLUDE);
    assert_int_equal(pam_control_parse("Substack", &c), PAM_CONTROL_SUBSTACK);
    all_bad("requird");
}

static void test_brackets(void **state)
{
    (void)state;
    struct pam_control c = parse("[success=ok system_err=ignore default=bad]");
    assert_int_equal(c.act[PAM_SYSTEM_ERR], PAM_ACT_IGNORE);
    assert_int_equal(c.act[PAM_MODULE_UNKNOWN], PAM_ACT_BAD);
    c = parse("[success=1 default=ignore]");
    assert_int_equal(c.act[PAM_SUCCESS], 1);
    assert_int_equal(c.act[PAM_PERM_DENIED], PAM_ACT_IGNORE);
    /* default= fills only what is not named yet; a later name still overrides it */
    c = parse("[default=ignore success=done]");
    assert_int_equal(c.act[PAM_SUCCESS], PAM_ACT_DONE);
    c = parse("[success=done success=ok default=die default=ignore]");
    assert_int_equal(c.act[PAM_SUCCESS], PAM_ACT_OK);
    assert_int_equal(c.act[PAM_SYSTEM_ERR], PAM_ACT_DIE);
    /* blanks around the parts; an action runs into the next pair without a blank, as in libpam */
    c = parse("[ success = done  new_authtok_reqd=12default=reset ]");
    assert_int_equal(c.act[PAM_SUCCESS], PAM_ACT_DONE);
    assert_int_equal(c.act[PAM_NEW_AUTHTOK_REQD], 12);
    assert_int_equal(c.act[PAM_SYSTEM_ERR], PAM_ACT_RESET);
    /* unnamed values: bad */
    assert_int_equal(parse("[success=ok]").act[PAM_SYSTEM_ERR], PAM_ACT_BAD);
    /* libpam reads a bare list the same way */
    assert_int_equal(parse("success=done").act[PAM_SUCCESS], PAM_ACT_DONE);
    /* errors make the whole line bad: names are case-sensitive, no jump of 0, unknown names */
    all_bad("[SUCCESS=DONE default=ignore]");
    all_bad("[success=0 default=ignore]");
    all_bad("[bogus=done default=ignore]");
    all_bad("[success=maybe]");
    all_bad("[success]");
    all_bad("[success default=ignore]");
}

static void test_explain(void **state)
{
    (void)state;
    char b[64];
    struct pam_control c = parse("[success=1 default=ignore]");
    assert_string_equal(pam_control_explain(&c, PAM_SUCCESS, b, sizeof b), "success=1");
    assert_string_equal(pam_control_explain(&c, PAM_SYSTEM_ERR, b, sizeof b), "default=ignore");
    c = parse("sufficient");
    assert_string_equal(pam_control_explain(&c, PAM_SUCCESS, b, sizeof b), "success=done");
    c = parse("[success=ok system_err=reset default=bad]");
    assert_string_equal(pam_control_explain(&c, PAM_SYSTEM_ERR, b, sizeof b), "system_err=reset");
    assert_string_equal(pam_value_name(PAM_MODULE_UNKNOWN), "module_unknown");
}

/* The module's own line: does its failure (or libpam failing to load it) still let the stack
 * succeed?  ignore, a jump and reset do (sessions opened with NoNewPrivs 0); ok and done make the
 * failure the stack's answer, bad and die refuse (sessions refused with "System error"). */
static void test_failure_passes(void **state)
{
    (void)state;
    struct { const char *control; int want; } t[] = {
        { "required", -1 },
        { "requisite", -1 },
        { "optional", PAM_SYSTEM_ERR },
        { "sufficient", PAM_SYSTEM_ERR },
        { "[success=ok system_err=ignore default=bad]", PAM_SYSTEM_ERR },
        { "[success=ok system_err=1 default=bad]", PAM_SYSTEM_ERR },
        { "[success=ok system_err=reset default=bad]", PAM_SYSTEM_ERR },
        { "[success=ok default=ignore]", PAM_SYSTEM_ERR },
        { "[success=ok system_err=bad default=ignore]", PAM_MODULE_UNKNOWN },
        { "[success=ok system_err=ok default=bad]", -1 },
        { "[success=ok system_err=done default=bad]", -1 },
        { "[success=ok default=ok]", -1 },
        { "[success=ok default=die]", -1 },
        { "[success=ok ignore=ignore default=bad]", -1 },
        { "[SUCCESS=ok default=ignore]", -1 },              /* a syntax error: all bad */
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        struct pam_control c = parse(t[i].control);
        int got = pam_failure_passes(&c);
        if (got != t[i].want)
            fail_msg("%s: %d, want %d", t[i].control, got, t[i].want);
    }
}

/* A stack written as "LEVEL:CONTROL" items; "S" as the control is a substack's own line, "M" the
 * module (required). */
struct stk {
    struct pam_step s[16];
    size_t n, at;
};

static struct stk stack(const char *const *items, size_t n)
{
    struct stk k = { .n = n, .at = n };
    for (size_t i = 0; i < n; i++) {
        k.s[i].level = items[i][0] - '0';
        const char *c = items[i] + 2;
        k.s[i].runs = strcmp(c, "S") != 0;
        if (strcmp(c, "M") == 0)
            k.at = i;
        pam_control_parse(k.s[i].runs ? (strcmp(c, "M") ? c : "required") : "substack", &k.s[i].ctl);
    }
    assert_true(k.at < n);
    return k;
}

#define STACK(...) stack((const char *const[]){ __VA_ARGS__ }, \
                         sizeof (const char *const[]){ __VA_ARGS__ } / sizeof(const char *))

/* Which earlier line can skip the module: its index, or -1. */
static int skipper(struct stk k)
{
    int found = -1;
    for (size_t i = 0; i < k.at; i++)
        if (pam_step_skips(k.s, k.n, i, k.at) >= 0 && found < 0)
            found = (int)i;
    return found;
}

static void test_skips(void **state)
{
    (void)state;
    /* Debian's common-session with the module in the "Additional" block */
    assert_int_equal(skipper(STACK("0:[default=1]", "0:requisite", "0:required", "0:required",
                                   "0:optional", "0:M")), -1);
    /* the review's case: a jump of one right before the module */
    assert_int_equal(skipper(STACK("0:required", "0:[success=1 default=ignore]", "0:M", "0:required")), 1);
    assert_int_equal(skipper(STACK("0:[success=2 default=ignore]", "0:required", "0:M")), 0);
    assert_int_equal(skipper(STACK("0:[success=1 default=ignore]", "0:required", "0:M")), -1);
    assert_int_equal(skipper(STACK("0:[default=2 success=ok]", "0:required", "0:M", "0:required")), 0);
    /* landing exactly at the end of the stack skips it; past the end is a bad jump: refused */
    assert_int_equal(skipper(STACK("0:required", "0:[success=1 default=ignore]", "0:M")), 1);
    assert_int_equal(skipper(STACK("0:required", "0:[success=5 default=ignore]", "0:M")), -1);
    /* done, and sufficient (success=done), end the stack before it */
    assert_int_equal(skipper(STACK("0:[success=done default=ignore]", "0:M")), 0);
    assert_int_equal(skipper(STACK("0:required", "0:[success=ok new_authtok_reqd=done default=bad]", "0:M")), 1);
    assert_int_equal(skipper(STACK("0:sufficient", "0:M")), 0);
    assert_int_equal(skipper(STACK("0:requisite", "0:[default=die]", "0:M")), -1);
    /* a substack counts as one module for a jump at its level; included lines count one by one */
    assert_int_equal(skipper(STACK("0:[success=1 default=ignore]", "0:S", "1:required", "1:required",
                                   "0:M")), -1);
    assert_int_equal(skipper(STACK("0:[success=2 default=ignore]", "0:S", "1:required", "1:required",
                                   "0:M")), 0);
    assert_int_equal(skipper(STACK("0:[success=2 default=ignore]", "0:required", "0:required", "0:M")), -1);
    assert_int_equal(skipper(STACK("0:[success=3 default=ignore]", "0:required", "0:required", "0:M")), 0);
    /* done and jumps inside a substack stay inside it */
    assert_int_equal(skipper(STACK("0:S", "1:[success=done default=ignore]", "0:M")), -1);
    assert_int_equal(skipper(STACK("0:S", "1:sufficient", "0:M")), -1);
    assert_int_equal(skipper(STACK("0:S", "1:[success=3 default=ignore]", "1:required", "0:M", "0:required")), -1);
    /* ... but reach a module in the same substack, and from outside the module's substack too */
    assert_int_equal(skipper(STACK("0:S", "1:[success=1 default=ignore]", "1:M")), 1);
    assert_int_equal(skipper(STACK("0:sufficient", "0:S", "1:M")), 0);
    assert_int_equal(skipper(STACK("0:[success=1 default=ignore]", "0:S", "1:required", "1:M", "0:required")), 0);
    /* a substack's own line is passed over by libpam: its (absent) actions do nothing */
    assert_int_equal(skipper(STACK("0:S", "0:M")), -1);
}

/* Which later line can make the stack forget the module's failure: index, or -1. */
static int forgetter(struct stk k)
{
    for (size_t j = k.at + 1; j < k.n; j++)
        if (pam_step_forgets(k.s, k.n, j, k.at) >= 0)
            return (int)j;
    return -1;
}

static void test_forgets(void **state)
{
    (void)state;
    assert_int_equal(forgetter(STACK("0:M", "0:required", "0:optional", "0:[default=die]")), -1);
    assert_int_equal(forgetter(STACK("0:M", "0:[success=reset default=ignore]", "0:required")), 1);
    /* a reset before the module forgets only what came before it */
    assert_int_equal(forgetter(STACK("0:[success=reset default=ignore]", "0:M", "0:required")), -1);
    /* in a substack entered after the module: it restores a state that includes the failure */
    assert_int_equal(forgetter(STACK("0:M", "0:S", "1:required", "1:[success=reset default=ignore]")), -1);
    /* the module in a substack: a reset in it, or after it in the parent, does forget */
    assert_int_equal(forgetter(STACK("0:S", "1:M", "1:[default=reset]")), 2);
    assert_int_equal(forgetter(STACK("0:S", "1:M", "0:[success=reset default=ignore]", "0:required")), 2);
    assert_int_equal(forgetter(STACK("0:S", "1:M", "0:S", "1:[default=reset]")), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keywords), cmocka_unit_test(test_brackets),
        cmocka_unit_test(test_explain), cmocka_unit_test(test_failure_passes),
        cmocka_unit_test(test_skips), cmocka_unit_test(test_forgets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
