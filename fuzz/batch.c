/*
 * Fuzz target: Batch GET's body (POST /{bucket}?batch), through the REAL
 * parser the gateway runs, plinth_batch_parse()
 * (ngx_plinth_module/ngx_plinth_batch_parse.c: JSON with libjansson, or
 * <Batch> XML with libxml2 and the gateway's options; the entries'
 * validation: key, bucket, versionId, name, range, continueOnError). The
 * gateway's wrapper (ngx_plinth_s3_batch.c) only adds its pool, its
 * version id check and the S3 answer for an error code.
 *
 * vid_valid() below is MIRRORED from ngx_http_plinth_vid_valid()
 * (ngx_plinth_s3_object.c, nginx-typed): keep them in step.
 *
 * Allocations are exact-size malloc()s (freed after each input), so ASan
 * sees any access past what the parser asked for. Checked beyond memory
 * safety: on success 1 to 10,000 items, every key 1 to 1024 bytes, a name
 * (the key's when not given) of 1 to 4096 bytes, a bucket absent or not
 * empty, a version id valid or absent, every string NUL-terminated, a
 * range consistent (a suffix has no first byte; a last byte, when given,
 * is not before the first); and the PostgreSQL array literals the gateway
 * then builds from them (ngx_http_plinth_batch_bucket(), its sizes) fit.
 * The range parser is also run alone on the input.
 */

#include <libxml/parser.h>

#include "fuzz.h"
#include "fuzz_alloc.h"
#include "fuzz_libxml.h"
#include "ngx_plinth_batch_parse.h"
#include "ngx_plinth_pgarray.h"


#define FUZZ_MAX_KEY  1024      /* NGX_PLINTH_MAX_KEY_LEN */

/* ngx_http_plinth_vid_valid(): "null" or 32 lowercase hex digits */
static unsigned
vid_valid(const unsigned char *p, size_t len)
{
    size_t  i;

    if (len == 4 && strncmp((const char *) p, "null", 4) == 0) {
        return 1;
    }

    if (len != 32) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


static void
check_str(const plinth_batch_str_t *s)
{
    FUZZ_ASSERT(s->data != NULL);
    FUZZ_ASSERT(s->data[s->len] == '\0');
}


/* the three text[] literals of ngx_http_plinth_batch_bucket(), sized as
 * it sizes them */
static void
check_arrays(const plinth_batch_item_t *items, size_t n)
{
    size_t          i, bsize, ksize, vsize;
    unsigned char  *buckets, *keys, *vids, *p, *q, *v;
    static const unsigned char  dflt[] = "request-bucket";

    bsize = ksize = vsize = 3;
    for (i = 0; i < n; i++) {
        bsize += 2 * (items[i].bucket.data ? items[i].bucket.len
                                           : sizeof(dflt) - 1) + 3;
        ksize += 2 * items[i].key.len + 3;
        vsize += (items[i].vid.len ? 2 * items[i].vid.len : 4) + 3;
    }

    buckets = malloc(bsize);
    keys = malloc(ksize);
    vids = malloc(vsize);
    FUZZ_ASSERT(buckets && keys && vids);

    p = buckets;
    q = keys;
    v = vids;
    *p++ = '{';
    *q++ = '{';
    *v++ = '{';

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
            *q++ = ',';
            *v++ = ',';
        }
        p = items[i].bucket.data
            ? plinth_pg_array_elem(p, items[i].bucket.data, items[i].bucket.len)
            : plinth_pg_array_elem(p, dflt, sizeof(dflt) - 1);
        q = plinth_pg_array_elem(q, items[i].key.data, items[i].key.len);
        if (items[i].vid.len) {
            v = plinth_pg_array_elem(v, items[i].vid.data, items[i].vid.len);
        } else {
            memcpy(v, "NULL", 4);
            v += 4;
        }
    }

    *p++ = '}'; *p++ = '\0';
    *q++ = '}'; *q++ = '\0';
    *v++ = '}'; *v++ = '\0';

    FUZZ_ASSERT((size_t) (p - buckets) <= bsize);
    FUZZ_ASSERT((size_t) (q - keys) <= ksize);
    FUZZ_ASSERT((size_t) (v - vids) <= vsize);

    free(buckets);
    free(keys);
    free(vids);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                n, i;
    uint8_t              *body;
    unsigned              coe;
    const char           *message;
    fuzz_allocs_t         a;
    plinth_batch_conf_t   conf;
    plinth_parse_err_e    rc;
    plinth_batch_item_t  *items, *it, one;

    /* the body as the gateway reads it: NUL-terminated, length without */
    body = malloc(size + 1);
    FUZZ_ASSERT(body != NULL);
    memcpy(body, data, size);
    body[size] = '\0';

    memset(&a, 0, sizeof(a));
    conf.xml_options = XML_PARSE_NONET | XML_PARSE_NOERROR
                       | XML_PARSE_NOWARNING;
    conf.max_key = FUZZ_MAX_KEY;
    conf.vid_valid = vid_valid;
    conf.alloc = fuzz_alloc;
    conf.ctx = &a;

    rc = plinth_batch_parse(body, size, &conf, &items, &n, &coe, &message);

    if (rc == PLINTH_PARSE_OK) {
        FUZZ_ASSERT(n >= 1 && n <= PLINTH_BATCH_MAX_ENTRIES);
        FUZZ_ASSERT(items != NULL && message == NULL);
        FUZZ_ASSERT(coe == 0 || coe == 1);

        for (i = 0; i < n; i++) {
            it = &items[i];
            check_str(&it->key);
            FUZZ_ASSERT(it->key.len >= 1 && it->key.len <= FUZZ_MAX_KEY);
            check_str(&it->name);
            FUZZ_ASSERT(it->name.len >= 1
                        && it->name.len <= PLINTH_BATCH_MAX_NAME);
            if (it->bucket.data) {
                check_str(&it->bucket);
                FUZZ_ASSERT(it->bucket.len >= 1);
            }
            if (it->vid.len) {
                check_str(&it->vid);
                FUZZ_ASSERT(vid_valid(it->vid.data, it->vid.len));
            }
            if (it->ranged) {
                FUZZ_ASSERT(it->suffix == (it->ra < 0));
                FUZZ_ASSERT(it->ra >= 0 || it->rb >= 0);
                FUZZ_ASSERT(it->ra < 0 || it->rb < 0 || it->rb >= it->ra);
            } else {
                FUZZ_ASSERT(it->ra == -1 && it->rb == -1);
            }
        }

        check_arrays(items, n);

    } else {
        FUZZ_ASSERT(rc == PLINTH_PARSE_MALFORMED_XML
                    || rc == PLINTH_PARSE_KEY_TOO_LONG
                    || rc == PLINTH_PARSE_INVALID_ARGUMENT);
    }

    fuzz_allocs_free(&a);

    /* the range parser alone, on the whole input */
    memset(&one, 0, sizeof(one));
    one.ra = one.rb = -1;
    if (plinth_batch_range(body, size, &one)) {
        FUZZ_ASSERT(one.ranged && one.suffix == (one.ra < 0));
        FUZZ_ASSERT(one.ra < 0 || one.rb < 0 || one.rb >= one.ra);
    }

    free(body);

    return 0;
}
