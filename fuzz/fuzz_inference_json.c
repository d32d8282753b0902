/* libFuzzer harness for inference.local's JSON body handling (proxyd/inference_json.c): any body
 * is parsed or refused without crashing; an accepted body rewrites to JSON that parses again, with
 * the new model and (when injected) stream_options.include_usage; usage scanning of the same
 * bytes (as a response or an SSE data payload) never crashes and never reports negative counts. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxyd/inference_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct inf_body *b = NULL;
    enum inf_body_err e = inf_body_parse(buf, size, &b);
    if (e == INF_BODY_OK) {
        const char *m = inf_body_model(b);
        if (!m || !*m || strlen(m) > 256) __builtin_trap();
        bool wanted = inf_body_client_wants_usage(b);
        (void)inf_body_stream(b);
        /* the rewrite touches only model and stream_options: what reaches out stays the same */
        const char *reach = inf_body_reach(b);
        size_t n = 0;
        char *out = inf_body_rewrite(b, "upstream-model", size & 1, &n);
        if (!out) __builtin_trap();
        struct inf_body *again = NULL;
        if (inf_body_parse(out, n, &again) != INF_BODY_OK) __builtin_trap();
        if (strcmp(inf_body_model(again), "upstream-model") != 0) __builtin_trap();
        const char *reach2 = inf_body_reach(again);
        if ((reach == NULL) != (reach2 == NULL) || (reach && strcmp(reach, reach2) != 0)) __builtin_trap();
        if ((size & 1) && !inf_body_client_wants_usage(again)) __builtin_trap();
        if (!(size & 1) && wanted != inf_body_client_wants_usage(again)) __builtin_trap();
        inf_body_free(again);
        free(out);
        inf_body_free(b);
    } else if (b) {
        __builtin_trap();
    }
    struct inf_usage u = { -1, -1 };
    bool only = false;
    inf_usage_scan(buf, size, &u, &only);
    if (u.input_tokens < -1 || u.output_tokens < -1) __builtin_trap();
    inf_usage_scan_answer(buf, size, &u);
    if (u.input_tokens < -1 || u.output_tokens < -1) __builtin_trap();
    return 0;
}
