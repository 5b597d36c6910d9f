/*
 * store.h -- the data node's blob files: put, open, delete, list, usage.
 *
 * One store owns one data directory:
 *
 *     <data_dir>/objects/ab/cd/<32 hex id>   finished blobs (blockfile.h);
 *                                            the 256 ab/ made at open
 *     <data_dir>/tmp/<id>.XXXXXX             writes in progress
 *     <data_dir>/.lock                       flock: one data node per dir
 *
 * All functions may be called from any thread; the only shared state is
 * the usage counters, under one mutex.
 */

#ifndef PLINTH_DN_STORE_H
#define PLINTH_DN_STORE_H

#include <stdint.h>

#include "blockfile.h"

#define PLINTH_DN_ID_LEN  32

typedef enum {
    PLINTH_DN_OK = 0,
    PLINTH_DN_SAME,         /* put: the identical blob is already stored */
    PLINTH_DN_NOT_FOUND,
    PLINTH_DN_EXISTS,       /* put: a different blob has this id */
    PLINTH_DN_FULL,         /* no space or over capacity */
    PLINTH_DN_CORRUPT,      /* footer or block checksum mismatch */
    PLINTH_DN_EIO,          /* a syscall failed; errno is set */
    PLINTH_DN_ENOMEM
} plinth_dn_rc;

typedef struct plinth_dn_store_s  plinth_dn_store;
typedef struct plinth_dn_put_s    plinth_dn_put;

/* An open, footer-checked blob. Close with plinth_dn_blob_close(). */
typedef struct {
    int             fd;
    blockfile_meta  meta;
    int64_t         mtime;
} plinth_dn_blob;

typedef struct {
    uint64_t  total;         /* filesystem size, or capacity_bytes */
    uint64_t  used;          /* filesystem used, or blob bytes */
    uint64_t  free;          /* what a put may still use */
    uint64_t  blob_count;
    uint64_t  blob_bytes;
    uint64_t  corrupt;       /* corrupt blocks/footers seen since start */
    int       full;          /* free < one block */
    int       writable;      /* the data directory takes a write */
    int       write_errno;   /* why not (when !writable) */
} plinth_dn_usage;

/* Called per blob in id order; return non-zero to stop the walk. */
typedef int (*plinth_dn_walk_pt)(void *arg, const char *id, uint64_t size,
    int64_t mtime);

plinth_dn_store *plinth_dn_store_open(const char *dir, uint32_t block_size,
    uint64_t capacity, uint64_t reserve, char *err, size_t errlen);
void plinth_dn_store_close(plinth_dn_store *s);
void plinth_dn_store_set_group_commit(plinth_dn_store *s, int on);
uint32_t plinth_dn_store_block_size(plinth_dn_store *s);
int plinth_dn_store_usage(plinth_dn_store *s, plinth_dn_usage *u);
void plinth_dn_store_count_corrupt(plinth_dn_store *s);

int plinth_dn_id_valid(const char *id);

plinth_dn_rc plinth_dn_put_begin(plinth_dn_store *s, const char *id,
    int64_t expected, plinth_dn_put **pp);
plinth_dn_rc plinth_dn_put_write(plinth_dn_put *p, const void *data,
    size_t len);
plinth_dn_rc plinth_dn_put_commit(plinth_dn_put *p, plinth_dn_blob *b);
void plinth_dn_put_abort(plinth_dn_put *p);

plinth_dn_rc plinth_dn_blob_open(plinth_dn_store *s, const char *id,
    plinth_dn_blob *b);
plinth_dn_rc plinth_dn_blob_open_small(plinth_dn_store *s, const char *id,
    plinth_dn_blob *b, uint8_t *buf, size_t cap, size_t *flen);
void plinth_dn_blob_close(plinth_dn_blob *b);
plinth_dn_rc plinth_dn_blob_delete(plinth_dn_store *s, const char *id);

int plinth_dn_store_walk(plinth_dn_store *s, const char *after,
    plinth_dn_walk_pt cb, void *arg);

#endif /* PLINTH_DN_STORE_H */
