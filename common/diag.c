/* Configuration errors: collected (every error, not only the first) and printed "FILE:LINE: msg". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Printed file by file (in the order files were read), each in line order: end-of-file checks
 * are found last but may point at an early line. */
void ps_diags_print(const struct ps_diags *d, FILE *out)
{
    size_t *order = ps_xcalloc(d->n, sizeof *order), *rank = ps_xcalloc(d->n, sizeof *rank);
    for (size_t i = 0; i < d->n; i++) {
        rank[i] = i;
        for (size_t j = 0; j < i; j++)
            if (strcmp(d->v[j].file, d->v[i].file) == 0) {
                rank[i] = rank[j];
                break;
            }
    }
    for (size_t i = 0; i < d->n; i++) {          /* stable insertion sort by (rank, line) */
        size_t k = i;
        while (k > 0 && (rank[order[k - 1]] > rank[i] ||
                         (rank[order[k - 1]] == rank[i] && d->v[order[k - 1]].line > d->v[i].line))) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
    for (size_t i = 0; i < d->n; i++) {
        const struct ps_diag *e = &d->v[order[i]];
        fprintf(out, "%s:%u: %s\n", e->file, e->line, e->msg);
    }
    free(order);
    free(rank);
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
