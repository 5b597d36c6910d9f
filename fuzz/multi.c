/*
 * Fuzz target: the frames of a data node's multi-read answer (POST
 * /blobs/multi), through the REAL walker the gateway runs,
 * plinth_multi_parse() (ngx_plinth_module/ngx_plinth_multi.c: a u32
 * length prefix, a protobuf-c MultiReadEntry header, then the data of an
 * item whose code is empty). The input is copied into a buffer of exactly
 * its size, so ASan sees any read past the answer. Checked beyond memory
 * safety: every frame handed on lies inside the answer, its data is there
 * exactly when its code is empty and its length is not zero, and the
 * frames' bytes never add up to more than the answer.
 */

#include "fuzz.h"
#include "ngx_plinth_multi.h"


typedef struct {
    const unsigned char  *start;
    size_t                len;
    size_t                frames;
    uint64_t              data;
} walk_t;


static int
frame(void *arg, uint32_t index, const char *code, const unsigned char *data,
    uint64_t length, uint64_t size)
{
    walk_t  *w = arg;

    (void) index;
    (void) size;

    FUZZ_ASSERT(code != NULL);
    FUZZ_ASSERT(strlen(code) <= PLINTH_MULTI_HDR_MAX);

    if (data != NULL) {
        FUZZ_ASSERT(code[0] == '\0');
        FUZZ_ASSERT(length > 0);
        FUZZ_ASSERT(data >= w->start && data <= w->start + w->len);
        FUZZ_ASSERT(length <= (uint64_t) (w->start + w->len - data));
        /* touch every byte: ASan checks them */
        {
            volatile unsigned char  sum = 0;
            uint64_t                i;

            for (i = 0; i < length; i++) {
                sum ^= data[i];
            }
            (void) sum;
        }
        w->data += length;

    } else {
        FUZZ_ASSERT(code[0] != '\0' || length == 0);
    }

    w->frames++;
    FUZZ_ASSERT(w->data + 4 * w->frames <= w->len);

    return w->frames > 100000;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    walk_t          w;
    unsigned char  *buf;

    buf = malloc(size ? size : 1);
    FUZZ_ASSERT(buf != NULL);
    memcpy(buf, data, size);

    w.start = buf;
    w.len = size;
    w.frames = 0;
    w.data = 0;

    (void) plinth_multi_parse(buf, size, frame, &w);

    free(buf);
    return 0;
}
