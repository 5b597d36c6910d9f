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
#include "fuzz_alloc.h"
#include "fuzz_libxml.h"
#include "ngx_plinth_lifecycle_parse.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char               *arrays[PLINTH_LC_ARRAYS];
    size_t              k, n, first;
    uint8_t            *xml;
    const char         *message;
    fuzz_allocs_t       a;
    plinth_parse_err_e  rc;

    /* the body as the gateway reads it: NUL-terminated, length without */
    xml = malloc(size + 1);
    FUZZ_ASSERT(xml != NULL);
    memcpy(xml, data, size);
    xml[size] = '\0';

    memset(&a, 0, sizeof(a));
    rc = plinth_lifecycle_parse(xml, size,
                                XML_PARSE_NONET | XML_PARSE_NOERROR
                                | XML_PARSE_NOWARNING,
                                fuzz_alloc, &a, arrays, &message);

    if (rc == PLINTH_PARSE_OK) {
        FUZZ_ASSERT(a.n == PLINTH_LC_ARRAYS);
        first = 0;
        for (k = 0; k < PLINTH_LC_ARRAYS; k++) {
            FUZZ_ASSERT(arrays[k] == a.p[k]);
            n = fuzz_check_array(arrays[k], a.size[k], k < 2);
            if (k == 0) {
                first = n;
                FUZZ_ASSERT(n >= 1 && n <= PLINTH_LIFECYCLE_MAX_RULES);
            }
            FUZZ_ASSERT(n == first);
        }
        FUZZ_ASSERT(message == NULL);

    } else {
        FUZZ_ASSERT(rc == PLINTH_PARSE_MALFORMED_XML
                    || rc == PLINTH_PARSE_INVALID_ARGUMENT
                    || rc == PLINTH_PARSE_NOT_IMPLEMENTED
                    || rc == PLINTH_PARSE_INVALID_REQUEST
                    || rc == PLINTH_PARSE_INVALID_STORAGE_CLASS);
    }

    fuzz_allocs_free(&a);
    free(xml);

    return 0;
}
