/* libFuzzer harness for the helper-to-proxy hand-over of root-only files (proxyd/secrets.c):
 * decode never reads out of bounds, and what it accepts encodes back to the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxyd/secrets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pd_secrets s;
    if (pd_secrets_decode(&s, data, size) < 0)
        return 0;
    unsigned char *out = malloc(size ? size : 1);
    if (!out)
        abort();
    size_t n = pd_secrets_encode(&s, out, size);
    if (n != size || memcmp(out, data, size) != 0)
        abort();
    free(out);
    pd_secrets_free(&s);
    return 0;
}
