#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/util.h"

static void oom(void)
{
    fputs("pam_sandbox: out of memory\n", stderr);
    abort();
}

void *ps_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *ps_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

void *ps_xrealloc(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        oom();
    size_t bytes = n * size;
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q)
        oom();
    return q;
}

char *ps_xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        oom();
    return d;
}

char *ps_xstrndup(const char *s, size_t n)
{
    char *d = strndup(s, n);
    if (!d)
        oom();
    return d;
}

void *ps_vec_push(void *vp, size_t *n, size_t *cap, size_t elsize)
{
    void **v = vp;
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *v = ps_xrealloc(*v, *cap, elsize);
    }
    char *el = (char *)*v + *n * elsize;
    memset(el, 0, elsize);
    (*n)++;
    return el;
}

bool ps_is_space(int c)
{
    return c == ' ' || c == '\t';
}

void ps_str_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

char *ps_next_word(const char **p)
{
    const char *s = *p;
    while (ps_is_space(*s))
        s++;
    if (!*s) {
        *p = s;
        return NULL;
    }
    const char *e = s;
    while (*e && !ps_is_space(*e))
        e++;
    *p = e;
    return ps_xstrndup(s, (size_t)(e - s));
}
