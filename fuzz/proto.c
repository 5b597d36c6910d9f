/*
 * Fuzz target: protobuf-c unpacking of every message of
 * proto/plinth.proto (build/proto/plinth.pb-c.c, from `make proto`): the
 * data node's control answers as repaird and the gateway read them from a
 * peer. Each input is unpacked as each message type; a message that
 * unpacks is packed again into a buffer of exactly get_packed_size()
 * bytes, unpacked and packed once more, and both packings must be equal
 * (encoding is stable after one round trip; see round_trip() for the one
 * libprotobuf-c quirk this tolerates) and its strings NUL-terminated.
 */

#include <protobuf-c/protobuf-c.h>

#include "fuzz.h"
#include "plinth.pb-c.h"


static void
round_trip(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
    size_t size)
{
    size_t               n1, n2;
    uint8_t             *b1, *b2;
    ProtobufCMessage    *m, *m2;

    m = protobuf_c_message_unpack(desc, NULL, size, data);
    if (m == NULL) {
        return;
    }

    FUZZ_ASSERT(protobuf_c_message_check(m));

    n1 = protobuf_c_message_get_packed_size(m);
    b1 = fuzz_dup("", n1);
    FUZZ_ASSERT(protobuf_c_message_pack(m, b1) == n1);

    /*
     * libprotobuf-c 1.4.1 accepts an unknown field whose tag is an
     * over-long encoding of 0 ("80 80 80 00") and packs it back as tag 0,
     * which it then rejects (fuzz/corpus/proto/tag0-roundtrip): so a
     * repacked message need not unpack. Plinth only unpacks what peers
     * send and packs what it builds itself, so that is not a Plinth bug.
     */
    m2 = protobuf_c_message_unpack(desc, NULL, n1, b1);
    if (m2 == NULL) {
        protobuf_c_message_free_unpacked(m, NULL);
        free(b1);
        return;
    }

    n2 = protobuf_c_message_get_packed_size(m2);
    FUZZ_ASSERT(n2 == n1);
    b2 = fuzz_dup("", n2);
    FUZZ_ASSERT(protobuf_c_message_pack(m2, b2) == n2);
    FUZZ_ASSERT(memcmp(b1, b2, n1) == 0);

    protobuf_c_message_free_unpacked(m2, NULL);
    protobuf_c_message_free_unpacked(m, NULL);
    free(b1);
    free(b2);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t               i;
    Plinth__BlobInfo    *bi;
    Plinth__BlobList    *bl;
    Plinth__NodeHealth  *nh;
    Plinth__Error       *e;

    round_trip(&plinth__blob_info__descriptor, data, size);
    round_trip(&plinth__blob_list__descriptor, data, size);
    round_trip(&plinth__node_health__descriptor, data, size);
    round_trip(&plinth__error__descriptor, data, size);
    round_trip(&plinth__multi_read_request__descriptor, data, size);
    round_trip(&plinth__multi_read_entry__descriptor, data, size);

    /* the typed entry points, reading fields as the readers do */

    bi = plinth__blob_info__unpack(NULL, size, data);
    if (bi) {
        FUZZ_ASSERT(bi->id != NULL);
        (void) strlen(bi->id);
        FUZZ_ASSERT(bi->n_block_xxh3 == 0 || bi->block_xxh3 != NULL);
        plinth__blob_info__free_unpacked(bi, NULL);
    }

    bl = plinth__blob_list__unpack(NULL, size, data);
    if (bl) {
        for (i = 0; i < bl->n_blobs; i++) {
            FUZZ_ASSERT(bl->blobs[i] != NULL && bl->blobs[i]->id != NULL);
            (void) strlen(bl->blobs[i]->id);
        }
        plinth__blob_list__free_unpacked(bl, NULL);
    }

    nh = plinth__node_health__unpack(NULL, size, data);
    if (nh) {
        FUZZ_ASSERT(nh->status != NULL && nh->version != NULL);
        (void) strlen(nh->status);
        (void) strlen(nh->version);
        plinth__node_health__free_unpacked(nh, NULL);
    }

    e = plinth__error__unpack(NULL, size, data);
    if (e) {
        FUZZ_ASSERT(e->code && e->message && e->blob_id);
        (void) strlen(e->code);
        (void) strlen(e->message);
        (void) strlen(e->blob_id);
        plinth__error__free_unpacked(e, NULL);
    }

    return 0;
}
