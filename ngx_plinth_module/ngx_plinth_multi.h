/*
 * ngx_plinth_multi.h -- the answer of a data node's POST /blobs/multi
 * (proto/plinth.proto, MultiReadEntry): one frame per item, in request
 * order, each "u32 LE header length, MultiReadEntry, then `length` bytes
 * of data when its code is empty". Pure C (protobuf-c), so that
 * fuzz/multi.c runs it on untrusted bytes.
 */

#ifndef NGX_PLINTH_MULTI_H
#define NGX_PLINTH_MULTI_H

#include <stddef.h>
#include <stdint.h>

/* a MultiReadEntry header is never longer (the data node's is < 64) */
#define PLINTH_MULTI_HDR_MAX  1024

/*
 * Called for each frame; code is "" when data holds the item's `length`
 * bytes (data is NULL otherwise). Return non-zero to stop the walk.
 */
typedef int (*plinth_multi_frame_pt)(void *arg, uint32_t index,
    const char *code, const unsigned char *data, uint64_t length,
    uint64_t size);

/*
 * Walk the frames of p[0 .. len). 0: every frame was whole (or cb
 * stopped the walk); -1: a frame is truncated or its header does not
 * parse (the frames before it were given to cb).
 */
int plinth_multi_parse(const unsigned char *p, size_t len,
    plinth_multi_frame_pt cb, void *arg);

#endif /* NGX_PLINTH_MULTI_H */
