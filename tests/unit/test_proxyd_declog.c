/* The decision log (proxyd/declog.c): every record is one line of valid JSON whatever the strings
 * in it hold (quotes, backslashes, control characters, newlines: a log-injection attempt stays
 * inside its field), with the fields of DESIGN.md §5.5, and close records carry the counters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "proxyd/core.h"

struct proxyd *pd;                  /* declog.c needs none of it */

static char path[64];

static int setup(void **state)
{
    snprintf(path, sizeof path, "/tmp/test_declog.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(pd_declog_open(path), 0);
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    return 0;
}

static int count_lines(void)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

static struct json_object *last_record(void)
{
    pd_declog_flush();
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[8192], last[8192] = "";
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        strcpy(last, line);
        n++;
    }
    fclose(f);
    assert_true(n > 0);
    assert_true(strlen(last) > 0 && last[strlen(last) - 1] == '\n');
    struct json_object *j = json_tokener_parse(last);
    assert_non_null(j);
    return j;
}

static const char *field(struct json_object *j, const char *k)
{
    struct json_object *v;
    if (!json_object_object_get_ex(j, k, &v))
        return NULL;
    return json_object_get_string(v);
}

static void hostile_strings_stay_in_their_field(void **state)
{
    struct ps_profile prof = { .name = (char *)"dev\"}, {\"decision\":\"allow" };
    struct pd_client who = { .uid = 1001, .profile = &prof, .mode = PD_MODE_EXPLICIT };
    strcpy(who.user, "ali\\ce\n{\"x\":1}");
    struct pd_log_entry e = {
        .who = &who, .host = "evil\r\n\"host\"\x01\x7f", .port = 443, .address = NULL,
        .decision = "deny", .reason = "no_matching_rule", .rule = "default", .binary = NULL,
        .bytes_up = -1, .bytes_down = -1, .duration_ms = -1,
    };
    pd_log_decision(&e);
    struct json_object *j = last_record();
    assert_string_equal(field(j, "decision"), "deny");
    assert_string_equal(field(j, "account"), "ali\\ce\n{\"x\":1}");
    assert_string_equal(field(j, "profile"), "dev\"}, {\"decision\":\"allow");
    assert_string_equal(field(j, "host"), "evil\r\n\"host\"\x01\x7f");
    assert_string_equal(field(j, "mode"), "explicit");
    assert_int_equal(json_object_get_int(json_object_object_get(j, "uid")), 1001);
    assert_int_equal(json_object_get_int(json_object_object_get(j, "port")), 443);
    assert_null(field(j, "address"));                   /* JSON null */
    assert_false(json_object_object_get_ex(j, "bytes_up", NULL));
    json_object_put(j);
}

static void close_record_has_counters(void **state)
{
    struct pd_client who = { .uid = 7, .mode = PD_MODE_TRANSPARENT };
    strcpy(who.user, "u");
    struct pd_log_entry e = {
        .who = &who, .host = "example.org", .port = 80, .address = "203.0.113.10",
        .decision = "close", .reason = "closed", .rule = "/etc/pam_sandbox/profiles/a.conf:3",
        .binary = "/usr/bin/curl", .bytes_up = 12, .bytes_down = 3456789012LL, .duration_ms = 42,
        .extra_json = "\"model\":\"m\"",
    };
    pd_log_decision(&e);
    struct json_object *j = last_record();
    assert_string_equal(field(j, "mode"), "transparent");
    assert_null(field(j, "profile"));
    assert_string_equal(field(j, "binary"), "/usr/bin/curl");
    assert_int_equal(json_object_get_int64(json_object_object_get(j, "bytes_down")), 3456789012LL);
    assert_int_equal(json_object_get_int64(json_object_object_get(j, "duration_ms")), 42);
    assert_string_equal(field(j, "model"), "m");
    json_object_put(j);
}

/* An inference record knows its duration but not its bytes: those are null, not -1. */
static void unknown_counters_are_null(void **state)
{
    struct pd_client who = { .uid = 7, .mode = PD_MODE_INFERENCE };
    strcpy(who.user, "u");
    struct pd_log_entry e = {
        .who = &who, .host = "inference.local", .port = 443, .address = "203.0.113.10",
        .decision = "allow", .reason = "ok", .rule = "default", .binary = NULL,
        .bytes_up = -1, .bytes_down = -1, .duration_ms = 5,
    };
    pd_log_decision(&e);
    struct json_object *j = last_record();
    struct json_object *v = NULL;
    assert_true(json_object_object_get_ex(j, "bytes_up", &v));
    assert_null(v);                                     /* present, and JSON null */
    assert_true(json_object_object_get_ex(j, "bytes_down", &v));
    assert_null(v);
    assert_int_equal(json_object_get_int64(json_object_object_get(j, "duration_ms")), 5);
    json_object_put(j);
}

static void oversize_record_stays_valid(void **state)
{
    char big[4000];
    memset(big, '"', sizeof big - 1);                   /* every byte doubles when escaped */
    big[sizeof big - 1] = '\0';
    struct pd_client who = { .uid = 1, .mode = PD_MODE_DNS };
    struct pd_log_entry e = {
        .who = &who, .host = big, .port = 0, .decision = "deny", .reason = "r", .rule = big,
        .binary = big, .bytes_up = -1, .bytes_down = -1, .duration_ms = -1, .extra_json = big,
    };
    pd_log_decision(&e);
    struct json_object *j = last_record();           /* parses: never a cut-off record */
    assert_string_equal(field(j, "decision"), "deny");
    json_object_put(j);
}

