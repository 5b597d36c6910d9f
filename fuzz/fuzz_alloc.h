/*
 * For the targets that link the gateway's pure body parsers (xml,
 * lifecycle, batch): the parsers' allocator as exact-size malloc()s,
 * remembered so they are freed after each input (ASan then sees any write
 * past the size a parser computed), and a check of the PostgreSQL array
 * literals they write.
 */

#ifndef PLINTH_FUZZ_ALLOC_H
#define PLINTH_FUZZ_ALLOC_H

#include "fuzz.h"


typedef struct {
    void    **p;
    size_t   *size;
    size_t    n;
    size_t    cap;
} fuzz_allocs_t;


static inline void *
fuzz_alloc(void *ctx, size_t size)
{
    fuzz_allocs_t  *a = ctx;

    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->p = realloc(a->p, a->cap * sizeof(void *));
        a->size = realloc(a->size, a->cap * sizeof(size_t));
        FUZZ_ASSERT(a->p != NULL && a->size != NULL);
    }

    a->p[a->n] = malloc(size ? size : 1);
    FUZZ_ASSERT(a->p[a->n] != NULL);
    a->size[a->n] = size;

    return a->p[a->n++];
}


/* Frees what fuzz_alloc() gave out; a is then empty, ready for reuse. */
static inline void
fuzz_allocs_free(fuzz_allocs_t *a)
{
    size_t  i;

    for (i = 0; i < a->n; i++) {
        free(a->p[i]);
    }

    free(a->p);
    free(a->size);
    memset(a, 0, sizeof(fuzz_allocs_t));
}


/*
 * A PostgreSQL array literal s in a buffer of cap bytes: "{...}" with its
 * NUL inside the buffer; its elements NULL, or quoted text with only '"'
 * and '\\' escaped (text), or true/false or 1 to 9 decimal digits (not
 * text). Aborts when malformed; returns the number of elements.
 */
static inline size_t
fuzz_check_array(const char *s, size_t cap, int text)
{
    size_t       len, n, i;
    const char  *p, *e;

    len = strlen(s);
    FUZZ_ASSERT(len + 1 <= cap);
    FUZZ_ASSERT(len >= 2 && s[0] == '{' && s[len - 1] == '}');

    p = s + 1;
    e = s + len - 1;
    n = 0;

    while (p < e) {
        if (n) {
            FUZZ_ASSERT(*p == ',');
            p++;
        }
        n++;

        if (p + 4 <= e && memcmp(p, "NULL", 4) == 0) {
            p += 4;
            continue;
        }

        if (text) {
            FUZZ_ASSERT(*p == '"');
            for (p++; p < e && *p != '"'; p++) {
                if (*p == '\\') {
                    p++;
                    FUZZ_ASSERT(p < e && (*p == '"' || *p == '\\'));
                }
            }
            FUZZ_ASSERT(p < e);
            p++;
            continue;
        }

        FUZZ_ASSERT(p < e);
        if (*p == 't' || *p == 'f') {
            p++;
            continue;
        }
        for (i = 0; p < e && *p >= '0' && *p <= '9'; p++, i++) {
            /* digits */
        }
        FUZZ_ASSERT(i >= 1 && i <= 9);
    }

    return n;
}

#endif /* PLINTH_FUZZ_ALLOC_H */
