/*
 * blockfile.h -- the on-disk format of one stored blob.
 *
 * A blob file holds the blob's bytes from offset 0, then a footer:
 *
 *     offset 0            data            size bytes
 *     offset size         block_xxh3[]    8 bytes per block, little-endian
 *     offset size+8*n     trailer         BLOCKFILE_TRAILER_SIZE bytes
 *
 * The trailer (all integers little-endian):
 *
 *      0  magic "PLNTBLB1"   8 bytes
 *      8  version            u32 (BLOCKFILE_VERSION)
 *     12  block_size         u32, a power of two, 4 KiB .. 64 MiB
 *     16  size               u64, bytes of blob data
 *     24  block_count        u64, ceil(size / block_size)
 *     32  xxh3               u64, XXH3-64 (seed 0) of the whole blob
 *     40  footer_xxh3        u64, XXH3-64 of the footer bytes before it
 *
 * Block i covers data bytes [i * block_size, min((i+1) * block_size, size))
 * and its checksum is XXH3-64 (seed 0) of exactly those bytes. Because the
 * data starts at offset 0, byte X of the blob is byte X of the file.
 *
 * Everything here is plain computation or pread(2) on a descriptor the
 * caller owns; there is no HTTP and no global state. A trailer that is
 * missing, garbled or inconsistent with the file size is reported as
 * BLOCKFILE_ECORRUPT, like a bad block.
 *
 * Limits: the whole checksum array is held in memory while a blob is
 * written or read (8 bytes per block: 8 KiB for a 1 GiB blob at 1 MiB
 * blocks). Files are not locked; callers keep writers private until they
 * rename the finished file into place.
 */

#ifndef BLOCKFILE_H
#define BLOCKFILE_H

#include <stddef.h>
#include <stdint.h>

#include <xxhash.h>

#define BLOCKFILE_MAGIC         "PLNTBLB1"
#define BLOCKFILE_MAGIC_LEN     8
#define BLOCKFILE_VERSION       1
#define BLOCKFILE_TRAILER_SIZE  48
#define BLOCKFILE_MIN_BLOCK     4096u
#define BLOCKFILE_MAX_BLOCK     (64u * 1024 * 1024)
/* bytes blockfile_open_size() reads from a file's end in its first pread */
#define BLOCKFILE_TAIL          512

/* Return codes. BLOCKFILE_EIO leaves errno as the failing call set it. */
#define BLOCKFILE_OK            0
#define BLOCKFILE_EIO          -1
#define BLOCKFILE_ENOMEM       -2
#define BLOCKFILE_ECORRUPT     -3

typedef struct {
    uint32_t   version;
    uint32_t   block_size;
    uint64_t   size;
    uint64_t   block_count;
    uint64_t   xxh3;
    uint64_t   footer_xxh3;
} blockfile_trailer;

/* A decoded, self-checked footer. block_xxh3 is owned (blockfile_meta_free). */
typedef struct {
    blockfile_trailer   t;
    uint64_t           *block_xxh3;
} blockfile_meta;

/* Checksum state of a blob being written; see blockfile_writer_*(). */
typedef struct {
    uint32_t       block_size;
    uint32_t       fill;        /* bytes already hashed in the open block */
    uint64_t       size;        /* bytes seen so far */
    uint64_t       count;       /* finished blocks in sums[] */
    uint64_t       cap;         /* room in sums[] */
    uint64_t      *sums;
    XXH3_state_t  *whole;
    XXH3_state_t  *block;
} blockfile_writer;

int blockfile_block_size_valid(uint64_t block_size);
uint64_t blockfile_block_count(uint64_t size, uint32_t block_size);
uint64_t blockfile_footer_size(uint64_t size, uint32_t block_size);
uint64_t blockfile_hash(const void *data, size_t len);

void blockfile_trailer_encode(const blockfile_trailer *t,
    uint8_t out[BLOCKFILE_TRAILER_SIZE]);
int blockfile_trailer_decode(const uint8_t in[BLOCKFILE_TRAILER_SIZE],
    blockfile_trailer *t);

uint8_t *blockfile_footer_encode(const uint64_t *sums, blockfile_trailer *t,
    size_t *len);
int blockfile_footer_decode(const uint8_t *footer, size_t len,
    blockfile_meta *m);

int blockfile_writer_init(blockfile_writer *w, uint32_t block_size);
int blockfile_writer_update(blockfile_writer *w, const void *data, size_t len);
uint8_t *blockfile_writer_finish(blockfile_writer *w, blockfile_trailer *t,
    size_t *len);
void blockfile_writer_free(blockfile_writer *w);

int blockfile_read_trailer(int fd, blockfile_trailer *t);
int blockfile_open(int fd, blockfile_meta *m);
int blockfile_open_size(int fd, uint64_t fsize, blockfile_meta *m);
int blockfile_open_mem(const uint8_t *file, uint64_t fsize,
    blockfile_meta *m);
int blockfile_read_block(int fd, const blockfile_meta *m, uint64_t index,
    void *buf, size_t *len);
int blockfile_block_mem(const blockfile_meta *m, const uint8_t *file,
    uint64_t index, const uint8_t **data, size_t *len);
int blockfile_verify(int fd, const blockfile_meta *m, void *buf,
    uint64_t *bad_block);
void blockfile_meta_free(blockfile_meta *m);

#endif /* BLOCKFILE_H */
