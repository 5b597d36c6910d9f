/*
 * blockfile.c -- encode, decode and verify the blob file format.
 *
 * The format is described in blockfile.h. The writer hashes data as it
 * streams in (per-block and whole-blob XXH3 streaming states), so a blob
 * of any size is written with constant memory plus 8 bytes per block; the
 * reader loads the footer once, checks it against its own XXH3, and then
 * checks each block it reads against the footer before handing it out.
 *
 * Workload: one writer or reader per request thread; nothing here is
 * shared between threads. Callers own every descriptor and buffer.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockfile.h"

/* blockfile_tail_decode(): the footer starts before the bytes it was given */
#define BLOCKFILE_MORE  1

static void blockfile_put_u32(uint8_t *p, uint32_t v);
static void blockfile_put_u64(uint8_t *p, uint64_t v);
static uint32_t blockfile_get_u32(const uint8_t *p);
static uint64_t blockfile_get_u64(const uint8_t *p);
static int blockfile_pread_full(int fd, void *buf, size_t len, uint64_t off);
static int blockfile_push_sum(blockfile_writer *w, uint64_t sum);


/* Whether block_size is a power of two within the supported range. */
int
blockfile_block_size_valid(uint64_t block_size)
{
    return block_size >= BLOCKFILE_MIN_BLOCK
           && block_size <= BLOCKFILE_MAX_BLOCK
           && (block_size & (block_size - 1)) == 0;
}


/* Number of checksum blocks for a blob of size bytes (0 for size 0). */
uint64_t
blockfile_block_count(uint64_t size, uint32_t block_size)
{
    return size / block_size + (size % block_size != 0);
}


/* Bytes that follow the data: the checksum array and the trailer. */
uint64_t
blockfile_footer_size(uint64_t size, uint32_t block_size)
{
    return blockfile_block_count(size, block_size) * 8
           + BLOCKFILE_TRAILER_SIZE;
}


/* The one checksum function of the format: XXH3-64 with seed 0. */
uint64_t
blockfile_hash(const void *data, size_t len)
{
    return XXH3_64bits(data, len);
}


/* Serialize t into out; footer_xxh3 is copied as is (see footer_encode). */
void
blockfile_trailer_encode(const blockfile_trailer *t,
    uint8_t out[BLOCKFILE_TRAILER_SIZE])
{
    memcpy(out, BLOCKFILE_MAGIC, BLOCKFILE_MAGIC_LEN);
    blockfile_put_u32(out + 8, t->version);
    blockfile_put_u32(out + 12, t->block_size);
    blockfile_put_u64(out + 16, t->size);
    blockfile_put_u64(out + 24, t->block_count);
    blockfile_put_u64(out + 32, t->xxh3);
    blockfile_put_u64(out + 40, t->footer_xxh3);
}


/*
 * Parse a trailer and check what can be checked without the rest of the
 * footer: magic, version, block size, block count. Returns BLOCKFILE_OK
 * or BLOCKFILE_ECORRUPT.
 */
int
blockfile_trailer_decode(const uint8_t in[BLOCKFILE_TRAILER_SIZE],
    blockfile_trailer *t)
{
    if (memcmp(in, BLOCKFILE_MAGIC, BLOCKFILE_MAGIC_LEN) != 0) {
        return BLOCKFILE_ECORRUPT;
    }

    t->version = blockfile_get_u32(in + 8);
    t->block_size = blockfile_get_u32(in + 12);
    t->size = blockfile_get_u64(in + 16);
    t->block_count = blockfile_get_u64(in + 24);
    t->xxh3 = blockfile_get_u64(in + 32);
    t->footer_xxh3 = blockfile_get_u64(in + 40);

    if (t->version != BLOCKFILE_VERSION
        || !blockfile_block_size_valid(t->block_size)
        || t->block_count != blockfile_block_count(t->size, t->block_size))
    {
        return BLOCKFILE_ECORRUPT;
    }

    return BLOCKFILE_OK;
}


