/*
 * Unit test for ngx_plinth_module/ngx_plinth_crc.c: CRC-64/NVME against
 * the CRC catalogue's check value and a bit-at-a-time model, and CRC
 * combination against the CRC of the concatenation, for CRC-32 (zlib),
 * CRC-32C (ISA-L) and CRC-64/NVME, on random buffers and split points.
 * Prints TAP; exits 1 if anything failed. argv[1] replaces the seed.
 */

#define _POSIX_C_SOURCE  200809L

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <isa-l/crc.h>
#include <zlib.h>

#include "ngx_plinth_crc.h"


static int       test_count, test_failed;
static uint64_t  test_rng;


static void
check(int cond, const char *fmt, ...)
{
    va_list  ap;

    test_count++;
    if (!cond) {
        test_failed++;
    }
    printf("%sok %d - ", cond ? "" : "not ", test_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}


static uint64_t
rng(void)
{
    /* xorshift64* */
    test_rng ^= test_rng >> 12;
    test_rng ^= test_rng << 25;
    test_rng ^= test_rng >> 27;
    return test_rng * 0x2545f4914f6cdd1dULL;
}


/* the model: one bit at a time, straight from the catalogue's parameters */
static uint64_t
model_crc64nvme(const uint8_t *p, size_t len)
{
    int       k;
    uint64_t  crc = ~0ULL;

    while (len--) {
        crc ^= *p++;
        for (k = 0; k < 8; k++) {
            crc = (crc & 1) ? (crc >> 1) ^ 0x9a6c9329ac4bc9b5ULL : crc >> 1;
        }
    }

    return ~crc;
}


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
main(int argc, char **argv)
{
    static const char     *names[] = { "CRC-32", "CRC-32C", "CRC-64/NVME" };
    static const uint64_t  polys[] = { PLINTH_CRC32_POLY, PLINTH_CRC32C_POLY,
                                       PLINTH_CRC64NVME_POLY };
    static const unsigned  widths[] = { 32, 32, 64 };

    int       alg, i, bad;
    size_t    len, cut, j;
    uint8_t  *buf;
    uint64_t  whole, a, b, split;

    test_rng = argc > 1 ? strtoull(argv[1], NULL, 0)
                        : (uint64_t) time(NULL) * 2654435761ULL + 1;
    printf("# random seed %" PRIu64 "\n", test_rng);

    check(plinth_crc64nvme(0, "123456789", 9) == 0xae8b14860a799888ULL,
          "CRC-64/NVME check value of \"123456789\" is 0xae8b14860a799888");
    check(plinth_crc64nvme(0, "", 0) == 0, "CRC-64/NVME of nothing is 0");
    check(crc_of(0, (const uint8_t *) "123456789", 9) == 0xcbf43926,
          "CRC-32 reference check value");
    check(crc_of(1, (const uint8_t *) "123456789", 9) == 0xe3069283,
          "CRC-32C reference check value");

    buf = malloc(1 << 20);
    if (buf == NULL) {
        return 2;
    }
    for (j = 0; j < (1 << 20); j++) {
        buf[j] = (uint8_t) rng();
    }

    /* slice-by-8 against the bit model, every length 0..64 and offsets */
    bad = 0;
    for (len = 0; len <= 64; len++) {
        for (j = 0; j < 8; j++) {
            if (plinth_crc64nvme(0, buf + j, len)
                != model_crc64nvme(buf + j, len))
            {
                bad++;
            }
        }
    }
    check(bad == 0, "CRC-64/NVME equals the bit model for lengths 0..64 at "
          "8 alignments (%d differ)", bad);

    check(plinth_crc64nvme(0, buf, 1 << 20) == model_crc64nvme(buf, 1 << 20),
          "CRC-64/NVME equals the bit model over 1 MiB");

    /* incremental: any split gives the same result */
    bad = 0;
    for (i = 0; i < 200; i++) {
        len = rng() % 5000;
        cut = len ? rng() % (len + 1) : 0;
        if (plinth_crc64nvme(plinth_crc64nvme(0, buf, cut), buf + cut,
                             len - cut)
            != plinth_crc64nvme(0, buf, len))
        {
            bad++;
        }
    }
    check(bad == 0, "CRC-64/NVME computed in two pieces equals one pass");

    for (alg = 0; alg < 3; alg++) {
        bad = 0;
        for (i = 0; i < 300; i++) {
            len = i < 10 ? (size_t) i : rng() % (1 << 20);
            cut = len ? rng() % (len + 1) : 0;
            whole = crc_of(alg, buf, len);
            a = crc_of(alg, buf, cut);
            b = crc_of(alg, buf + cut, len - cut);
            split = plinth_crc_combine(polys[alg], widths[alg], a, b,
                                       len - cut);
            if (split != whole) {
                bad++;
                if (bad < 3) {
                    printf("# %s: len %zu cut %zu: %" PRIx64 " != %"
                           PRIx64 "\n", names[alg], len, cut, split, whole);
                }
            }
        }
        check(bad == 0, "%s: combine(crc(A), crc(B), |B|) == crc(AB) on 300 "
              "random splits", names[alg]);

        /* many parts, as a multipart upload combines them */
        whole = crc_of(alg, buf, 1 << 20);
        split = crc_of(alg, buf, 0);
        for (j = 0; j < (1 << 20); j += 65536) {
            split = plinth_crc_combine(polys[alg], widths[alg], split,
                                       crc_of(alg, buf + j, 65536), 65536);
        }
        check(split == whole, "%s: 16 parts combined equal the whole",
              names[alg]);
    }

    free(buf);

    printf("1..%d\n", test_count);
    if (test_failed) {
        printf("# %d of %d failed\n", test_failed, test_count);
    }
    return test_failed ? 1 : 0;
}
