/*
 * What the gateway's nginx-free body parsers share (ngx_plinth_s3_parse.c,
 * ngx_plinth_lifecycle_parse.c, ngx_plinth_batch_parse.c): the allocator
 * they take and the errors they give. The gateway answers every error
 * with one function (ngx_http_plinth_parse_error); the fuzz targets in
 * fuzz/ link the parsers as they are.
 */

#ifndef PLINTH_PARSE_H
#define PLINTH_PARSE_H

#include <stddef.h>

/* memory for what a parser returns; NULL when it cannot be had */
typedef void *(*plinth_parse_alloc_pt)(void *ctx, size_t size);

/* each error is the S3 error of its name */
typedef enum {
    PLINTH_PARSE_OK = 0,
    PLINTH_PARSE_MALFORMED_XML,
    PLINTH_PARSE_INVALID_ARGUMENT,
    PLINTH_PARSE_NOT_IMPLEMENTED,
    PLINTH_PARSE_INVALID_REQUEST,
    PLINTH_PARSE_INVALID_STORAGE_CLASS,
    PLINTH_PARSE_KEY_TOO_LONG,
    PLINTH_PARSE_INTERNAL           /* an allocation failed */
} plinth_parse_err_e;

#endif /* PLINTH_PARSE_H */