/*
 * Build the footer for t->block_count sums: the array, then the trailer.
 * Sets t->footer_xxh3. Returns a malloc'ed buffer of *len bytes that the
 * caller frees, or NULL when out of memory.
 */
uint8_t *
blockfile_footer_encode(const uint64_t *sums, blockfile_trailer *t,
    size_t *len)
{
    uint8_t   *footer, *trailer;
    size_t     n, i;

    n = (size_t) t->block_count * 8 + BLOCKFILE_TRAILER_SIZE;
    footer = malloc(n);
    if (footer == NULL) {
        return NULL;
    }

    for (i = 0; i < t->block_count; i++) {
        blockfile_put_u64(footer + i * 8, sums[i]);
    }

    trailer = footer + t->block_count * 8;
    t->footer_xxh3 = 0;
    blockfile_trailer_encode(t, trailer);
    t->footer_xxh3 = blockfile_hash(footer, n - 8);
    blockfile_put_u64(trailer + 40, t->footer_xxh3);

    *len = n;
    return footer;
}


/*
 * Decode and self-check a whole footer (len bytes). On BLOCKFILE_OK,
 * m->block_xxh3 is a new array owned by m. Returns BLOCKFILE_ECORRUPT if
 * the footer does not check out, BLOCKFILE_ENOMEM.
 */
int
blockfile_footer_decode(const uint8_t *footer, size_t len, blockfile_meta *m)
{
    const uint8_t  *trailer;
    uint64_t        i;
    int             rc;

    m->block_xxh3 = NULL;
    if (len < BLOCKFILE_TRAILER_SIZE) {
        return BLOCKFILE_ECORRUPT;
    }

    trailer = footer + len - BLOCKFILE_TRAILER_SIZE;
    rc = blockfile_trailer_decode(trailer, &m->t);
    if (rc != BLOCKFILE_OK) {
        return rc;
    }

    if ((len - BLOCKFILE_TRAILER_SIZE) / 8 != m->t.block_count
        || (len - BLOCKFILE_TRAILER_SIZE) % 8 != 0
        || blockfile_hash(footer, len - 8) != m->t.footer_xxh3)
    {
        return BLOCKFILE_ECORRUPT;
    }

    m->block_xxh3 = malloc(m->t.block_count ? m->t.block_count * 8 : 1);
    if (m->block_xxh3 == NULL) {
        return BLOCKFILE_ENOMEM;
    }

    for (i = 0; i < m->t.block_count; i++) {
        m->block_xxh3[i] = blockfile_get_u64(footer + i * 8);
    }

    return BLOCKFILE_OK;
}


/* Start hashing a new blob. Returns BLOCKFILE_OK or BLOCKFILE_ENOMEM. */
int
blockfile_writer_init(blockfile_writer *w, uint32_t block_size)
{
    memset(w, 0, sizeof(*w));
    w->block_size = block_size;
    w->cap = 16;
    w->sums = malloc(w->cap * 8);
    w->whole = XXH3_createState();
    w->block = XXH3_createState();

    if (w->sums == NULL || w->whole == NULL || w->block == NULL
        || XXH3_64bits_reset(w->whole) != XXH_OK
        || XXH3_64bits_reset(w->block) != XXH_OK)
    {
        blockfile_writer_free(w);
        return BLOCKFILE_ENOMEM;
    }

    return BLOCKFILE_OK;
}


/* Hash the next len bytes of the blob. Returns BLOCKFILE_OK or ENOMEM. */
int
blockfile_writer_update(blockfile_writer *w, const void *data, size_t len)
{
    const uint8_t  *p = data;
    size_t          take;

    if (XXH3_64bits_update(w->whole, p, len) != XXH_OK) {
        return BLOCKFILE_ENOMEM;
    }
    w->size += len;

    while (len > 0) {
        take = w->block_size - w->fill;
        if (take > len) {
            take = len;
        }

        if (XXH3_64bits_update(w->block, p, take) != XXH_OK) {
            return BLOCKFILE_ENOMEM;
        }
        w->fill += take;
        p += take;
        len -= take;

        if (w->fill == w->block_size) {
            if (blockfile_push_sum(w, XXH3_64bits_digest(w->block)) != 0
                || XXH3_64bits_reset(w->block) != XXH_OK)
            {
                return BLOCKFILE_ENOMEM;
            }
            w->fill = 0;
        }
    }

    return BLOCKFILE_OK;
}


