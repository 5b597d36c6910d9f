/*
 * ngx_plinth_multi.c -- walk the frames of a data node's multi-read
 * answer (ngx_plinth_multi.h). The headers are protobuf (protobuf-c);
 * only the length prefix is read here.
 */

#include "ngx_plinth_multi.h"
#include "plinth.pb-c.h"


int
plinth_multi_parse(const unsigned char *p, size_t len,
    plinth_multi_frame_pt cb, void *arg)
{
    int                      stop;
    size_t                   pos, hl;
    uint64_t                 dl;
    Plinth__MultiReadEntry  *e;

    pos = 0;

    while (pos < len) {
        if (len - pos < 4) {
            return -1;
        }

        hl = (size_t) p[pos] | (size_t) p[pos + 1] << 8
             | (size_t) p[pos + 2] << 16 | (size_t) p[pos + 3] << 24;
        pos += 4;

        if (hl > PLINTH_MULTI_HDR_MAX || hl > len - pos) {
            return -1;
        }

        e = plinth__multi_read_entry__unpack(NULL, hl, p + pos);
        if (e == NULL) {
            return -1;
        }
        pos += hl;

        dl = 0;
        if (e->code[0] == '\0') {
            dl = e->length;
            if (dl > len - pos) {
                plinth__multi_read_entry__free_unpacked(e, NULL);
                return -1;
            }
        }

        stop = cb(arg, e->index, e->code, dl ? p + pos : NULL, e->length,
                  e->size);
        pos += (size_t) dl;
        plinth__multi_read_entry__free_unpacked(e, NULL);

        if (stop) {
            return 0;
        }
    }

    return 0;
}
