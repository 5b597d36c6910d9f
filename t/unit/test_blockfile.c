/*
 * test_blockfile.c -- TAP tests of the blob file format (datanode/blockfile.c).
 *
 * Builds blob files in a private temporary directory with the streaming
 * writer (fed in odd-sized chunks, as HTTP bodies arrive), then reads
 * them back: footer round trip, per-block checksums against a simple
 * model (XXH3 of each block slice), and detection of a flipped data byte,
 * a garbled trailer and truncation. Prints TAP; exits 1 on any failure.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockfile.h"

#define BS  4096u

static int   test_n, test_failed;
static char  test_dir[] = "/tmp/test_blockfile.XXXXXX";

static void ok(int cond, const char *fmt, ...);
static uint8_t *make_data(uint64_t size, unsigned seed);
static int write_blob(const char *path, const uint8_t *data, uint64_t size,
    blockfile_trailer *t);
static int open_meta(const char *path, blockfile_meta *m, int *fdp);
static int mem_meta(const char *path, uint8_t **file, blockfile_meta *m);
static int mem_corrupt(const char *path);
static void flip_byte(const char *path, uint64_t off);
static void test_trailer_round_trip(void);
static void test_footer_round_trip(void);
static void test_size(uint64_t size);
static void test_flip(void);
static void test_garbled_trailer(void);
static void test_truncated(void);


int
main(void)
{
    static const uint64_t  sizes[] = {
        0, 1, BS - 1, BS, BS + 1, 3 * BS + 7,
        /* footers of 512 bytes (all in blockfile_open's first pread,
         * BLOCKFILE_TAIL) and of 568 (a second pread for the rest) */
        57 * BS + 1, 64 * BS + 5
    };
    size_t                 i;

    if (mkdtemp(test_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }

    printf("1..72\n");
    test_trailer_round_trip();
    test_footer_round_trip();
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        test_size(sizes[i]);
    }
    test_flip();
    test_garbled_trailer();
    test_truncated();

    if (rmdir(test_dir) != 0) {
        fprintf(stderr, "# rmdir %s: %s\n", test_dir, strerror(errno));
    }
    if (test_n != 72) {
        printf("# planned 72 tests, ran %d\n", test_n);
        return 1;
    }
    return test_failed ? 1 : 0;
}


static void
test_trailer_round_trip(void)
{
    blockfile_trailer  t = { BLOCKFILE_VERSION, BS, 3 * BS + 7, 4,
                             0x0123456789abcdefULL, 0xfedcba9876543210ULL };
    blockfile_trailer  u;
    uint8_t            buf[BLOCKFILE_TRAILER_SIZE];

    blockfile_trailer_encode(&t, buf);
    ok(memcmp(buf, "PLNTBLB1", 8) == 0, "trailer starts with the magic");
    ok(blockfile_trailer_decode(buf, &u) == BLOCKFILE_OK
       && memcmp(&t, &u, sizeof(t)) == 0, "trailer encode/decode round trip");

    t.block_count = 5;
    blockfile_trailer_encode(&t, buf);
    ok(blockfile_trailer_decode(buf, &u) == BLOCKFILE_ECORRUPT,
       "trailer with an inconsistent block count is corrupt");

    t.block_count = 4;
    t.block_size = 5000;
    blockfile_trailer_encode(&t, buf);
    ok(blockfile_trailer_decode(buf, &u) == BLOCKFILE_ECORRUPT,
       "trailer with a bad block size is corrupt");
}


static void
test_footer_round_trip(void)
{
    uint64_t           sums[3] = { 1, 2, 0xffffffffffffffffULL };
    blockfile_trailer  t = { BLOCKFILE_VERSION, BS, 2 * BS + 1, 3, 42, 0 };
    blockfile_meta     m;
    uint8_t           *f;
    size_t             len;

    f = blockfile_footer_encode(sums, &t, &len);
    ok(f != NULL && len == 3 * 8 + BLOCKFILE_TRAILER_SIZE,
       "footer encodes to 8 bytes a block plus the trailer");
    if (f == NULL) {
        return;
    }

    ok(blockfile_footer_decode(f, len, &m) == BLOCKFILE_OK
       && memcmp(&m.t, &t, sizeof(t)) == 0
       && memcmp(m.block_xxh3, sums, sizeof(sums)) == 0,
       "footer encode/decode round trip");
    blockfile_meta_free(&m);

    f[3] ^= 0x10;
    ok(blockfile_footer_decode(f, len, &m) == BLOCKFILE_ECORRUPT,
       "a flipped checksum byte fails the footer's own hash");
    blockfile_meta_free(&m);
    free(f);
}


