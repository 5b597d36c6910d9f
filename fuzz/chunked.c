/*
 * Fuzz target: the aws-chunked decoder (chunk sizes, chunk signatures,
 * trailers), fed in slices the way nginx hands a body over, with the
 * signature chain checked at each event as ngx_plinth_body.c does
 * (plinth_sigv4_chain_chunk() at CHUNK_END and LAST, trailer hashing and
 * plinth_sigv4_chain_trailer() at x-amz-trailer-signature).
 *
 * Input: mode byte (signed, signed with trailer, unsigned with trailer),
 * options byte (bit 0: declare x-amz-decoded-content-length, then 2 more
 * bytes give it; bit 1: S3's 8 KiB minimum chunk), max_trailers byte,
 * slicing seed byte; the rest is the body. Each slice is an exact-size
 * heap copy. Invariants checked: events come in a legal order, DATA lies
 * inside its slice, a chunk's DATA adds up to its declared size, the
 * decoded total matches the declared length at DONE, errors are sticky.
 */

#include "fuzz.h"
#include "ngx_plinth_chunked.h"
#include "ngx_plinth_sigv4.h"


static int
is_hex64(const unsigned char *s)
{
    size_t  i;

    for (i = 0; i < 64; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                      in_chunk, done;
    size_t                   off, n;
    int64_t                  declared;
    uint8_t                  mode, opts, seed, *slice;
    uint64_t                 chunk_size, chunk_seen, total;
    unsigned char            key[32], md[32];
    unsigned char            sig[64];
    fuzz_in_t                in = { data, size };
    EVP_MD_CTX              *chunk_sha, *trailer_sha;
    plinth_chunked_t         d;
    plinth_chunked_rc_t      rc, again;
    plinth_chunked_event_t   ev;
    plinth_sigv4_chain_t     chain;
    const unsigned char     *p, *end;

    static const unsigned char  seed_sig[] =
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

    mode = fuzz_u8(&in) % 3;
    opts = fuzz_u8(&in);
    declared = (opts & 1) ? (int64_t) fuzz_u64(&in, 2) : -1;

    plinth_chunked_init(&d, (plinth_chunked_mode_t) mode, declared);

    if (opts & 2) {
        d.min_chunk_size = PLINTH_CHUNKED_S3_MIN_CHUNK;
    }

    d.max_trailers = fuzz_u8(&in) % (PLINTH_CHUNKED_MAX_TRAILERS + 4);
    seed = fuzz_u8(&in);

    memset(key, 0x5a, sizeof(key));
    FUZZ_ASSERT(plinth_sigv4_chain_init(&chain, key,
                    (plinth_sv_str_t) {
                        (const unsigned char *) "20130524T000000Z", 16 },
                    (plinth_sv_str_t) {
                        (const unsigned char *)
                        "20130524/us-east-1/s3/aws4_request", 34 },
                    (plinth_sv_str_t) { seed_sig, 64 })
                == PLINTH_SIGV4_OK);

    chunk_sha = EVP_MD_CTX_new();
    trailer_sha = EVP_MD_CTX_new();
    FUZZ_ASSERT(chunk_sha && trailer_sha);
    FUZZ_ASSERT(plinth_sigv4_sha256_init(trailer_sha) == PLINTH_SIGV4_OK);

    in_chunk = 0;
    done = 0;
    chunk_size = 0;
    chunk_seen = 0;
    total = 0;
    rc = PLINTH_CHUNKED_AGAIN;

    for (off = 0; off < in.left; off += n) {
        /* slice lengths from the seed: 1..16, 1..256, or everything */
        switch (seed & 3) {
        case 0:
            n = in.left - off;
            break;
        case 1:
            n = 1 + ((seed >> 2) + off) % 16;
            break;
        default:
            n = 1 + ((size_t) seed * 7 + off * 13) % 256;
            break;
        }

        if (n > in.left - off) {
            n = in.left - off;
        }

        slice = fuzz_dup(in.p + off, n);
        p = slice;
        end = slice + n;

        for ( ;; ) {
            rc = plinth_chunked_next(&d, &p, end, &ev);

            FUZZ_ASSERT(p >= slice && p <= end);

            if (rc != PLINTH_CHUNKED_OK) {
                break;
            }

            FUZZ_ASSERT(!done);

            switch (ev.type) {

            case PLINTH_CHUNKED_EV_CHUNK:
                FUZZ_ASSERT(!in_chunk);
                FUZZ_ASSERT(ev.size > 0);
                in_chunk = 1;
                chunk_size = ev.size;
                chunk_seen = 0;

                if (mode != PLINTH_CHUNKED_UNSIGNED_TRAILER) {
                    FUZZ_ASSERT(ev.signature && is_hex64(ev.signature));
                    memcpy(sig, ev.signature, 64);
                } else {
                    FUZZ_ASSERT(ev.signature == NULL);
                }

                FUZZ_ASSERT(plinth_sigv4_sha256_init(chunk_sha)
                            == PLINTH_SIGV4_OK);
                break;

            case PLINTH_CHUNKED_EV_DATA:
                FUZZ_ASSERT(in_chunk);
                FUZZ_ASSERT(ev.len > 0);
                FUZZ_ASSERT(fuzz_inside(ev.data, ev.len, slice, n));
                chunk_seen += ev.len;
                total += ev.len;
                FUZZ_ASSERT(chunk_seen <= chunk_size);
                FUZZ_ASSERT(plinth_sigv4_sha256_update(chunk_sha, ev.data,
                                                       ev.len)
                            == PLINTH_SIGV4_OK);
                break;

            case PLINTH_CHUNKED_EV_CHUNK_END:
            case PLINTH_CHUNKED_EV_LAST:
                if (ev.type == PLINTH_CHUNKED_EV_CHUNK_END) {
                    FUZZ_ASSERT(in_chunk && chunk_seen == chunk_size);
                    in_chunk = 0;

                } else {
                    FUZZ_ASSERT(!in_chunk);

                    if (mode != PLINTH_CHUNKED_UNSIGNED_TRAILER) {
                        FUZZ_ASSERT(ev.signature && is_hex64(ev.signature));
                        memcpy(sig, ev.signature, 64);
                    }

                    FUZZ_ASSERT(plinth_sigv4_sha256_init(chunk_sha)
                                == PLINTH_SIGV4_OK);
                }

                if (mode != PLINTH_CHUNKED_UNSIGNED_TRAILER) {
                    FUZZ_ASSERT(plinth_sigv4_sha256_final(chunk_sha, md)
                                == PLINTH_SIGV4_OK);
                    (void) plinth_sigv4_chain_chunk(&chain, md,
                        (plinth_sv_str_t) { sig, 64 });
                }
                break;

            case PLINTH_CHUNKED_EV_TRAILER:
                FUZZ_ASSERT(!in_chunk);
                FUZZ_ASSERT(mode != PLINTH_CHUNKED_SIGNED);
                FUZZ_ASSERT(ev.name && ev.name_len > 0);
                FUZZ_ASSERT(ev.len <= PLINTH_CHUNKED_MAX_TRAILER_LINE);

                if (ev.name_len == 23
                    && memcmp(ev.name, "x-amz-trailer-signature", 23) == 0)
                {
                    FUZZ_ASSERT(plinth_sigv4_sha256_final(trailer_sha, md)
                                == PLINTH_SIGV4_OK);
                    (void) plinth_sigv4_chain_trailer(&chain, md,
                        (plinth_sv_str_t) { ev.data, ev.len });
                    FUZZ_ASSERT(plinth_sigv4_sha256_init(trailer_sha)
                                == PLINTH_SIGV4_OK);

                } else {
                    FUZZ_ASSERT(plinth_sigv4_trailer_update(trailer_sha,
                        (plinth_sv_str_t) { ev.name, ev.name_len },
                        (plinth_sv_str_t) { ev.data, ev.len })
                        == PLINTH_SIGV4_OK);
                }
                break;

            case PLINTH_CHUNKED_EV_DONE:
                FUZZ_ASSERT(!in_chunk);
                done = 1;

                if (declared >= 0) {
                    FUZZ_ASSERT(total == (uint64_t) declared);
                }
                break;

            default:
                FUZZ_ASSERT(0 && "unknown event");
            }
        }

        free(slice);

        if (rc != PLINTH_CHUNKED_AGAIN) {
            FUZZ_ASSERT(plinth_chunked_s3_error(rc) != NULL);
            FUZZ_ASSERT(plinth_chunked_strerror(rc) != NULL);

            /* errors are sticky */
            p = end = NULL;
            again = plinth_chunked_next(&d, &p, end, &ev);
            FUZZ_ASSERT(again == rc);
            FUZZ_ASSERT(plinth_chunked_finish(&d) == rc);
            break;
        }
    }

    /* complete only if DONE came and nothing (not even a byte) after it */
    again = rc;
    rc = plinth_chunked_finish(&d);
    FUZZ_ASSERT((rc == PLINTH_CHUNKED_OK)
                == (done && again == PLINTH_CHUNKED_AGAIN));

    EVP_MD_CTX_free(chunk_sha);
    EVP_MD_CTX_free(trailer_sha);

    return 0;
}
