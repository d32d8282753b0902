/* SSE framing of streamed answers (proxyd/inference_sse.c): events end at a blank line whatever
 * the line ending, arrive in any split, are bounded, and their data is read back exactly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proxyd/inference_int.h"

/* Feed text in pieces of `step` bytes; collect the events, joined by '|'. */
static char *split(const char *text, size_t step)
{
    struct inf_sse s = { 0 };
    static char out[4096];
    size_t o = 0, len = strlen(text);
    for (size_t i = 0; i < len; i += step) {
        size_t n = len - i < step ? len - i : step;
        assert_int_equal(inf_sse_feed(&s, text + i, n), 0);
        const char *ev;
        size_t el;
        while ((el = inf_sse_next(&s, &ev)) > 0) {
            memcpy(out + o, ev, el);
            o += el;
            out[o++] = '|';
        }
    }
    out[o] = 0;
    inf_sse_free(&s);
    return out;
}

static void events_in_any_split(void **state)
{
    const char *lf = "data: a\n\ndata: b\ndata: c\n\n: comment\nevent: x\ndata: {}\n\npartial";
    const char *want = "data: a\n\n|data: b\ndata: c\n\n|: comment\nevent: x\ndata: {}\n\n|";
    for (size_t step = 1; step <= strlen(lf); step++)
        assert_string_equal(split(lf, step), want);
    const char *crlf = "data: a\r\n\r\ndata: b\r\n\r\n";
    for (size_t step = 1; step <= strlen(crlf); step++)
        assert_string_equal(split(crlf, step), "data: a\r\n\r\n|data: b\r\n\r\n|");
    /* CR-only: the event after "\r\r" completes when the next byte shows no LF follows */
    assert_string_equal(split("data: a\r\rdata: b\r\rx", 1), "data: a\r\r|data: b\r\r|");
    assert_string_equal(split("data: a\r\r", 3), "");
    /* a blank line alone is an (empty) event: forwarded, never merged into the next */
    assert_string_equal(split("\ndata: a\n\n", 1), "\n|data: a\n\n|");
}

static void pending_reports_cut_streams(void **state)
{
    struct inf_sse s = { 0 };
    const char *ev;
    assert_int_equal(inf_sse_feed(&s, "data: a\n\ndata: b\n", 17), 0);
    assert_int_equal(inf_sse_next(&s, &ev), 9);
    assert_int_equal(inf_sse_next(&s, &ev), 0);
    assert_int_equal(inf_sse_pending(&s), 8);
    inf_sse_free(&s);
}

static void events_are_bounded(void **state)
{
    struct inf_sse s = { 0 };
    char *big = malloc(INF_SSE_MAX_EVENT + 1);
    memset(big, 'x', INF_SSE_MAX_EVENT + 1);
    assert_int_equal(inf_sse_feed(&s, big, INF_SSE_MAX_EVENT + 1), -1);
    assert_int_equal(inf_sse_feed(&s, big, INF_SSE_MAX_EVENT), 0);
    assert_int_equal(inf_sse_feed(&s, "\n\n", 2), -1);     /* held incomplete event too large */
    free(big);
    inf_sse_free(&s);
}

static void data_fields(void **state)
{
    char name[16];
    size_t n;
    const char ev[] = "event: message_delta\r\ndata: {\"a\":\r\ndata:1}\r\nid: 5\r\n\r\n";
    char *d = inf_sse_data(ev, sizeof ev - 1, &n, name, sizeof name);
    assert_string_equal(d, "{\"a\":\n1}");
    assert_int_equal(n, 8);
    assert_string_equal(name, "message_delta");
    free(d);
    assert_null(inf_sse_data(": ping\n\n", 8, &n, name, sizeof name));
    d = inf_sse_data("data\n\n", 6, &n, name, sizeof name);   /* a field with no colon: empty */
    assert_int_equal(n, 0);
    free(d);
    d = inf_sse_data("event: averyveryverylongname\ndata: x\n\n", 38, &n, name, sizeof name);
    assert_int_equal(strlen(name), sizeof name - 1);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(events_in_any_split),
        cmocka_unit_test(pending_reports_cut_streams),
        cmocka_unit_test(events_are_bounded),
        cmocka_unit_test(data_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