/* Per size: 4 tests (write, open, checksums match the model, verify). */
static void
test_size(uint64_t size)
{
    char               path[256];
    blockfile_trailer  t;
    blockfile_meta     m, mm;
    uint8_t           *data, *file, buf[BS];
    const uint8_t     *p;
    uint64_t           i, count, bad;
    size_t             n;
    int                fd, good = 1;

    snprintf(path, sizeof(path), "%s/size%llu", test_dir,
             (unsigned long long) size);
    data = make_data(size, (unsigned) size);
    count = blockfile_block_count(size, BS);

    ok(write_blob(path, data, size, &t) == 0 && t.size == size
       && t.block_count == count && t.xxh3 == blockfile_hash(data, size),
       "size %llu: written with %llu blocks and the whole-blob hash",
       (unsigned long long) size, (unsigned long long) count);

    if (open_meta(path, &m, &fd) != BLOCKFILE_OK) {
        ok(0, "size %llu: open", (unsigned long long) size);
        ok(0, "size %llu: block checksums", (unsigned long long) size);
        ok(0, "size %llu: verify", (unsigned long long) size);
        free(data);
        return;
    }
    ok(m.t.size == size, "size %llu: open reads the trailer back",
       (unsigned long long) size);

    for (i = 0; i < count; i++) {
        n = i + 1 < count ? BS : (size_t) (size - i * BS);
        good &= m.block_xxh3[i] == blockfile_hash(data + i * BS, n);
        good &= blockfile_read_block(fd, &m, i, buf, &n) == BLOCKFILE_OK
                && memcmp(buf, data + i * BS, n) == 0;
    }
    ok(good, "size %llu: every block checksum matches XXH3 of its slice",
       (unsigned long long) size);
    ok(blockfile_verify(fd, &m, buf, &bad) == BLOCKFILE_OK,
       "size %llu: whole file verifies", (unsigned long long) size);

    /* the same file read whole into memory (a data node's small reads) */
    good = mem_meta(path, &file, &mm) == BLOCKFILE_OK
           && mm.t.size == size && mm.t.block_count == count
           && memcmp(mm.block_xxh3, m.block_xxh3, count * 8) == 0;
    for (i = 0; good && i < count; i++) {
        good = blockfile_block_mem(&mm, file, i, &p, &n) == BLOCKFILE_OK
               && n == (i + 1 < count ? BS : size - i * BS)
               && memcmp(p, data + i * BS, n) == 0;
    }
    ok(good && blockfile_block_mem(&mm, file, count, &p, &n) == BLOCKFILE_EIO,
       "size %llu: read whole into memory: the same footer, every block "
       "checks, none past the last", (unsigned long long) size);
    if (file != NULL) {
        blockfile_meta_free(&mm);
        free(file);
    }

    blockfile_meta_free(&m);
    close(fd);
    unlink(path);
    free(data);
}


