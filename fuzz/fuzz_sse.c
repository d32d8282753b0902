/* libFuzzer harness for the SSE framing of streamed answers (proxyd/inference_sse.c): the input,
 * fed in pieces whose sizes come from its first byte, splits into events that together with the
 * bytes still pending are exactly the input (nothing lost, duplicated or reordered); each event
 * ends with a blank line; reading an event's data never crashes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxyd/inference_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 17) + 1;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    struct inf_sse s = { 0 };
    char *seen = malloc(len + 1);
    size_t got = 0;
    for (size_t i = 0; i < len; i += step) {
        size_t n = len - i < step ? len - i : step;
        if (inf_sse_feed(&s, in + i, n) < 0) __builtin_trap();   /* inputs are < the bound */
        const char *ev;
        size_t el;
        while ((el = inf_sse_next(&s, &ev)) > 0) {
            if (got + el > len) __builtin_trap();
            char last = ev[el - 1];
            if (last != '\n' && last != '\r') __builtin_trap();
            memcpy(seen + got, ev, el);
            got += el;
            char name[32];
            size_t dl = 0;
            char *d = inf_sse_data(ev, el, &dl, name, sizeof name);
            if (d && strlen(name) >= sizeof name) __builtin_trap();
            free(d);
        }
    }
    if (got + inf_sse_pending(&s) != len) __builtin_trap();
    if (memcmp(seen, in, got) != 0) __builtin_trap();
    free(seen);
    inf_sse_free(&s);
    return 0;
}
