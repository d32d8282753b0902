/* Small helpers shared by common/ and its users: allocation that never returns NULL (an
 * allocation failure ends the process, like OpenSSH's xmalloc: a half-built policy must never be
 * used) and string helpers. */
#ifndef PS_UTIL_H
#define PS_UTIL_H

#include <stdbool.h>
#include <stddef.h>

void *ps_xmalloc(size_t n);
void *ps_xcalloc(size_t n, size_t size);
void *ps_xrealloc(void *p, size_t n, size_t size);   /* n*size, overflow-checked */
char *ps_xstrdup(const char *s);
char *ps_xstrndup(const char *s, size_t n);

/* Grow *v (of *n elements, capacity *cap) by one zeroed element and return it. */
void *ps_vec_push(void *vp, size_t *n, size_t *cap, size_t elsize);

bool ps_is_space(int c);
void ps_str_lower(char *s);
/* Next whitespace-separated word of *p (advanced past it) copied into a new string, or NULL. */
char *ps_next_word(const char **p);

#endif