/* Records are queued and written once per loop turn; a batch larger than the queue is written
 * in order and whole (every line parses), none lost. */
static void batched_records_whole_and_in_order(void **state)
{
    pd_declog_flush();
    int before = count_lines();
    struct pd_client who = { .uid = 9, .mode = PD_MODE_EXPLICIT };
    strcpy(who.user, "batch");
    char host[64], pad[3000];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < 100; i++) {                   /* ~300 KiB: several queue flushes */
        snprintf(host, sizeof host, "h%03d.example", i);
        struct pd_log_entry e = {
            .who = &who, .host = host, .port = 80, .decision = "allow", .reason = "allow_rule",
            .rule = pad, .bytes_up = -1, .bytes_down = -1, .duration_ms = -1,
        };
        pd_log_decision(&e);
    }
    pd_declog_flush();
    assert_int_equal(count_lines(), before + 100);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char line[8192];
    int i = 0, n = 0;
    while (fgets(line, sizeof line, f)) {
        if (n++ < before)
            continue;
        struct json_object *j = json_tokener_parse(line);
        assert_non_null(j);
        snprintf(host, sizeof host, "h%03d.example", i++);
        assert_string_equal(field(j, "host"), host);
        json_object_put(j);
    }
    fclose(f);
    assert_int_equal(i, 100);
}

static void json_str_escapes(void **state)
{
    char out[64];
    pd_json_str(out, sizeof out, "a\"b\\c\n");
    assert_string_equal(out, "\"a\\\"b\\\\c\\u000a\"");
    pd_json_str(out, sizeof out, NULL);
    assert_string_equal(out, "null");
    pd_json_str(out, 8, "abcdefghijkl");                  /* truncated but still a string */
    assert_true(out[0] == '"' && out[strlen(out) - 1] == '"');
    /* UTF-8 is kept; bytes that are not UTF-8 (a stray continuation, a lone lead byte, an overlong
     * form, a surrogate) become \u00XX, so the record stays valid JSON for strict readers */
    pd_json_str(out, sizeof out, "/h\xc3\xa9/\xe2\x82\xac");
    assert_string_equal(out, "\"/h\xc3\xa9/\xe2\x82\xac\"");
    pd_json_str(out, sizeof out, "/x\x80\xc3/\xc0\xaf\xed\xa0\x80\xff");
    assert_string_equal(out, "\"/x\\u0080\\u00c3/\\u00c0\\u00af\\u00ed\\u00a0\\u0080\\u00ff\"");
    /* never cut inside a character */
    pd_json_str(out, 12, "ab\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac");
    assert_string_equal(out, "\"ab\"");
}

/* One account's flood of denials is written up to its ceiling (1,000 in a burst), then counted and
 * reported as one record; another account's denials and any account's allows are unaffected. */
static void denial_flood_is_capped_and_reported(void **state)
{
    (void)state;
    pd_declog_flush();
    int before = count_lines();
    struct pd_client flood = { .uid = 4711, .mode = PD_MODE_DNS }, other = { .uid = 4712, .mode = PD_MODE_DNS };
    snprintf(flood.user, sizeof flood.user, "flooder");
    snprintf(other.user, sizeof other.user, "bystander");
    for (int i = 0; i < 1500; i++) {
        struct pd_log_entry e = { .who = &flood, .host = "denied.example", .decision = "deny",
                                  .reason = "no_matching_rule", .rule = "default",
                                  .bytes_up = -1, .bytes_down = -1, .duration_ms = -1 };
        pd_log_decision(&e);
    }
    struct pd_log_entry d = { .who = &other, .host = "x.example", .decision = "deny", .reason = "no_matching_rule",
                              .rule = "default", .bytes_up = -1, .bytes_down = -1, .duration_ms = -1 };
    pd_log_decision(&d);
    struct pd_log_entry a = { .who = &flood, .host = "ok.example", .decision = "allow", .reason = "allow_rule",
                              .rule = "f:1", .bytes_up = -1, .bytes_down = -1, .duration_ms = -1 };
    pd_log_decision(&a);
    pd_declog_flush();
    /* 1,000 at once, plus what the 100/s refill gave back while the loop ran (a slow machine) */
    int written = count_lines() - before - 2;
    assert_true(written >= 1000 && written < 1100);
    pd_declog_report_suppressed();
    struct json_object *j = last_record();
    assert_string_equal(field(j, "decision"), "suppressed");
    assert_string_equal(field(j, "reason"), "deny_rate_limit");
    assert_string_equal(field(j, "account"), "flooder");
    char want[16];
    snprintf(want, sizeof want, "%d", 1500 - written);   /* every denial written or counted */
    assert_string_equal(field(j, "count"), want);
    json_object_put(j);
    assert_int_equal(count_lines() - before, written + 2 + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hostile_strings_stay_in_their_field),
        cmocka_unit_test(close_record_has_counters),
        cmocka_unit_test(unknown_counters_are_null),
        cmocka_unit_test(oversize_record_stays_valid),
        cmocka_unit_test(batched_records_whole_and_in_order),
        cmocka_unit_test(json_str_escapes),
        cmocka_unit_test(denial_flood_is_capped_and_reported),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
