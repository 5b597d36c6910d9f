/*
 * Batch GET's body (POST /{bucket}?batch), parsed and validated without
 * nginx: the gateway (ngx_plinth_s3_batch.c) wraps it with its pool and
 * error answers, and fuzz/batch.c links it as it is.
 */

#ifndef PLINTH_BATCH_PARSE_H
#define PLINTH_BATCH_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "ngx_plinth_parse.h"

#define PLINTH_BATCH_MAX_ENTRIES  10000
#define PLINTH_BATCH_MAX_NAME     4096

typedef unsigned (*plinth_batch_vid_pt)(const unsigned char *p, size_t len);

typedef struct {
    size_t          len;
    unsigned char  *data;        /* NUL-terminated; NULL: absent */
} plinth_batch_str_t;

typedef struct {
    plinth_batch_str_t  bucket;  /* data NULL: the request's bucket */
    plinth_batch_str_t  key;     /* 1 to max_key bytes */
    plinth_batch_str_t  name;    /* the key when not given */
    plinth_batch_str_t  vid;     /* len 0: none asked for */
    int64_t             ra, rb;  /* range: -1 when absent */
    unsigned            ranged:1;
    unsigned            suffix:1;
} plinth_batch_item_t;

typedef struct {
    int                    xml_options;  /* libxml2's, for an XML body */
    size_t                 max_key;      /* NGX_PLINTH_MAX_KEY_LEN */
    plinth_batch_vid_pt    vid_valid;    /* a version id Plinth accepts */
    plinth_parse_alloc_pt  alloc;        /* aligned: the items, their strings */
    void                  *ctx;
} plinth_batch_conf_t;

/*
 * Parses len bytes at body, JSON (libjansson) or, when its first
 * character that is not white space is '<', XML (libxml2), into *n items
 * (1 to 10,000) at *items, and *continue_on_error. On an error, *message
 * is the message of the answer or NULL (the code's default).
 */
plinth_parse_err_e plinth_batch_parse(const unsigned char *body, size_t len,
    const plinth_batch_conf_t *conf, plinth_batch_item_t **items, size_t *n,
    unsigned *continue_on_error, const char **message);

/* "bytes=a-b", "bytes=a-", "bytes=-n": one range, strictly; 0 if not. */
int plinth_batch_range(const unsigned char *s, size_t len,
    plinth_batch_item_t *e);

#endif /* PLINTH_BATCH_PARSE_H */
