/*
 * Fuzz target: the XML request bodies DeleteObjects (<Delete>),
 * CompleteMultipartUpload and PutBucketVersioning
 * (<VersioningConfiguration>), through the REAL parsers the gateway runs
 * (ngx_plinth_module/ngx_plinth_s3_parse.c: libxml2 with the gateway's
 * options, a document with a DTD refused, the tree walks and the
 * PostgreSQL array literals). The gateway's wrappers only add their pool
 * and turn an error code into an S3 answer.
 *
 * The whole input is one body; it goes through all three parsers (each
 * rejects a document whose root is not its own). Allocations are
 * exact-size malloc()s, so ASan sees any write past the size a parser
 * computed. Checked beyond memory safety: on success every array literal
 * is balanced and fills at most its buffer, the arrays of one document
 * have as many elements as it has Objects or Parts (1 to 1,000 keys, 1 to
 * 10,000 parts, numbers 1 to 10000), and a versioning status is Enabled or
 * Suspended; on an error, the code is one the parser may give, with S3's
 * message where it has one.
 */

#include <libxml/parser.h>

#include "fuzz.h"
#include "fuzz_alloc.h"
#include "fuzz_libxml.h"
#include "ngx_plinth_s3_parse.h"


/* NGX_PLINTH_XML_PARSE_OPTIONS */
#define XML_OPTIONS  (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)


static void
fuzz_delete(const uint8_t *xml, size_t size)
{
    int                   dtd;
    size_t                n;
    fuzz_allocs_t         a;
    plinth_parse_err_e    rc;
    plinth_delete_doc_t   d;

    memset(&a, 0, sizeof(a));
    rc = plinth_delete_parse(xml, size, XML_OPTIONS, fuzz_alloc, &a, &d,
                             &dtd);

    if (rc == PLINTH_PARSE_OK) {
        FUZZ_ASSERT(!dtd && a.n == 2);
        FUZZ_ASSERT(d.keys == a.p[0] && d.vids == a.p[1]);
        n = fuzz_check_array(d.keys, a.size[0], 1);
        FUZZ_ASSERT(n >= 1 && n <= PLINTH_DELETE_MAX_KEYS);
        FUZZ_ASSERT(fuzz_check_array(d.vids, a.size[1], 1) == n);
        FUZZ_ASSERT(d.quiet == 0 || d.quiet == 1);

    } else {
        FUZZ_ASSERT(rc == PLINTH_PARSE_MALFORMED_XML);
    }

    fuzz_allocs_free(&a);
}


static void
fuzz_complete(const uint8_t *xml, size_t size)
{
    int                     dtd;
    size_t                  n;
    const char             *message, *p;
    fuzz_allocs_t           a;
    plinth_parse_err_e      rc;
    plinth_complete_doc_t   c;

    memset(&a, 0, sizeof(a));
    rc = plinth_complete_parse(xml, size, XML_OPTIONS, fuzz_alloc, &a, &c,
                               &message, &dtd);

    if (rc == PLINTH_PARSE_OK) {
        FUZZ_ASSERT(!dtd && a.n == 3 && message == NULL);
        FUZZ_ASSERT(c.parts == a.p[0] && c.etags == a.p[1]
                    && c.cks == a.p[2]);
        n = fuzz_check_array(c.parts, a.size[0], 0);
        FUZZ_ASSERT(n >= 1 && n <= PLINTH_MPU_MAX_PARTS);
        FUZZ_ASSERT(fuzz_check_array(c.etags, a.size[1], 1) == n);
        FUZZ_ASSERT(fuzz_check_array(c.cks, a.size[2], 1) == n);

        /* every part number is 1 to 10000, none NULL */
        for (p = c.parts + 1; *p != '}'; p++) {
            FUZZ_ASSERT(atoi(p) >= 1 && atoi(p) <= PLINTH_MPU_MAX_PARTS);
            p += strspn(p, "0123456789");
            if (*p == '}') {
                break;
            }
            FUZZ_ASSERT(*p == ',');
        }

    } else if (rc == PLINTH_PARSE_INVALID_ARGUMENT) {
        FUZZ_ASSERT(message != NULL);

    } else {
        FUZZ_ASSERT(rc == PLINTH_PARSE_MALFORMED_XML && message == NULL);
    }

    fuzz_allocs_free(&a);
}


static void
fuzz_versioning(const uint8_t *xml, size_t size)
{
    int                  dtd;
    const char          *status, *message;
    plinth_parse_err_e   rc;

    rc = plinth_versioning_parse(xml, size, XML_OPTIONS, &status, &message,
                                 &dtd);

    if (rc == PLINTH_PARSE_OK) {
        FUZZ_ASSERT(!dtd && message == NULL && status != NULL);
        FUZZ_ASSERT(strcmp(status, "Enabled") == 0
                    || strcmp(status, "Suspended") == 0);

    } else {
        FUZZ_ASSERT(status == NULL);
        FUZZ_ASSERT((rc == PLINTH_PARSE_NOT_IMPLEMENTED && message != NULL)
                    || (rc == PLINTH_PARSE_MALFORMED_XML && message == NULL));
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t  *body;

    if (size > INT32_MAX) {
        return 0;
    }

    /* the body as the gateway reads it: NUL-terminated, length without */
    body = malloc(size + 1);
    FUZZ_ASSERT(body != NULL);
    memcpy(body, data, size);
    body[size] = '\0';

    fuzz_delete(body, size);
    fuzz_complete(body, size);
    fuzz_versioning(body, size);

    free(body);

    return 0;
}