/* A flipped byte in block 2 of 4 is found there and nowhere else. */
static void
test_flip(void)
{
    char               path[256];
    blockfile_trailer  t;
    blockfile_meta     m, mm;
    uint8_t           *data, *file, buf[BS];
    const uint8_t     *p;
    uint64_t           bad = 0;
    size_t             n;
    int                fd;

    snprintf(path, sizeof(path), "%s/flip", test_dir);
    data = make_data(3 * BS + 7, 7);
    ok(write_blob(path, data, 3 * BS + 7, &t) == 0, "flip: written");
    flip_byte(path, 2 * BS + 100);

    ok(open_meta(path, &m, &fd) == BLOCKFILE_OK,
       "flip: footer still opens (only data changed)");
    ok(blockfile_read_block(fd, &m, 1, buf, &n) == BLOCKFILE_OK
       && blockfile_read_block(fd, &m, 3, buf, &n) == BLOCKFILE_OK,
       "flip: neighbouring blocks still verify");
    ok(blockfile_read_block(fd, &m, 2, buf, &n) == BLOCKFILE_ECORRUPT,
       "flip: the block holding the byte is corrupt");
    ok(blockfile_verify(fd, &m, buf, &bad) == BLOCKFILE_ECORRUPT && bad == 2,
       "flip: verify reports block 2");
    ok(mem_meta(path, &file, &mm) == BLOCKFILE_OK
       && blockfile_block_mem(&mm, file, 1, &p, &n) == BLOCKFILE_OK
       && blockfile_block_mem(&mm, file, 2, &p, &n) == BLOCKFILE_ECORRUPT,
       "flip: read whole into memory, block 2 is corrupt and block 1 not");
    if (file != NULL) {
        blockfile_meta_free(&mm);
        free(file);
    }

    blockfile_meta_free(&m);
    close(fd);
    unlink(path);

    /* first byte of the first block, last byte of the last one */
    ok(write_blob(path, data, 3 * BS + 7, &t) == 0, "flip: rewritten");
    flip_byte(path, 0);
    ok(open_meta(path, &m, &fd) == BLOCKFILE_OK
       && blockfile_read_block(fd, &m, 0, buf, &n) == BLOCKFILE_ECORRUPT,
       "flip: byte 0 makes block 0 corrupt");
    blockfile_meta_free(&m);
    close(fd);
    flip_byte(path, 0);
    flip_byte(path, 3 * BS + 6);
    ok(open_meta(path, &m, &fd) == BLOCKFILE_OK
       && blockfile_verify(fd, &m, buf, &bad) == BLOCKFILE_ECORRUPT
       && bad == 3, "flip: last data byte makes the last block corrupt");
    blockfile_meta_free(&m);
    close(fd);

    unlink(path);
    free(data);
}


/* Any byte of the trailer or checksum array flipped: the open fails. */
static void
test_garbled_trailer(void)
{
    static const uint64_t  offs[] = { 0, 9, 13, 17, 25, 33, 41, 47 };
    char                   path[256];
    blockfile_trailer      t;
    blockfile_meta         m;
    uint8_t               *data;
    uint64_t               size = 2 * BS + 5, base;
    size_t                 i;
    int                    fd, rc, mem = 1;

    snprintf(path, sizeof(path), "%s/garbled", test_dir);
    data = make_data(size, 3);
    base = size + 3 * 8;

    for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        if (write_blob(path, data, size, &t) != 0) {
            ok(0, "garbled: write");
            continue;
        }
        flip_byte(path, base + offs[i]);
        rc = open_meta(path, &m, &fd);
        ok(rc == BLOCKFILE_ECORRUPT, "garbled trailer byte %llu is corrupt",
           (unsigned long long) offs[i]);
        if (rc == BLOCKFILE_OK) {
            blockfile_meta_free(&m);
        }
        mem &= mem_corrupt(path);
        if (fd >= 0) {
            close(fd);
        }
        unlink(path);
    }

    ok(write_blob(path, data, size, &t) == 0, "garbled: rewritten");
    flip_byte(path, size + 8);
    ok(open_meta(path, &m, &fd) == BLOCKFILE_ECORRUPT,
       "garbled checksum array is corrupt");
    close(fd);
    mem &= mem_corrupt(path);
    ok(mem, "garbled trailers and checksum array: corrupt read whole into "
       "memory too");
    unlink(path);
    free(data);
}


