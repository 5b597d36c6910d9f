/*
 * Fuzz target: CRC-64/NVME and the combination of reflected CRCs
 * (ngx_plinth_crc.c), which the gateway uses to compute a multipart
 * object's full-object checksum from its parts' checksums.
 *
 * Input: a split point (2 bytes), a length (8 bytes) and two CRC values
 * (8 bytes each) for combining arbitrary values; the rest is data A|B.
 * Checked: crc(A|B) == combine(crc(A), crc(B), len(B)) for CRC-32 (zlib),
 * CRC-32C (ISA-L) and CRC-64/NVME, and that the incremental CRC-64/NVME
 * equals the one-shot one. Arbitrary (crc, crc, length) triples, lengths
 * up to 2^64 - 1, must not crash or take long.
 */

#include <isa-l/crc.h>
#include <zlib.h>

#include "fuzz.h"
#include "ngx_plinth_crc.h"


static uint64_t
crc_of(int alg, const uint8_t *p, size_t len)
{
    switch (alg) {
    case 0:
        return crc32(0, p, (uInt) len);
    case 1:
        return crc32_iscsi((unsigned char *) p, (int) len, 0xffffffff)
               ^ 0xffffffff;
    default:
        return plinth_crc64nvme(0, p, len);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int              alg;
    size_t           split;
    uint64_t         len, ca, cb, whole, a, b;
    const uint8_t   *rest;
    fuzz_in_t        in = { data, size };

    static const uint64_t  polys[] = {
        PLINTH_CRC32_POLY, PLINTH_CRC32C_POLY, PLINTH_CRC64NVME_POLY
    };
    static const unsigned  widths[] = { 32, 32, 64 };

    split = (size_t) fuzz_u64(&in, 2);
    len = fuzz_u64(&in, 8);
    ca = fuzz_u64(&in, 8);
    cb = fuzz_u64(&in, 8);

    rest = in.p;
    if (split > in.left) {
        split = in.left;
    }

    for (alg = 0; alg < 3; alg++) {
        whole = crc_of(alg, rest, in.left);
        a = crc_of(alg, rest, split);
        b = crc_of(alg, rest + split, in.left - split);

        FUZZ_ASSERT(plinth_crc_combine(polys[alg], widths[alg], a, b,
                                       in.left - split) == whole);

        /* arbitrary values: only must not crash */
        (void) plinth_crc_combine(polys[alg], widths[alg], ca, cb, len);
    }

    FUZZ_ASSERT(plinth_crc64nvme(plinth_crc64nvme(0, rest, split),
                                 rest + split, in.left - split)
                == crc_of(2, rest, in.left));

    return 0;
}