/*
 * Close the last partial block and build the footer (as footer_encode).
 * Fills *t. Returns the malloc'ed footer, or NULL when out of memory.
 * The writer still has to be freed.
 */
uint8_t *
blockfile_writer_finish(blockfile_writer *w, blockfile_trailer *t,
    size_t *len)
{
    if (w->fill > 0) {
        if (blockfile_push_sum(w, XXH3_64bits_digest(w->block)) != 0) {
            return NULL;
        }
        w->fill = 0;
    }

    t->version = BLOCKFILE_VERSION;
    t->block_size = w->block_size;
    t->size = w->size;
    t->block_count = w->count;
    t->xxh3 = XXH3_64bits_digest(w->whole);

    return blockfile_footer_encode(w->sums, t, len);
}


/* Release a writer's memory; safe on a zeroed or half-initialized writer. */
void
blockfile_writer_free(blockfile_writer *w)
{
    free(w->sums);
    XXH3_freeState(w->whole);
    XXH3_freeState(w->block);
    w->sums = NULL;
    w->whole = NULL;
    w->block = NULL;
}


/* Decode the trailer at buf and check it against a file of fsize bytes. */
static int
blockfile_trailer_check(const uint8_t *buf, uint64_t fsize,
    blockfile_trailer *t)
{
    int  rc;

    rc = blockfile_trailer_decode(buf, t);
    if (rc != BLOCKFILE_OK) {
        return rc;
    }

    if (t->size > fsize
        || fsize - t->size != blockfile_footer_size(t->size, t->block_size))
    {
        return BLOCKFILE_ECORRUPT;
    }

    return BLOCKFILE_OK;
}


/*
 * Read and decode only the trailer of an open blob file, and check that
 * the file has the size the trailer implies. Cheap (one fstat, one
 * pread); it does not check the footer's own hash.
 */
int
blockfile_read_trailer(int fd, blockfile_trailer *t)
{
    uint8_t      buf[BLOCKFILE_TRAILER_SIZE];
    struct stat  st;
    uint64_t     fsize;
    int          rc;

    if (fstat(fd, &st) != 0) {
        return BLOCKFILE_EIO;
    }

    fsize = (uint64_t) st.st_size;
    if (fsize < BLOCKFILE_TRAILER_SIZE) {
        return BLOCKFILE_ECORRUPT;
    }

    rc = blockfile_pread_full(fd, buf, sizeof(buf),
                              fsize - BLOCKFILE_TRAILER_SIZE);
    if (rc != BLOCKFILE_OK) {
        return rc;
    }

    return blockfile_trailer_check(buf, fsize, t);
}


/*
 * Open an existing blob file for reading: read the trailer, then the
 * whole footer, and self-check it. On BLOCKFILE_OK m owns the checksum
 * array (blockfile_meta_free). Data blocks are not read.
 */
int
blockfile_open(int fd, blockfile_meta *m)
{
    struct stat  st;

    m->block_xxh3 = NULL;
    if (fstat(fd, &st) != 0) {
        return BLOCKFILE_EIO;
    }
    return blockfile_open_size(fd, (uint64_t) st.st_size, m);
}


/*
 * Decode the trailer at the end of tail, the file's last n bytes (fsize
 * in all), and the footer when it lies within them. BLOCKFILE_MORE: the
 * footer starts before tail (*t holds the checked trailer).
 */
