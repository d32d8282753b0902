/* libFuzzer harness for the doctor's reading of PAM control fields and its stack walk
 * (ctl/pam_stack.c): any control parses into actions libpam can have (a known action or a jump of
 * 1..), and the walk over a stack built from the input never reads outside it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ctl/pam_stack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* up to 8 controls separated by '\n'; the first byte of each piece is its substack level */
    struct pam_step s[8];
    size_t n = 0;
    char buf[512];
    const char *p = (const char *)data, *end = p + size;
    while (p < end && n < 8) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        if (len >= sizeof buf)
            len = sizeof buf - 1;
        memcpy(buf, p, len);
        buf[len] = '\0';
        int level = len ? (unsigned char)buf[0] % 3 : 0;
        enum pam_control_kind k = pam_control_parse(len ? buf + 1 : buf, &s[n].ctl);
        for (int v = 0; v < PAM_STACK_NVALUES && k == PAM_CONTROL_MODULE; v++)
            if (s[n].ctl.act[v] < PAM_ACT_RESET) __builtin_trap();
        s[n].level = level;
        s[n].runs = k == PAM_CONTROL_MODULE;
        n++;
        p = nl ? nl + 1 : end;
    }
    for (size_t at = 0; at < n; at++) {
        (void)pam_failure_passes(&s[at].ctl);
        for (size_t i = 0; i < n; i++) {
            int v = pam_step_skips(s, n, i, at);
            if (v >= PAM_STACK_NVALUES || (v >= 0 && i >= at)) __builtin_trap();
            v = pam_step_forgets(s, n, i, at);
            if (v >= PAM_STACK_NVALUES || (v >= 0 && i <= at)) __builtin_trap();
        }
    }
    return 0;
}
