/* Configuration errors: collected (every error, not only the first) and printed "FILE:LINE: msg". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "common/config.h"
#include "common/util.h"

void ps_diags_add(struct ps_diags *d, const char *file, unsigned line, const char *fmt, ...)
{
    if (!d)
        return;
    struct ps_diag *e = ps_vec_push(&d->v, &d->n, &d->cap, sizeof *d->v);
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&e->msg, fmt, ap) < 0)
        e->msg = NULL;
    va_end(ap);
    if (!e->msg)
        e->msg = ps_xstrdup("(out of memory formatting message)");
    e->file = ps_xstrdup(file ? file : "(config)");
    e->line = line;
}

void ps_diags_print(const struct ps_diags *d, FILE *out)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(out, "%s:%u: %s\n", d->v[i].file, d->v[i].line, d->v[i].msg);
}

void ps_diags_free(struct ps_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].file);
        free(d->v[i].msg);
    }
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}