static int
blockfile_tail_decode(const uint8_t *tail, size_t n, uint64_t fsize,
    blockfile_trailer *t, blockfile_meta *m)
{
    size_t  len;
    int     rc;

    m->block_xxh3 = NULL;
    if (n < BLOCKFILE_TRAILER_SIZE) {
        return BLOCKFILE_ECORRUPT;
    }

    rc = blockfile_trailer_check(tail + n - BLOCKFILE_TRAILER_SIZE, fsize, t);
    if (rc != BLOCKFILE_OK) {
        return rc;
    }

    len = (size_t) blockfile_footer_size(t->size, t->block_size);
    if (len > n) {
        return BLOCKFILE_MORE;
    }

    return blockfile_footer_decode(tail + n - len, len, m);
}


/*
 * blockfile_open() for a caller that has the file's size already (from
 * its own fstat). One pread of the file's last BLOCKFILE_TAIL bytes holds
 * the trailer and, for a blob of up to (BLOCKFILE_TAIL - 48) / 8 blocks,
 * the whole footer; a longer footer costs a second pread.
 */
int
blockfile_open_size(int fd, uint64_t fsize, blockfile_meta *m)
{
    blockfile_trailer   t;
    uint8_t             tail[BLOCKFILE_TAIL], *footer;
    size_t              len, n;
    int                 rc;

    m->block_xxh3 = NULL;
    if (fsize < BLOCKFILE_TRAILER_SIZE) {
        return BLOCKFILE_ECORRUPT;
    }

    n = fsize < sizeof(tail) ? (size_t) fsize : sizeof(tail);
    rc = blockfile_pread_full(fd, tail, n, fsize - n);
    if (rc != BLOCKFILE_OK) {
        return rc;
    }

    rc = blockfile_tail_decode(tail, n, fsize, &t, m);
    if (rc != BLOCKFILE_MORE) {
        return rc;
    }

    len = (size_t) blockfile_footer_size(t.size, t.block_size);
    footer = malloc(len);
    if (footer == NULL) {
        return BLOCKFILE_ENOMEM;
    }

    rc = blockfile_pread_full(fd, footer, len, t.size);
    if (rc == BLOCKFILE_OK) {
        rc = blockfile_footer_decode(footer, len, m);
    }

    free(footer);
    return rc;
}


/*
 * blockfile_open() for a blob file read whole into memory (file, fsize
 * bytes): the trailer and footer are decoded and checked from there, with
 * no I/O. Use blockfile_block_mem() for its blocks.
 */
int
blockfile_open_mem(const uint8_t *file, uint64_t fsize, blockfile_meta *m)
{
    blockfile_trailer  t;
    int                rc;

    rc = blockfile_tail_decode(file, (size_t) fsize, fsize, &t, m);

    /* never BLOCKFILE_MORE: the trailer check bounds the footer by fsize */
    return rc == BLOCKFILE_MORE ? BLOCKFILE_ECORRUPT : rc;
}


/* Where block index starts and its length. BLOCKFILE_EIO past the end. */
static int
blockfile_block_span(const blockfile_meta *m, uint64_t index, uint64_t *off,
    size_t *len)
{
    if (index >= m->t.block_count) {
        errno = EINVAL;
        return BLOCKFILE_EIO;
    }

    *off = index * m->t.block_size;
    *len = m->t.size - *off < m->t.block_size ? (size_t) (m->t.size - *off)
                                              : m->t.block_size;
    return BLOCKFILE_OK;
}


/*
 * Read block index into buf (at least block_size bytes) and check it
 * against the footer. Sets *len to the block's length. Returns
 * BLOCKFILE_OK, BLOCKFILE_ECORRUPT (buf must then not be used) or
 * BLOCKFILE_EIO.
 */
int
blockfile_read_block(int fd, const blockfile_meta *m, uint64_t index,
    void *buf, size_t *len)
{
    uint64_t  off;
    size_t    n;
    int       rc;

    rc = blockfile_block_span(m, index, &off, &n);
    if (rc != BLOCKFILE_OK) {
        return rc;
    }

    rc = blockfile_pread_full(fd, buf, n, off);
    if (rc != BLOCKFILE_OK) {
        return rc;
    }

    if (blockfile_hash(buf, n) != m->block_xxh3[index]) {
        return BLOCKFILE_ECORRUPT;
    }

    *len = n;
    return BLOCKFILE_OK;
}