/* Cut at several points, including inside the data and to zero. */
static void
test_truncated(void)
{
    char               path[256];
    blockfile_trailer  t;
    blockfile_meta     m;
    uint8_t           *data;
    uint64_t           size = 2 * BS + 5, full;
    uint64_t           cuts[4];
    size_t             i;
    int                fd, mem = 1;

    snprintf(path, sizeof(path), "%s/trunc", test_dir);
    data = make_data(size, 5);
    full = size + blockfile_footer_size(size, BS);
    cuts[0] = full - 1;
    cuts[1] = full - BLOCKFILE_TRAILER_SIZE;
    cuts[2] = BS;
    cuts[3] = 0;

    for (i = 0; i < 4; i++) {
        if (write_blob(path, data, size, &t) != 0
            || truncate(path, (off_t) cuts[i]) != 0)
        {
            ok(0, "truncate: write and cut");
            continue;
        }
        ok(open_meta(path, &m, &fd) == BLOCKFILE_ECORRUPT,
           "file cut to %llu of %llu bytes is corrupt",
           (unsigned long long) cuts[i], (unsigned long long) full);
        if (fd >= 0) {
            close(fd);
        }
        mem &= mem_corrupt(path);
        unlink(path);
    }
    ok(mem, "cut files: corrupt read whole into memory too");
    free(data);
}


static void
ok(int cond, const char *fmt, ...)
{
    va_list  ap;

    test_n++;
    printf("%sok %d - ", cond ? "" : "not ", test_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    test_failed |= !cond;
}


static uint8_t *
make_data(uint64_t size, unsigned seed)
{
    uint8_t   *p;
    uint64_t   i;

    p = malloc(size ? size : 1);
    if (p == NULL) {
        perror("malloc");
        exit(1);
    }
    srand(seed);
    for (i = 0; i < size; i++) {
        p[i] = (uint8_t) rand();
    }
    return p;
}


/* Write data through the streaming writer in 1000-byte chunks. */
static int
write_blob(const char *path, const uint8_t *data, uint64_t size,
    blockfile_trailer *t)
{
    blockfile_writer   w;
    uint8_t           *footer;
    uint64_t           off;
    size_t             n, len;
    int                fd, rc = -1;

    if (blockfile_writer_init(&w, BS) != BLOCKFILE_OK) {
        return -1;
    }
    for (off = 0; off < size; off += n) {
        n = size - off < 1000 ? (size_t) (size - off) : 1000;
        if (blockfile_writer_update(&w, data + off, n) != BLOCKFILE_OK) {
            blockfile_writer_free(&w);
            return -1;
        }
    }

    footer = blockfile_writer_finish(&w, t, &len);
    blockfile_writer_free(&w);
    if (footer == NULL) {
        return -1;
    }

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if ((size == 0 || write(fd, data, size) == (ssize_t) size)
            && write(fd, footer, len) == (ssize_t) len)
        {
            rc = 0;
        }
        close(fd);
    }
    free(footer);
    return rc;
}


static int
open_meta(const char *path, blockfile_meta *m, int *fdp)
{
    *fdp = open(path, O_RDONLY | O_CLOEXEC);
    if (*fdp < 0) {
        return BLOCKFILE_EIO;
    }
    return blockfile_open(*fdp, m);
}


/* Read path whole into *file (malloc'd, NULL on failure), then
 * blockfile_open_mem(). */
static int
mem_meta(const char *path, uint8_t **file, blockfile_meta *m)
{
    struct stat  st;
    int          fd;

    *file = NULL;
    m->block_xxh3 = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0
        || (*file = malloc((size_t) st.st_size + 1)) == NULL
        || pread(fd, *file, (size_t) st.st_size, 0) != st.st_size)
    {
        if (fd >= 0) {
            close(fd);
        }
        free(*file);
        *file = NULL;
        return BLOCKFILE_EIO;
    }
    close(fd);
    return blockfile_open_mem(*file, (uint64_t) st.st_size, m);
}


/* Whether path, read whole into memory, is BLOCKFILE_ECORRUPT there. */
static int
mem_corrupt(const char *path)
{
    uint8_t         *file;
    blockfile_meta   m;
    int              rc;

    rc = mem_meta(path, &file, &m);
    if (rc == BLOCKFILE_OK) {
        blockfile_meta_free(&m);
    }
    free(file);
    return rc == BLOCKFILE_ECORRUPT;
}


static void
flip_byte(const char *path, uint64_t off)
{
    uint8_t  b;
    int      fd;

    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || pread(fd, &b, 1, (off_t) off) != 1) {
        perror("flip_byte");
        exit(1);
    }
    b ^= 0xff;
    if (pwrite(fd, &b, 1, (off_t) off) != 1) {
        perror("flip_byte");
        exit(1);
    }
    close(fd);
}
