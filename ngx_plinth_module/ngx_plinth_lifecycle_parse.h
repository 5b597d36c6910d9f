/*
 * PutBucketLifecycleConfiguration's document, parsed and validated without
 * nginx: the gateway (ngx_plinth_s3_lifecycle.c) wraps it with its pool
 * and error answers, and fuzz/lifecycle.c links it as it is.
 */

#ifndef PLINTH_LIFECYCLE_PARSE_H
#define PLINTH_LIFECYCLE_PARSE_H

#include <stddef.h>

#include "ngx_plinth_parse.h"

#define PLINTH_LIFECYCLE_MAX_RULES  1000
#define PLINTH_LC_ARRAYS            8


/*
 * Parses <LifecycleConfiguration><Rule>...</Rule>...</...> (len bytes at
 * xml; libxml2 with options, the gateway's NGX_PLINTH_XML_PARSE_OPTIONS)
 * into the eight PostgreSQL array literals of plinth_set_lifecycle (ids,
 * prefixes, enabled, the days of the transitions to STANDARD_IA, GLACIER
 * and DEEP_ARCHIVE, expiration, noncurrent expiration), NUL-terminated, in
 * memory from alloc(ctx, size). On an error, *message is S3's message for
 * it or NULL (the code's default), and arrays[] is not to be used.
 */
plinth_parse_err_e plinth_lifecycle_parse(const unsigned char *xml, size_t len,
    int options, plinth_parse_alloc_pt alloc, void *ctx,
    char *arrays[PLINTH_LC_ARRAYS], const char **message);

#endif /* PLINTH_LIFECYCLE_PARSE_H */