/*
 * blockfile_read_block() for a file blockfile_open_mem() decoded: check
 * block index where it lies in file; *data points at it, *len is its
 * length. BLOCKFILE_OK or BLOCKFILE_ECORRUPT (*data must then not be
 * used); BLOCKFILE_EIO (EINVAL) past the last block.
 */
int
blockfile_block_mem(const blockfile_meta *m, const uint8_t *file,
    uint64_t index, const uint8_t **data, size_t *len)
{
    uint64_t  off;
    size_t    n;
    int       rc;

    rc = blockfile_block_span(m, index, &off, &n);
    if (rc != BLOCKFILE_OK) {
        return rc;
    }

    if (blockfile_hash(file + off, n) != m->block_xxh3[index]) {
        return BLOCKFILE_ECORRUPT;
    }

    *data = file + off;
    *len = n;
    return BLOCKFILE_OK;
}


/*
 * Read every block through buf (block_size bytes), checking each against
 * the footer and the whole blob against the trailer's xxh3. On
 * BLOCKFILE_ECORRUPT *bad_block is the first bad block, or UINT64_MAX if
 * only the whole-blob hash disagrees.
 */
int
blockfile_verify(int fd, const blockfile_meta *m, void *buf,
    uint64_t *bad_block)
{
    XXH3_state_t  *whole;
    uint64_t       i;
    size_t         n;
    int            rc = BLOCKFILE_OK;

    whole = XXH3_createState();
    if (whole == NULL || XXH3_64bits_reset(whole) != XXH_OK) {
        XXH3_freeState(whole);
        return BLOCKFILE_ENOMEM;
    }

    for (i = 0; i < m->t.block_count; i++) {
        rc = blockfile_read_block(fd, m, i, buf, &n);
        if (rc != BLOCKFILE_OK) {
            *bad_block = i;
            break;
        }
        if (XXH3_64bits_update(whole, buf, n) != XXH_OK) {
            rc = BLOCKFILE_ENOMEM;
            break;
        }
    }

    if (rc == BLOCKFILE_OK && XXH3_64bits_digest(whole) != m->t.xxh3) {
        *bad_block = UINT64_MAX;
        rc = BLOCKFILE_ECORRUPT;
    }

    XXH3_freeState(whole);
    return rc;
}


void
blockfile_meta_free(blockfile_meta *m)
{
    free(m->block_xxh3);
    m->block_xxh3 = NULL;
}


static int
blockfile_push_sum(blockfile_writer *w, uint64_t sum)
{
    uint64_t  *p;

    if (w->count == w->cap) {
        p = realloc(w->sums, w->cap * 2 * 8);
        if (p == NULL) {
            return -1;
        }
        w->sums = p;
        w->cap *= 2;
    }

    w->sums[w->count++] = sum;
    return 0;
}


/* pread exactly len bytes; a short file is corruption, not an I/O error. */
static int
blockfile_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t  *p = buf;
    ssize_t   n;

    while (len > 0) {
        n = pread(fd, p, len, (off_t) off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return BLOCKFILE_EIO;
        }
        if (n == 0) {
            return BLOCKFILE_ECORRUPT;
        }
        p += n;
        off += (uint64_t) n;
        len -= (size_t) n;
    }

    return BLOCKFILE_OK;
}


static void
blockfile_put_u32(uint8_t *p, uint32_t v)
{
    int  i;

    for (i = 0; i < 4; i++) {
        p[i] = (uint8_t) (v >> (8 * i));
    }
}


static void
blockfile_put_u64(uint8_t *p, uint64_t v)
{
    int  i;

    for (i = 0; i < 8; i++) {
        p[i] = (uint8_t) (v >> (8 * i));
    }
}


static uint32_t
blockfile_get_u32(const uint8_t *p)
{
    uint32_t  v = 0;
    int       i;

    for (i = 3; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}


static uint64_t
blockfile_get_u64(const uint8_t *p)
{
    uint64_t  v = 0;
    int       i;

    for (i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}
