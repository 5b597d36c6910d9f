/*
 * PostgreSQL array literals for the pure parsers (ngx_plinth_lifecycle_parse.c,
 * ngx_plinth_batch_parse.c) and the rest of the gateway
 * (ngx_plinth_pg_array_elem in ngx_plinth.h): no nginx headers, so the fuzz
 * targets in fuzz/ link the same code the gateway runs.
 */

#ifndef PLINTH_PGARRAY_H
#define PLINTH_PGARRAY_H

#include <stddef.h>


/*
 * Appends s as one element of a PostgreSQL array literal: quoted, with '"'
 * and '\\' escaped. p must have room for 2 * len + 2 bytes.
 */
static inline unsigned char *
plinth_pg_array_elem(unsigned char *p, const unsigned char *s, size_t len)
{
    *p++ = '"';

    while (len--) {
        if (*s == '"' || *s == '\\') {
            *p++ = '\\';
        }
        *p++ = *s++;
    }

    *p++ = '"';

    return p;
}

#endif /* PLINTH_PGARRAY_H */
