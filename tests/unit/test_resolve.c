/* Account -> profile: first profile (file-name order) wins, User= and Group= (primary and
 * supplementary), UID 0 never by Group=, no match -> not sandboxed; and one real NSS lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common/config.h"
#include "common/resolve.h"

static struct ps_config *cfg;

static void add_profile(const char *file, const char *body)
{
    struct ps_diags d = { 0 };
    if (ps_config_parse_buffer(cfg, PS_FILE_PROFILE, file, body, strlen(body), &d) < 0) {
        ps_diags_print(&d, stderr);
        fail_msg("%s did not parse", file);
    }
    ps_diags_free(&d);
}

static int setup(void **state)
{
    (void)state;
    cfg = ps_config_new_empty("/x");
    /* in file-name order, as ps_config_load gives them */
    add_profile("p/10-ci.conf", "[Match]\nUser=ci-runner\n");
    add_profile("p/20-dev.conf", "[Match]\n# comment\nGroup=sandboxed developers\nUser=alice\n");
    add_profile("p/30-all.conf", "[Match]\nGroup=users\nGroup=root\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ps_config_free(cfg);
    return 0;
}

/* A hand-made identity: groups given as "name" strings; the first is the primary group. */
static void ident(struct ps_identity *id, const char *name, uid_t uid, int ngroups, ...)
{
    memset(id, 0, sizeof *id);
    snprintf(id->name, sizeof id->name, "%s", name);
    id->uid = uid;
    va_list ap;
    va_start(ap, ngroups);
    for (int i = 0; i < ngroups; i++) {
        id->gids[i] = (gid_t)(59000 + i);
        id->group_names[i] = strdup(va_arg(ap, const char *));
    }
    va_end(ap);
    id->n_gids = ngroups;
}

static void test_user_match(void **state)
{
    (void)state;
    struct ps_identity id;
    char why[512];
    ident(&id, "ci-runner", 59001, 1, "ci-runner");
    const struct ps_profile *p = ps_resolve_profile(cfg, &id, why, sizeof why);
    assert_non_null(p);
    assert_string_equal(p->name, "10-ci");
    assert_string_equal(why, "p/10-ci.conf:2: User=ci-runner");
    ps_identity_free(&id);
}

static void test_first_profile_wins(void **state)
{
    (void)state;
    struct ps_identity id;
    char why[512];
    /* ci-runner is also in "users" (30-all) and "sandboxed" (20-dev): 10-ci comes first */
    ident(&id, "ci-runner", 59001, 3, "ci-runner", "users", "sandboxed");
    assert_string_equal(ps_resolve_profile(cfg, &id, why, sizeof why)->name, "10-ci");
    ps_identity_free(&id);
    /* alice matches 20-dev by User= and 30-all by Group=: 20-dev */
    ident(&id, "alice", 59002, 2, "users", "staff");
    assert_string_equal(ps_resolve_profile(cfg, &id, why, sizeof why)->name, "20-dev");
    assert_string_equal(why, "p/20-dev.conf:4: User=alice");
    ps_identity_free(&id);
}

static void test_group_primary_and_supplementary(void **state)
{
    (void)state;
    struct ps_identity id;
    char why[512];
    ident(&id, "bob", 59003, 3, "bob", "audio", "developers");
    const struct ps_profile *p = ps_resolve_profile(cfg, &id, why, sizeof why);
    assert_non_null(p);
    assert_string_equal(p->name, "20-dev");
    assert_string_equal(why, "p/20-dev.conf:3: Group=developers (supplementary)");
    ps_identity_free(&id);
    ident(&id, "carol", 59004, 1, "sandboxed");
    p = ps_resolve_profile(cfg, &id, why, sizeof why);
    assert_non_null(p);
    assert_string_equal(why, "p/20-dev.conf:3: Group=sandboxed (primary)");
    ps_identity_free(&id);
}

static void test_no_match(void **state)
{
    (void)state;
    struct ps_identity id;
    char why[512];
    ident(&id, "dave", 59005, 2, "dave", "audio");
    assert_null(ps_resolve_profile(cfg, &id, why, sizeof why));
    assert_string_equal(why, "no profile matches user dave");
    ps_identity_free(&id);
    /* a group without a name in NSS matches nothing */
    ident(&id, "erin", 59006, 1, "x");
    free(id.group_names[0]);
    id.group_names[0] = NULL;
    assert_null(ps_resolve_profile(cfg, &id, NULL, 0));
    ps_identity_free(&id);
    assert_null(ps_resolve_profile(NULL, &id, NULL, 0));
}

static void test_uid0_never_by_group(void **state)
{
    (void)state;
    struct ps_identity id;
    char why[512];
    /* root is in "root", "users" and "sandboxed": no Group= may confine it */
    ident(&id, "root", 0, 3, "root", "users", "sandboxed");
    assert_null(ps_resolve_profile(cfg, &id, why, sizeof why));
    ps_identity_free(&id);
    /* any account with UID 0, whatever its name */
    ident(&id, "toor", 0, 1, "sandboxed");
    assert_null(ps_resolve_profile(cfg, &id, why, sizeof why));
    ps_identity_free(&id);
    /* not even by User= naming an alias of it: a confined root would own its own confinement, and
     * the ruleset never steers UID 0 (every such login would be refused) */
    add_profile("p/40-root.conf", "[Match]\nUser=toor\n");
    ident(&id, "toor", 0, 1, "sandboxed");
    assert_null(ps_resolve_profile(cfg, &id, why, sizeof why));
    assert_non_null(strstr(why, "UID 0, which is never sandboxed"));
    ps_identity_free(&id);
    /* the same profile still matches a real account of that name */
    ident(&id, "toor", 1234, 1, "toor");
    const struct ps_profile *p = ps_resolve_profile(cfg, &id, why, sizeof why);
    assert_non_null(p);
    assert_string_equal(p->name, "40-root");
    ps_identity_free(&id);
}

static void test_nss_lookup(void **state)
{
    (void)state;
    struct ps_identity id;
    /* root exists on every system; its primary group comes first */
    assert_int_equal(ps_identity_lookup("root", &id), 0);
    assert_int_equal(id.uid, 0);
    assert_true(id.n_gids >= 1);
    assert_int_equal(id.gids[0], 0);
    assert_non_null(id.group_names[0]);
    assert_string_equal(id.group_names[0], "root");
    assert_null(ps_resolve_profile(cfg, &id, NULL, 0));   /* Group=root never confines root */
    ps_identity_free(&id);
    assert_int_equal(ps_identity_lookup_uid(0, &id), 0);
    assert_string_equal(id.name, "root");
    ps_identity_free(&id);
    errno = 0;
    assert_int_equal(ps_identity_lookup("no-such-user-ps59099", &id), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(ps_identity_lookup_uid(59099, &id), -1);
    assert_int_equal(errno, ENOENT);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_user_match), T(test_first_profile_wins), T(test_group_primary_and_supplementary),
        T(test_no_match), T(test_uid0_never_by_group), T(test_nss_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
