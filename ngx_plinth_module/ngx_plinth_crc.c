/*
 * CRC-64/NVME, slice-by-8, and the combination of reflected CRCs over
 * GF(2). See ngx_plinth_crc.h for why these are not from a library.
 */

#include <pthread.h>

#include "ngx_plinth_crc.h"


static uint64_t        plinth_crc64_table[8][256];
static pthread_once_t  plinth_crc64_once = PTHREAD_ONCE_INIT;


static void
plinth_crc64_init(void)
{
    unsigned  i, j, k;
    uint64_t  c;

    for (i = 0; i < 256; i++) {
        c = i;
        for (k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ PLINTH_CRC64NVME_POLY : c >> 1;
        }
        plinth_crc64_table[0][i] = c;
    }

    for (i = 0; i < 256; i++) {
        c = plinth_crc64_table[0][i];
        for (j = 1; j < 8; j++) {
            c = plinth_crc64_table[0][c & 0xff] ^ (c >> 8);
            plinth_crc64_table[j][i] = c;
        }
    }
}


uint64_t
plinth_crc64nvme(uint64_t crc, const void *data, size_t len)
{
    uint64_t        w;
    const uint8_t  *p = data;

    (void) pthread_once(&plinth_crc64_once, plinth_crc64_init);

    crc = ~crc;

    while (len >= 8) {
        /* little-endian load, byte by byte: no alignment assumed */
        w = (uint64_t) p[0] | (uint64_t) p[1] << 8 | (uint64_t) p[2] << 16
            | (uint64_t) p[3] << 24 | (uint64_t) p[4] << 32
            | (uint64_t) p[5] << 40 | (uint64_t) p[6] << 48
            | (uint64_t) p[7] << 56;
        w ^= crc;
        crc = plinth_crc64_table[7][w & 0xff]
              ^ plinth_crc64_table[6][(w >> 8) & 0xff]
              ^ plinth_crc64_table[5][(w >> 16) & 0xff]
              ^ plinth_crc64_table[4][(w >> 24) & 0xff]
              ^ plinth_crc64_table[3][(w >> 32) & 0xff]
              ^ plinth_crc64_table[2][(w >> 40) & 0xff]
              ^ plinth_crc64_table[1][(w >> 48) & 0xff]
              ^ plinth_crc64_table[0][w >> 56];
        p += 8;
        len -= 8;
    }

    while (len--) {
        crc = plinth_crc64_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    }

    return ~crc;
}


/*
 * a times b modulo the polynomial, both reflected (bit width-1 is x^0):
 * zlib's multmodp, for any width up to 64.
 */
static uint64_t
plinth_multmodp(uint64_t a, uint64_t b, uint64_t poly, unsigned width)
{
    uint64_t  m, p;

    m = (uint64_t) 1 << (width - 1);
    p = 0;

    for ( ;; ) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0) {
                break;
            }
        }
        m >>= 1;
        b = (b & 1) ? (b >> 1) ^ poly : b >> 1;
    }

    return p;
}


uint64_t
plinth_crc_combine(uint64_t poly, unsigned width, uint64_t crc_a,
    uint64_t crc_b, uint64_t len_b)
{
    unsigned  k;
    uint64_t  x2n, p;

    if (len_b == 0 || (width != 32 && width != 64)) {
        return len_b == 0 ? crc_a : 0;
    }

    /*
     * x^(8 len_b) mod poly, by squaring: x2n runs through x^(2^k), starting
     * at x^8 (k = 3, a byte); p collects the powers of len_b's bits. Some
     * 64 multiplications of 64 steps: microseconds, whatever the length.
     */
    x2n = (uint64_t) 1 << (width - 2);                  /* x^1 */
    for (k = 0; k < 3; k++) {
        x2n = plinth_multmodp(x2n, x2n, poly, width);   /* x^2, x^4, x^8 */
    }

    p = (uint64_t) 1 << (width - 1);                    /* x^0 */

    while (len_b) {
        if (len_b & 1) {
            p = plinth_multmodp(x2n, p, poly, width);
        }
        len_b >>= 1;
        if (len_b) {
            x2n = plinth_multmodp(x2n, x2n, poly, width);
        }
    }

    return plinth_multmodp(p, crc_a, poly, width) ^ crc_b;
}
