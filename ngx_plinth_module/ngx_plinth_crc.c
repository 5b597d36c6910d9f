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


/* mat (width rows) times vec over GF(2) */
static uint64_t
plinth_gf2_times(const uint64_t *mat, uint64_t vec)
{
    uint64_t  sum = 0;

    while (vec) {
        if (vec & 1) {
            sum ^= *mat;
        }
        vec >>= 1;
        mat++;
    }

    return sum;
}


static void
plinth_gf2_square(uint64_t *square, const uint64_t *mat, unsigned width)
{
    unsigned  n;

    for (n = 0; n < width; n++) {
        square[n] = plinth_gf2_times(mat, mat[n]);
    }
}


uint64_t
plinth_crc_combine(uint64_t poly, unsigned width, uint64_t crc_a,
    uint64_t crc_b, uint64_t len_b)
{
    unsigned  n;
    uint64_t  row, even[64], odd[64];

    if (len_b == 0 || (width != 32 && width != 64)) {
        return len_b == 0 ? crc_a : 0;
    }

    /* odd: the operator for one zero bit */
    odd[0] = poly;
    row = 1;
    for (n = 1; n < width; n++) {
        odd[n] = row;
        row <<= 1;
    }

    plinth_gf2_square(even, odd, width);     /* two zero bits */
    plinth_gf2_square(odd, even, width);     /* four zero bits */

    /* apply len_b zero bytes to crc_a, one squaring per bit of len_b */
    do {
        plinth_gf2_square(even, odd, width);
        if (len_b & 1) {
            crc_a = plinth_gf2_times(even, crc_a);
        }
        len_b >>= 1;
        if (len_b == 0) {
            break;
        }

        plinth_gf2_square(odd, even, width);
        if (len_b & 1) {
            crc_a = plinth_gf2_times(odd, crc_a);
        }
        len_b >>= 1;
    } while (len_b);

    return crc_a ^ crc_b;
}
