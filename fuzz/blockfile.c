/*
 * Fuzz target: the data node's on-disk blob format (datanode/blockfile.c):
 * trailer and footer decoding of arbitrary bytes, and blockfile_open() +
 * blockfile_verify() on an arbitrary file (held in a memfd, so no disk is
 * touched), which is what a data node does with every blob it serves or
 * scrubs.
 *
 * Input: a flags byte, then the file. Without help a fuzzer never gets
 * past the footer's XXH3 self-check, so the flags ask for fix-ups before
 * decoding: bit 0 recomputes footer_xxh3; bit 1 also recomputes the block
 * checksums and the whole-blob XXH3 from the data (when the trailer's
 * block size and size are usable), so verify can succeed.
 *
 * Checked: a decoded trailer re-encodes to the same 48 bytes; decode
 * results are consistent (block_count = ceil(size / block_size)); verify's
 * buffer is exactly min(block_size, size) bytes (blockfile_read_block
 * never reads more than one block, the last one short); the file read
 * whole into memory (blockfile_open_mem, blockfile_block_mem: a data
 * node's small reads) gets the same verdict, footer and blocks as the
 * file read through its descriptor.
 */

#define _GNU_SOURCE

#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "blockfile.h"


static int  memfd = -1;


static uint64_t
get_u64(const uint8_t *p)
{
    uint64_t  v;
    unsigned  i;

    v = 0;
    for (i = 0; i < 8; i++) {
        v |= (uint64_t) p[i] << (8 * i);
    }

    return v;
}


static void
put_u64(uint8_t *p, uint64_t v)
{
    unsigned  i;

    for (i = 0; i < 8; i++) {
        p[i] = (uint8_t) (v >> (8 * i));
    }
}


static void
fixup(uint8_t *f, size_t len, unsigned flags)
{
    uint8_t   *tr;
    uint64_t   size, bs, count, i, n;

    if (len < BLOCKFILE_TRAILER_SIZE) {
        return;
    }

    tr = f + len - BLOCKFILE_TRAILER_SIZE;
    size = get_u64(tr + 16);

    if (size > len - BLOCKFILE_TRAILER_SIZE) {
        return;
    }

    if (flags & 2) {
        bs = (uint64_t) tr[12] | (uint64_t) tr[13] << 8
             | (uint64_t) tr[14] << 16 | (uint64_t) tr[15] << 24;
        count = get_u64(tr + 24);

        if (blockfile_block_size_valid(bs)
            && count == blockfile_block_count(size, (uint32_t) bs)
            && size + count * 8 + BLOCKFILE_TRAILER_SIZE == len)
        {
            for (i = 0; i < count; i++) {
                n = size - i * bs < bs ? size - i * bs : bs;
                put_u64(f + size + i * 8, blockfile_hash(f + i * bs, n));
            }

            put_u64(tr + 32, blockfile_hash(f, size));
        }
    }

    put_u64(f + len - 8, blockfile_hash(f + size, len - size - 8));
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                 rc, mrc;
    size_t              len, flen, blen, n, mn;
    uint8_t            *file, *footer, out[BLOCKFILE_TRAILER_SIZE], *buf;
    const uint8_t      *mp;
    uint64_t            bad, i;
    unsigned            flags;
    fuzz_in_t           in = { data, size };
    blockfile_meta      m, mm;
    blockfile_trailer   t;

    flags = fuzz_u8(&in);
    len = in.left;
    file = fuzz_dup(in.p, len);

    /* the trailer alone */

    if (len >= BLOCKFILE_TRAILER_SIZE) {
        rc = blockfile_trailer_decode(file + len - BLOCKFILE_TRAILER_SIZE,
                                      &t);
        if (rc == BLOCKFILE_OK) {
            FUZZ_ASSERT(blockfile_block_size_valid(t.block_size));
            FUZZ_ASSERT(t.block_count
                        == blockfile_block_count(t.size, t.block_size));
            blockfile_trailer_encode(&t, out);
            FUZZ_ASSERT(memcmp(out, file + len - BLOCKFILE_TRAILER_SIZE,
                               BLOCKFILE_TRAILER_SIZE) == 0);
        } else {
            FUZZ_ASSERT(rc == BLOCKFILE_ECORRUPT);
        }
    }

    /* the whole input as a footer (block sums + trailer) */

    footer = fuzz_dup(file, len);
    if ((flags & 1) && len >= BLOCKFILE_TRAILER_SIZE) {
        put_u64(footer + len - 8, blockfile_hash(footer, len - 8));
    }

    rc = blockfile_footer_decode(footer, len, &m);
    if (rc == BLOCKFILE_OK) {
        FUZZ_ASSERT(m.t.block_count * 8 + BLOCKFILE_TRAILER_SIZE == len);
        blockfile_meta_free(&m);
    } else {
        FUZZ_ASSERT(rc == BLOCKFILE_ECORRUPT && m.block_xxh3 == NULL);
    }

    free(footer);

    /* the whole input as a blob file */

    if (flags & 3) {
        fixup(file, len, flags);
    }

    if (memfd < 0) {
        memfd = memfd_create("plinth-fuzz-blob", MFD_CLOEXEC);
        FUZZ_ASSERT(memfd >= 0);
    }

    FUZZ_ASSERT(ftruncate(memfd, 0) == 0);
    FUZZ_ASSERT(pwrite(memfd, file, len, 0) == (ssize_t) len);

    rc = blockfile_open(memfd, &m);
    mrc = blockfile_open_mem(file, len, &mm);
    FUZZ_ASSERT(mrc == rc);

    if (rc == BLOCKFILE_OK) {
        flen = (size_t) blockfile_footer_size(m.t.size, m.t.block_size);
        FUZZ_ASSERT(m.t.size + flen == len);

        blen = m.t.size < m.t.block_size ? (size_t) m.t.size
                                         : m.t.block_size;
        buf = fuzz_dup("", blen);

        FUZZ_ASSERT(mm.t.size == m.t.size
                    && mm.t.block_size == m.t.block_size
                    && mm.t.block_count == m.t.block_count
                    && mm.t.xxh3 == m.t.xxh3
                    && mm.t.footer_xxh3 == m.t.footer_xxh3
                    && memcmp(mm.block_xxh3, m.block_xxh3,
                              m.t.block_count * 8) == 0);

        for (i = 0; i < m.t.block_count; i++) {
            rc = blockfile_read_block(memfd, &m, i, buf, &n);
            mrc = blockfile_block_mem(&mm, file, i, &mp, &mn);
            FUZZ_ASSERT(mrc == rc);
            FUZZ_ASSERT(rc != BLOCKFILE_OK
                        || (mn == n && memcmp(mp, buf, n) == 0));
        }

        FUZZ_ASSERT(blockfile_block_mem(&mm, file, m.t.block_count, &mp,
                                        &mn) == BLOCKFILE_EIO);
        blockfile_meta_free(&mm);

        bad = 0;
        rc = blockfile_verify(memfd, &m, buf, &bad);
        FUZZ_ASSERT(rc == BLOCKFILE_OK || rc == BLOCKFILE_ECORRUPT);

        if ((flags & 2) && rc != BLOCKFILE_OK) {
            /* the fix-up made every checksum right */
            FUZZ_ASSERT(0 && "verify failed after the checksums were fixed");
        }

        free(buf);
        blockfile_meta_free(&m);

    } else {
        FUZZ_ASSERT(rc == BLOCKFILE_ECORRUPT);
    }

    free(file);

    return 0;
}
