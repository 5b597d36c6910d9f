/*
 * Fuzz target: PutBucketLifecycleConfiguration's body, through the REAL
 * parser the gateway runs, plinth_lifecycle_parse()
 * (ngx_plinth_module/ngx_plinth_lifecycle_parse.c: libxml2 with the
 * gateway's options, the <LifecycleConfiguration> walk, the rules'
 * validation and the eight PostgreSQL array literals). The gateway's
 * wrapper (ngx_plinth_s3_lifecycle.c) only adds its pool and turns the
 * error code into an S3 answer.
 *
 * Allocations go through exact-size malloc()s, so ASan sees any write past
 * the size computed first. Checked beyond memory safety: on success every
 * array is a balanced literal "{...}" that fills its buffer to exactly
 * its strlen + 1 or less, all eight have the same number of elements
 * (1 to 1000), integer elements are NULL or decimal; on an error, the
 * code is a known one.
 */

#include <libxml/parser.h>

#include "fuzz.h"
#include "fuzz_libxml.h"
#include "ngx_plinth_lifecycle_parse.h"


#define FUZZ_MAX_ALLOCS  16

typedef struct {
    void    *p[FUZZ_MAX_ALLOCS];
    size_t   size[FUZZ_MAX_ALLOCS];
    size_t   n;
} fuzz_allocs_t;


static void *
fuzz_alloc(void *ctx, size_t size)
{
    fuzz_allocs_t  *a = ctx;

    FUZZ_ASSERT(a->n < FUZZ_MAX_ALLOCS);
    a->p[a->n] = malloc(size ? size : 1);
    FUZZ_ASSERT(a->p[a->n] != NULL);
    a->size[a->n] = size;

    return a->p[a->n++];
}


/* The number of top-level elements of a literal; aborts when malformed. */
static size_t
check_array(const char *s, size_t cap, int text)
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


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char             *arrays[PLINTH_LC_ARRAYS];
    size_t            k, n, first;
    uint8_t          *xml;
    const char       *message;
    fuzz_allocs_t     a;
    plinth_lc_err_e   rc;

    /* the body as the gateway reads it: NUL-terminated, length without */
    xml = malloc(size + 1);
    FUZZ_ASSERT(xml != NULL);
    memcpy(xml, data, size);
    xml[size] = '\0';

    a.n = 0;
    rc = plinth_lifecycle_parse(xml, size,
                                XML_PARSE_NONET | XML_PARSE_NOERROR
                                | XML_PARSE_NOWARNING,
                                fuzz_alloc, &a, arrays, &message);

    if (rc == PLINTH_LC_OK) {
        FUZZ_ASSERT(a.n == PLINTH_LC_ARRAYS);
        first = 0;
        for (k = 0; k < PLINTH_LC_ARRAYS; k++) {
            FUZZ_ASSERT(arrays[k] == a.p[k]);
            n = check_array(arrays[k], a.size[k], k < 2);
            if (k == 0) {
                first = n;
                FUZZ_ASSERT(n >= 1 && n <= PLINTH_LIFECYCLE_MAX_RULES);
            }
            FUZZ_ASSERT(n == first);
        }
        FUZZ_ASSERT(message == NULL);

    } else {
        FUZZ_ASSERT(rc == PLINTH_LC_MALFORMED_XML
                    || rc == PLINTH_LC_INVALID_ARGUMENT
                    || rc == PLINTH_LC_NOT_IMPLEMENTED
                    || rc == PLINTH_LC_INVALID_REQUEST
                    || rc == PLINTH_LC_INVALID_STORAGE_CLASS);
    }

    for (k = 0; k < a.n; k++) {
        free(a.p[k]);
    }
    free(xml);

    return 0;
}
