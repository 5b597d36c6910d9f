/*
 * Helpers shared by the libFuzzer targets in fuzz/ (see fuzz/README.md).
 *
 * A target that finds a broken invariant calls FUZZ_ASSERT(), which
 * prints the failed condition and aborts: libFuzzer records that as a
 * crash, like a sanitizer report.
 */

#ifndef PLINTH_FUZZ_H
#define PLINTH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define FUZZ_ASSERT(cond)                                                   \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,      \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)


/* Reads structured values off the front of the fuzz input. */
typedef struct {
    const uint8_t  *p;
    size_t          left;
} fuzz_in_t;


static inline uint8_t
fuzz_u8(fuzz_in_t *in)
{
    uint8_t  v;

    if (in->left == 0) {
        return 0;
    }

    v = *in->p++;
    in->left--;

    return v;
}


static inline uint64_t
fuzz_u64(fuzz_in_t *in, unsigned bytes)
{
    uint64_t  v;
    unsigned  i;

    v = 0;

    for (i = 0; i < bytes; i++) {
        v |= (uint64_t) fuzz_u8(in) << (8 * i);
    }

    return v;
}


/* An exact-size heap copy, so that ASan sees a read one byte past it. */
static inline uint8_t *
fuzz_dup(const void *data, size_t len)
{
    uint8_t  *p;

    p = malloc(len ? len : 1);
    if (p == NULL) {
        abort();
    }

    if (len) {
        memcpy(p, data, len);
    }

    return p;
}


/* The next piece of the input up to (not including) sep, or the rest. */
static inline size_t
fuzz_piece(fuzz_in_t *in, uint8_t sep, const uint8_t **piece)
{
    const uint8_t  *e;
    size_t          n;

    *piece = in->p;
    e = in->left ? memchr(in->p, sep, in->left) : NULL;

    if (e == NULL) {
        n = in->left;
        in->p += n;
        in->left = 0;
        return n;
    }

    n = (size_t) (e - in->p);
    in->p = e + 1;
    in->left -= n + 1;

    return n;
}


/* Non-zero if [p, p + n) lies inside [base, base + size). */
static inline int
fuzz_inside(const void *p, size_t n, const void *base, size_t size)
{
    const uint8_t  *a = p, *b = base;

    if (n == 0) {
        return 1;
    }

    return a >= b && a <= b + size && n <= (size_t) (b + size - a);
}

#endif /* PLINTH_FUZZ_H */
