/*
 * CRC-64/NVME (S3's CRC64NVME) and the combination of reflected CRCs.
 *
 * Pure C, no nginx types: unit-tested in t/unit/test_crc.c against the
 * catalogue's check values and against the CRC of concatenations.
 *
 * Why hand-written: the CRCs S3 uses come from libraries where Debian has
 * them (CRC32 nginx's own, CRC32C ISA-L, SHA from OpenSSL). Bookworm's
 * ISA-L (2.30) has CRC-64 ECMA, ISO and Jones but not Rocksoft/NVME (added
 * in 2.31), zlib has none, and libcrcutil is C++ templates: so this file
 * holds the one table-driven CRC-64/NVME (slice-by-8) and GF(2) CRC
 * combination (zlib 1.2.12's powers-of-x method: microseconds per combine
 * whatever the length), written once for 32 and 64 bits.
 */

#ifndef NGX_PLINTH_CRC_H
#define NGX_PLINTH_CRC_H

#include <stddef.h>
#include <stdint.h>


/* CRC-64/NVME: poly 0xad93d23594c93659 reflected, init and xorout ~0. */
#define PLINTH_CRC64NVME_INIT  0ULL

/* crc is the previous result (0 to start); returns the CRC so far. */
uint64_t plinth_crc64nvme(uint64_t crc, const void *data, size_t len);

/* Reflected polynomials of the CRCs that S3 can combine. */
#define PLINTH_CRC32_POLY      0xedb88320ULL          /* CRC-32 (zlib) */
#define PLINTH_CRC32C_POLY     0x82f63b78ULL          /* CRC-32C */
#define PLINTH_CRC64NVME_POLY  0x9a6c9329ac4bc9b5ULL  /* CRC-64/NVME */

/*
 * The CRC of A followed by B from crc(A), crc(B) and B's length, for a
 * reflected CRC of `width` bits (32 or 64) with init = xorout = all ones.
 */
uint64_t plinth_crc_combine(uint64_t poly, unsigned width, uint64_t crc_a,
    uint64_t crc_b, uint64_t len_b);

#endif /* NGX_PLINTH_CRC_H */
