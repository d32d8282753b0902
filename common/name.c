/* DNS name normalisation: the one place that decides what a host name is (rules, policy, DNS). */
#include <string.h>
#include "common/policy.h"

static bool label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int ps_name_normalize(const char *in, char *out)
{
    size_t n = strlen(in);
    if (n > 0 && in[n - 1] == '.')
        n--;                               /* "example.com." is "example.com" */
    if (n == 0 || n > PS_MAX_NAME)
        return -1;
    size_t label = 0;
    bool last_numeric = true;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        out[i] = c;
        if (c == '.') {
            /* empty label, or one that starts or ends with '-' */
            if (label == 0 || out[i - 1] == '-')
                return -1;
            label = 0;
            last_numeric = true;
            continue;
        }
        if (!label_char(c) || (label == 0 && c == '-') || ++label > 63)
            return -1;
        if (c < '0' || c > '9')
            last_numeric = false;
    }
    out[n] = 0;
    if (out[n - 1] == '-')
        return -1;
    /* A name whose last label is all digits is no host name but a (possibly abbreviated, e.g.
     * "127.1") IPv4 literal, which inet_aton would accept: refuse the ambiguity. */
    if (last_numeric)
        return -1;
    return 0;
}
