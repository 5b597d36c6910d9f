/*
 * store.c -- blob files in one data directory (layout in store.h).
 *
 * A put streams into a private temp file, hashing as it goes (blockfile),
 * appends the footer, fsyncs the file, renames it to its final name
 * without replacing an existing one (renameat2 RENAME_NOREPLACE, or
 * link+unlink where the filesystem lacks it) and fsyncs the directory;
 * only then is it reported done. New ab/ and ab/cd/ directories are
 * fsynced into their parents. A failed or abandoned put unlinks its temp
 * file; whatever a crash leaves in tmp/ is removed at the next start.
 *
 * Space: a put reserves what it will write before writing it (the whole
 * Content-Length up front when known, else chunk by chunk), against the
 * filesystem's free space minus reserve_bytes and, if configured,
 * capacity_bytes minus the blob bytes stored. Reservations of puts in
 * progress are counted, so concurrent puts cannot overcommit.
 *
 * Counters (blob count and bytes) are computed by a full scan at open and
 * kept up to date by put and delete. The scan opens every blob to read
 * its trailer: start-up time grows with the number of blobs.
 *
 * Group commit (group_commit: true; off by default): the directory fsync
 * after the rename is shared. A put, once renamed, queues its leaf
 * directory and waits; the first waiter finding no sync running becomes
 * the leader, takes the whole queue and fsyncs each distinct directory in
 * it (on ext4 the first fsync commits the journal transaction holding all
 * the queued renames; the others have no commit left to wait for but
 * still flush the disk cache), then wakes the batch. Every queued rename precedes the leader's taking of
 * the queue, so each put still returns only after an fsync of its own
 * directory that began after its rename -- the same guarantee as without
 * group commit. Puts queued while a sync runs form the next batch: a put
 * waits at most for the sync in progress plus its own, batches are
 * bounded by the number of request threads, and nothing else (gets,
 * lists, deletes) waits. The file fsync stays one per put: concurrent
 * fsyncs already share journal commits in the kernel, and fsyncing a
 * batch's files one after another from a leader would serialize them.
 * Measured on ext4 here (README, Performance) the shared directory fsync
 * is slower than concurrent per-put fsyncs -- ext4 groups those itself
 * and each extra directory fsync still flushes the disk cache -- hence
 * off by default.
 *
 * Limits: a listing holds one leaf directory's names in memory at a time
 * (about total/65536 ids).
 */

#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store.h"

/* a large or chunked put's body is written in units of this (put_write) */
#define PLINTH_DN_PUT_GATHER  (512 * 1024)
/* buffer, offset and length alignment for O_DIRECT (any logical block
 * size up to 4 KiB) */
#define PLINTH_DN_DIRECT_ALIGN  4096

/* a blob's name under objects/: ab/cd/<id> (printf arguments: id, id + 2,
 * id); plinth_dn_blob_open opens it there, plinth_dn_blob_path prefixes
 * the data directory */
#define PLINTH_DN_BLOB_NAME   "%.2s/%.2s/%s"
#define PLINTH_DN_DIRS        65536       /* objects/ab/cd: 256 * 256 */

typedef struct plinth_dn_gc_wait_s  plinth_dn_gc_wait;

/* A put waiting for its directory's fsync (on the waiter's stack). */
struct plinth_dn_gc_wait_s {
    plinth_dn_gc_wait  *next;
    const char         *dir;
    int                 err;          /* 0 or the fsync's errno */
    int                 done;
};

struct plinth_dn_store_s {
    char             *root;
    uint32_t          block_size;
    uint64_t          capacity;
    uint64_t          reserve;
    int               lock_fd;
    int               objects_fd;     /* objects/, for openat */
    int              *dir_fd;         /* objects/ab/cd by 0xabcd: its
                                         descriptor + 1, 0 if not open */
    unsigned          dir_open;       /* atomic: how many are */
    unsigned          dir_max;        /* at most this many */
    pthread_mutex_t   mutex;
    uint64_t          blob_count;     /* under mutex */
    uint64_t          blob_bytes;     /* under mutex */
    uint64_t          pending_fs;     /* reserved, not yet written */
    uint64_t          pending_cap;    /* data bytes of puts in progress */
    uint64_t          corrupt;        /* atomic */
    time_t            probed;         /* under mutex: last write probe */
    int               probe_errno;    /* under mutex: its result, 0 = ok */
    int               group_commit;
    pthread_mutex_t   gc_mutex;
    pthread_cond_t    gc_cond;
    int               gc_running;     /* under gc_mutex: a leader syncs */
    plinth_dn_gc_wait *gc_queue;      /* under gc_mutex: next batch */
};

struct plinth_dn_put_s {
    plinth_dn_store   *store;
    char               id[PLINTH_DN_ID_LEN + 1];
    char               tmp[PATH_MAX];
    int                fd;
    int64_t            expected;      /* Content-Length, or -1 */
    uint64_t           fs_left;       /* reserved disk bytes not written */
    uint64_t           cap_held;      /* reserved capacity bytes */
    blockfile_writer   w;
    uint8_t           *pend;          /* body bytes not yet written */
    size_t             npend;
    int                direct;        /* O_DIRECT on fd: 1 set, 0 not,
                                       * -1 refused (never again) */
};

typedef struct {
    plinth_dn_store    *store;
    const char         *after;
    char                prefix[5];
    plinth_dn_walk_pt   cb;
    void               *arg;
} plinth_dn_walk_ctx;

static plinth_dn_rc plinth_dn_put_flush(plinth_dn_put *p);
static void plinth_dn_put_direct(plinth_dn_put *p, int on);
static int plinth_dn_mkdir_p(const char *dir);
static int plinth_dn_fsync_dir(const char *dir);
static int plinth_dn_sync_leaf(plinth_dn_store *s, const char *dir);
static int plinth_dn_mkdir_sync(const char *dir, const char *parent);
static int plinth_dn_clean_tmp(plinth_dn_store *s);
static int plinth_dn_make_top_dirs(plinth_dn_store *s, const char *objects);
static int plinth_dn_scan_cb(void *arg, const char *id, uint64_t size,
    int64_t mtime);
static int plinth_dn_blob_path(plinth_dn_store *s, const char *id,
    int depth, char *buf);
static plinth_dn_rc plinth_dn_reserve(plinth_dn_store *s, uint64_t fs,
    uint64_t cap);
static void plinth_dn_release(plinth_dn_put *p);
static plinth_dn_rc plinth_dn_errno_rc(int err);
static plinth_dn_rc plinth_dn_write_all(plinth_dn_put *p, const void *data,
    size_t len, int is_data);
static int plinth_dn_name_cmp(const void *a, const void *b);
static plinth_dn_rc plinth_dn_put_sync(plinth_dn_put *p, plinth_dn_blob *b);
static plinth_dn_rc plinth_dn_put_link(plinth_dn_put *p, plinth_dn_blob *b);
static plinth_dn_rc plinth_dn_put_existing(plinth_dn_put *p,
    plinth_dn_blob *b);
static unsigned plinth_dn_dir_budget(void);
static uint64_t plinth_dn_file_size(int fd);
static plinth_dn_rc plinth_dn_blob_fd(plinth_dn_store *s, const char *id,
    plinth_dn_blob *b);
static plinth_dn_rc plinth_dn_blob_meta(plinth_dn_blob *b);
static int plinth_dn_walk_level(plinth_dn_walk_ctx *w, char *path,
    int depth, int on_path);
static int plinth_dn_walk_visit(plinth_dn_walk_ctx *w, const char *path,
    const char *id);
static char *plinth_dn_read_names(const char *path, size_t len, size_t *n);


/*
 * Open (creating if needed) the data directory: lock it, make objects/
 * (and its 256 ab/ directories) and tmp/, empty tmp/, count the blobs.
 * Returns NULL with a reason in err on failure.
 */
plinth_dn_store *
plinth_dn_store_open(const char *dir, uint32_t block_size, uint64_t capacity,
    uint64_t reserve, char *err, size_t errlen)
{
    plinth_dn_store  *s;
    char              path[PATH_MAX];

    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->root = strdup(dir)) == NULL) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->block_size = block_size;
    s->capacity = capacity;
    s->reserve = reserve;
    s->lock_fd = -1;
    s->objects_fd = -1;
    s->dir_fd = calloc(PLINTH_DN_DIRS, sizeof(int));
    s->dir_max = plinth_dn_dir_budget();
    pthread_mutex_init(&s->mutex, NULL);
    s->group_commit = 0;
    pthread_mutex_init(&s->gc_mutex, NULL);
    pthread_cond_init(&s->gc_cond, NULL);

    snprintf(path, sizeof(path), "%s/.lock", dir);
    if (plinth_dn_mkdir_p(dir) != 0) {
        snprintf(err, errlen, "cannot create data_dir \"%s\": %s", dir,
                 strerror(errno));
        goto failed;
    }

    /* read-only: flock needs no write access, and a descriptor open for
     * writing would keep the filesystem from being remounted read-only
     * (EBUSY) by an operator fencing a failing disk */
    s->lock_fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "cannot lock \"%s\": %s", path,
                 errno == EWOULDBLOCK ? "data_dir is in use by another "
                 "data node" : strerror(errno));
        goto failed;
    }

    /* reads open a blob by its name under objects/ (openat): three
     * names to look up, not the data directory's whole path each time */
    snprintf(path, sizeof(path), "%s/objects", dir);
    if (plinth_dn_mkdir_sync("objects", dir) != 0
        || (s->objects_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0
        || plinth_dn_mkdir_sync("tmp", dir) != 0
        || plinth_dn_make_top_dirs(s, path) != 0
        || plinth_dn_clean_tmp(s) != 0
        || plinth_dn_store_walk(s, NULL, plinth_dn_scan_cb, s) != 0)
    {
        snprintf(err, errlen, "cannot prepare data_dir \"%s\": %s", dir,
                 strerror(errno));
        goto failed;
    }

    return s;

failed:
    plinth_dn_store_close(s);
    return NULL;
}


void
plinth_dn_store_close(plinth_dn_store *s)
{
    size_t  i;

    if (s == NULL) {
        return;
    }
    if (s->lock_fd >= 0) {
        close(s->lock_fd);
    }
    if (s->objects_fd >= 0) {
        close(s->objects_fd);
    }
    if (s->dir_fd) {
        for (i = 0; i < PLINTH_DN_DIRS; i++) {
            if (s->dir_fd[i]) {
                close(s->dir_fd[i] - 1);
            }
        }
        free(s->dir_fd);
    }
    pthread_mutex_destroy(&s->mutex);
    pthread_mutex_destroy(&s->gc_mutex);
    pthread_cond_destroy(&s->gc_cond);
    free(s->root);
    free(s);
}


/* Before serving: whether puts share directory fsyncs (see the top). */
void
plinth_dn_store_set_group_commit(plinth_dn_store *s, int on)
{
    s->group_commit = on;
}


uint32_t
plinth_dn_store_block_size(plinth_dn_store *s)
{
    return s->block_size;
}


void
plinth_dn_store_count_corrupt(plinth_dn_store *s)
{
    __atomic_add_fetch(&s->corrupt, 1, __ATOMIC_RELAXED);
}


/*
 * Whether the data directory takes a write: a file created in tmp/, one
 * byte written, fsynced, unlinked. A disk remounted read-only (EROFS), a
 * failing one (EIO) or a directory whose permissions changed fails it,
 * while statvfs still answers. Probed at most once a second (every /health
 * asks); the I/O runs outside the mutex. Returns 0 or the errno.
 */
static int
plinth_dn_store_probe(plinth_dn_store *s)
{
    int     fd, err;
    char    path[PATH_MAX];
    time_t  now;

    now = time(NULL);

    pthread_mutex_lock(&s->mutex);
    if (s->probed == now) {
        err = s->probe_errno;
        pthread_mutex_unlock(&s->mutex);
        return err;
    }
    pthread_mutex_unlock(&s->mutex);

    err = 0;
    snprintf(path, sizeof(path), "%s/tmp/.probe.XXXXXX", s->root);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        err = errno;
    } else {
        if (write(fd, "p", 1) != 1 || fsync(fd) != 0) {
            err = errno ? errno : EIO;
        }
        if (close(fd) != 0 && err == 0) {
            err = errno;
        }
        if (unlink(path) != 0 && err == 0) {
            err = errno;
        }
    }

    pthread_mutex_lock(&s->mutex);
    if (err != s->probe_errno) {
        if (err) {
            plinth_dn_log(PLINTH_DN_LOG_ERROR, NULL, NULL,
                          "data directory not writable: %s", strerror(err));
        } else if (s->probed) {
            plinth_dn_log(PLINTH_DN_LOG_INFO, NULL, NULL,
                          "data directory writable again");
        }
    }
    s->probed = now;
    s->probe_errno = err;
    pthread_mutex_unlock(&s->mutex);

    return err;
}


/* Current space and counters. Returns 0, or -1 if statvfs fails. */
int
plinth_dn_store_usage(plinth_dn_store *s, plinth_dn_usage *u)
{
    struct statvfs  vfs;
    uint64_t        avail, cap_free;

    if (statvfs(s->root, &vfs) != 0) {
        return -1;
    }
    avail = (uint64_t) vfs.f_bavail * vfs.f_frsize;

    pthread_mutex_lock(&s->mutex);
    u->blob_count = s->blob_count;
    u->blob_bytes = s->blob_bytes;
    u->free = avail > s->reserve + s->pending_fs
              ? avail - s->reserve - s->pending_fs : 0;
    if (s->capacity) {
        cap_free = s->capacity > s->blob_bytes + s->pending_cap
                   ? s->capacity - s->blob_bytes - s->pending_cap : 0;
        u->free = cap_free < u->free ? cap_free : u->free;
    }
    pthread_mutex_unlock(&s->mutex);

    u->total = s->capacity ? s->capacity
                           : (uint64_t) vfs.f_blocks * vfs.f_frsize;
    u->used = s->capacity ? u->blob_bytes
                          : (uint64_t) (vfs.f_blocks - vfs.f_bfree)
                            * vfs.f_frsize;
    u->corrupt = __atomic_load_n(&s->corrupt, __ATOMIC_RELAXED);
    u->full = u->free < s->block_size;
    u->write_errno = plinth_dn_store_probe(s);
    u->writable = u->write_errno == 0;
    return 0;
}


/* Whether id is exactly 32 lower-case hex digits. */
int
plinth_dn_id_valid(const char *id)
{
    size_t  i;

    for (i = 0; i < PLINTH_DN_ID_LEN; i++) {
        if (!((id[i] >= '0' && id[i] <= '9')
              || (id[i] >= 'a' && id[i] <= 'f')))
        {
            return 0;
        }
    }
    return id[i] == '\0';
}


/*
 * Start storing blob id. expected is the Content-Length, or -1 when
 * unknown (chunked). Returns PLINTH_DN_OK with *pp set, PLINTH_DN_EXISTS
 * when a blob of another size already has this id, PLINTH_DN_FULL, or
 * PLINTH_DN_EIO / ENOMEM. *pp must end in put_commit or put_abort.
 */
plinth_dn_rc
plinth_dn_put_begin(plinth_dn_store *s, const char *id, int64_t expected,
    plinth_dn_put **pp)
{
    plinth_dn_put      *p;
    plinth_dn_blob      old;
    plinth_dn_rc        rc;
    uint64_t            fs;

    if (expected >= 0 && plinth_dn_blob_open(s, id, &old) == PLINTH_DN_OK) {
        rc = old.meta.t.size == (uint64_t) expected ? PLINTH_DN_OK
                                                    : PLINTH_DN_EXISTS;
        plinth_dn_blob_close(&old);
        if (rc != PLINTH_DN_OK) {
            return rc;
        }
    }

    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return PLINTH_DN_ENOMEM;
    }
    p->store = s;
    p->fd = -1;
    p->expected = expected;
    memcpy(p->id, id, PLINTH_DN_ID_LEN + 1);

    if (expected >= 0) {
        fs = (uint64_t) expected
             + blockfile_footer_size((uint64_t) expected, s->block_size);
        rc = plinth_dn_reserve(s, fs, (uint64_t) expected);
        if (rc != PLINTH_DN_OK) {
            free(p);
            return rc;
        }
        p->fs_left = fs;
        p->cap_held = (uint64_t) expected;
    }

    if (blockfile_writer_init(&p->w, s->block_size) != BLOCKFILE_OK) {
        plinth_dn_put_abort(p);
        return PLINTH_DN_ENOMEM;
    }

    snprintf(p->tmp, sizeof(p->tmp), "%s/tmp/%s.XXXXXX", s->root, id);
    p->fd = mkostemp(p->tmp, O_CLOEXEC);
    if (p->fd < 0) {
        rc = plinth_dn_errno_rc(errno);
        p->tmp[0] = '\0';
        plinth_dn_put_abort(p);
        return rc;
    }

    *pp = p;
    return PLINTH_DN_OK;
}


/*
 * Append body bytes. On any error the caller must put_abort().
 *
 * The body arrives in pieces of libmicrohttpd's read buffer, half its
 * connection pool (main.c: tens of KiB). A large or chunked body is
 * gathered into PLINTH_DN_PUT_GATHER bytes and written in those units, so
 * a 64 MiB put costs 128 writes, not a few thousand. A body known to be
 * smaller is written as it comes (one piece, as a rule).
 */
plinth_dn_rc
plinth_dn_put_write(plinth_dn_put *p, const void *data, size_t len)
{
    plinth_dn_rc  rc;
    size_t        n;

    if (blockfile_writer_update(&p->w, data, len) != BLOCKFILE_OK) {
        return PLINTH_DN_ENOMEM;
    }

    if (p->expected >= 0 && p->expected <= PLINTH_DN_PUT_GATHER) {
        return plinth_dn_write_all(p, data, len, 1);
    }

    if (p->pend == NULL) {
        /* aligned for O_DIRECT (plinth_dn_put_flush) */
        if (posix_memalign((void **) &p->pend, PLINTH_DN_DIRECT_ALIGN,
                           PLINTH_DN_PUT_GATHER) != 0)
        {
            p->pend = NULL;
            return PLINTH_DN_ENOMEM;
        }
    }

    while (len > 0) {
        n = PLINTH_DN_PUT_GATHER - p->npend;
        n = len < n ? len : n;
        memcpy(p->pend + p->npend, data, n);
        p->npend += n;
        data = (const uint8_t *) data + n;
        len -= n;

        if (p->npend == PLINTH_DN_PUT_GATHER) {
            rc = plinth_dn_put_flush(p);
            if (rc != PLINTH_DN_OK) {
                return rc;
            }
        }
    }
    return PLINTH_DN_OK;
}


/*
 * Write the gathered body bytes. A full unit (PLINTH_DN_PUT_GATHER bytes
 * at a multiple of it in the file, from an aligned buffer) goes with
 * O_DIRECT: straight from the buffer to the disk, without a copy into the
 * page cache. On this project's virtual machine that copy was 78% of a
 * data node's CPU under 64 MiB puts, at 0.8 - 3 ms per MiB (README,
 * Performance); a blob just written is seldom read again at once, and
 * reads verify every block from disk anyway. The last, partial unit and
 * the footer are written through the page cache (O_DIRECT cleared), and
 * the fsync in plinth_dn_put_sync covers both kinds of write as well as
 * the metadata. A filesystem that refuses O_DIRECT (EINVAL) gets
 * ordinary writes.
 */
static plinth_dn_rc
plinth_dn_put_flush(plinth_dn_put *p)
{
    plinth_dn_rc  rc;

    if (p->npend == 0) {
        return PLINTH_DN_OK;
    }
    plinth_dn_put_direct(p, p->npend == PLINTH_DN_PUT_GATHER);
    rc = plinth_dn_write_all(p, p->pend, p->npend, 1);
    p->npend = 0;
    return rc;
}


/* Set or clear O_DIRECT on the put's file, as far as the filesystem lets. */
static void
plinth_dn_put_direct(plinth_dn_put *p, int on)
{
    int  fl;

    if (p->direct < 0 || p->direct == on) {
        return;
    }
    fl = fcntl(p->fd, F_GETFL);
    if (fl < 0 || fcntl(p->fd, F_SETFL,
                        on ? fl | O_DIRECT : fl & ~O_DIRECT) != 0)
    {
        if (on) {
            p->direct = -1;
        }
        return;
    }
    p->direct = on;
}


/*
 * Finish a put: footer, fsync, rename into place, fsync the directory.
 * Always consumes p. On PLINTH_DN_OK (stored) or PLINTH_DN_SAME (an
 * identical blob was already there) b describes the stored blob (b->fd is
 * -1; release with plinth_dn_blob_close). PLINTH_DN_EXISTS: another blob
 * has the id. PLINTH_DN_FULL, PLINTH_DN_EIO: nothing was stored.
 */
plinth_dn_rc
plinth_dn_put_commit(plinth_dn_put *p, plinth_dn_blob *b)
{
    plinth_dn_rc  rc;

    b->fd = -1;
    b->meta.block_xxh3 = NULL;

    rc = plinth_dn_put_sync(p, b);
    if (rc == PLINTH_DN_OK) {
        rc = plinth_dn_put_link(p, b);
    }
    if (rc != PLINTH_DN_OK && rc != PLINTH_DN_SAME) {
        blockfile_meta_free(&b->meta);
    }

    plinth_dn_put_abort(p);
    return rc;
}


/* Drop a put: close and unlink the temp file, give back its reservation. */
void
plinth_dn_put_abort(plinth_dn_put *p)
{
    if (p->fd >= 0) {
        close(p->fd);
    }
    if (p->tmp[0] != '\0' && unlink(p->tmp) != 0 && errno != ENOENT) {
        plinth_dn_log(PLINTH_DN_LOG_ERROR, NULL, p->id,
                      "cannot remove temp file \"%s\": %s", p->tmp,
                      strerror(errno));
    }
    plinth_dn_release(p);
    blockfile_writer_free(&p->w);
    free(p->pend);
    free(p);
}


/*
 * Open blob id and check its footer. PLINTH_DN_OK fills b (close with
 * plinth_dn_blob_close); else PLINTH_DN_NOT_FOUND, PLINTH_DN_CORRUPT,
 * PLINTH_DN_EIO, PLINTH_DN_ENOMEM.
 */
plinth_dn_rc
plinth_dn_blob_open(plinth_dn_store *s, const char *id, plinth_dn_blob *b)
{
    plinth_dn_rc  rc;

    rc = plinth_dn_blob_fd(s, id, b);
    if (rc != PLINTH_DN_OK) {
        return rc;
    }

    return plinth_dn_blob_meta(b);
}


/*
 * plinth_dn_blob_open() for a blob the caller expects to be small: one
 * pread of up to cap bytes from the file's start. When the file is shorter
 * than cap it is now whole in buf: *flen is its size, the footer was
 * checked from there (blockfile_open_mem: read its blocks with
 * blockfile_block_mem), the file is closed already (b->fd is -1) and
 * b->mtime is 0 (no fstat). Else, and when those bytes do not decode (the
 * regular open then decides what the file is), *flen is 0 and b is what
 * plinth_dn_blob_open() gives. Open, fstat, two preads and close become
 * open, one pread and close.
 */
plinth_dn_rc
plinth_dn_blob_open_small(plinth_dn_store *s, const char *id,
    plinth_dn_blob *b, uint8_t *buf, size_t cap, size_t *flen)
{
    ssize_t       n;
    plinth_dn_rc  rc;

    *flen = 0;
    b->mtime = 0;
    rc = plinth_dn_blob_fd(s, id, b);
    if (rc != PLINTH_DN_OK) {
        return rc;
    }

    do {
        n = pread(b->fd, buf, cap, 0);
    } while (n < 0 && errno == EINTR);

    if (n >= 0 && (size_t) n < cap
        && blockfile_open_mem(buf, (uint64_t) n, &b->meta) == BLOCKFILE_OK)
    {
        close(b->fd);
        b->fd = -1;
        *flen = (size_t) n;
        return PLINTH_DN_OK;
    }

    return plinth_dn_blob_meta(b);
}


/*
 * How many objects/ab/cd directories a store keeps open: a quarter of the
 * descriptors the process may have (raised to its hard limit by main), at
 * most all 65,536 of them.
 */
static unsigned
plinth_dn_dir_budget(void)
{
    struct rlimit  rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
        return 0;
    }
    return rl.rlim_cur / 4 < PLINTH_DN_DIRS ? (unsigned) (rl.rlim_cur / 4)
                                            : PLINTH_DN_DIRS;
}


/* A hex digit's value; id is checked already (plinth_dn_id_valid). */
static unsigned
plinth_dn_hex4(const char *id)
{
    unsigned  v, i;
    char      c;

    v = 0;
    for (i = 0; i < 4; i++) {
        c = id[i];
        v = v << 4 | (unsigned) (c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return v;
}


/*
 * Blob id's directory, objects/ab/cd, as a descriptor to openat the blob
 * from: one name to look up in the kernel where the path has three (their
 * dentry lookups and permission checks were a tenth of a batch GET's
 * data-node time). Directories are made on a blob's first write and never
 * removed, so one opened stays right; a store keeps up to dir_max of them
 * open, first come. -1 when it is not kept (the caller opens by path).
 */
static int
plinth_dn_dir(plinth_dn_store *s, const char *id)
{
    char      name[6];
    unsigned  i;
    int       fd, cur;

    if (s->dir_fd == NULL) {
        return -1;
    }

    i = plinth_dn_hex4(id);
    cur = __atomic_load_n(&s->dir_fd[i], __ATOMIC_ACQUIRE);
    if (cur) {
        return cur - 1;
    }

    if (__atomic_load_n(&s->dir_open, __ATOMIC_RELAXED) >= s->dir_max) {
        return -1;
    }

    memcpy(name, id, 2);
    name[2] = '/';
    memcpy(name + 3, id + 2, 2);
    name[5] = '\0';
    fd = openat(s->objects_fd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;      /* not there yet, or no descriptor: by path */
    }

    cur = 0;
    if (!__atomic_compare_exchange_n(&s->dir_fd[i], &cur, fd + 1, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    {
        close(fd);      /* another thread opened it first */
        return cur - 1;
    }

    __atomic_add_fetch(&s->dir_open, 1, __ATOMIC_RELAXED);
    return fd;
}


/* Open blob id's file under objects/ for reading into b->fd (no footer
 * yet): PLINTH_DN_OK, PLINTH_DN_NOT_FOUND or PLINTH_DN_EIO. */
static plinth_dn_rc
plinth_dn_blob_fd(plinth_dn_store *s, const char *id, plinth_dn_blob *b)
{
    char  name[3 + 3 + PLINTH_DN_ID_LEN + 1];
    int   dir;

    b->meta.block_xxh3 = NULL;
    dir = plinth_dn_dir(s, id);
    if (dir >= 0) {
        b->fd = openat(dir, id, O_RDONLY | O_CLOEXEC);
    } else {
        snprintf(name, sizeof(name), PLINTH_DN_BLOB_NAME, id, id + 2, id);
        b->fd = openat(s->objects_fd, name, O_RDONLY | O_CLOEXEC);
    }
    if (b->fd < 0) {
        return errno == ENOENT ? PLINTH_DN_NOT_FOUND : PLINTH_DN_EIO;
    }

    return PLINTH_DN_OK;
}


/* The rest of an open: fstat, then the trailer and footer. Closes b if
 * they fail. */
static plinth_dn_rc
plinth_dn_blob_meta(plinth_dn_blob *b)
{
    struct stat  st;
    int          rc;

    rc = fstat(b->fd, &st) == 0
         ? blockfile_open_size(b->fd, (uint64_t) st.st_size, &b->meta)
         : BLOCKFILE_EIO;
    if (rc == BLOCKFILE_OK) {
        b->mtime = st.st_mtime;
        return PLINTH_DN_OK;
    }

    plinth_dn_blob_close(b);
    return rc == BLOCKFILE_ECORRUPT ? PLINTH_DN_CORRUPT
           : rc == BLOCKFILE_ENOMEM ? PLINTH_DN_ENOMEM : PLINTH_DN_EIO;
}


void
plinth_dn_blob_close(plinth_dn_blob *b)
{
    if (b->fd >= 0) {
        close(b->fd);
        b->fd = -1;
    }
    blockfile_meta_free(&b->meta);
}


/* Unlink blob id and fsync its directory. */
plinth_dn_rc
plinth_dn_blob_delete(plinth_dn_store *s, const char *id)
{
    char      path[PATH_MAX], dir[PATH_MAX];
    uint64_t  size;
    int       fd;

    plinth_dn_blob_path(s, id, 3, path);
    plinth_dn_blob_path(s, id, 2, dir);

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? PLINTH_DN_NOT_FOUND : PLINTH_DN_EIO;
    }
    size = plinth_dn_file_size(fd);
    close(fd);

    if (unlink(path) != 0) {
        return errno == ENOENT ? PLINTH_DN_NOT_FOUND : PLINTH_DN_EIO;
    }

    pthread_mutex_lock(&s->mutex);
    s->blob_count -= s->blob_count > 0;
    s->blob_bytes -= size < s->blob_bytes ? size : s->blob_bytes;
    pthread_mutex_unlock(&s->mutex);

    return plinth_dn_fsync_dir(dir) == 0 ? PLINTH_DN_OK : PLINTH_DN_EIO;
}


/*
 * Call cb for each blob with an id greater than after (NULL: all), in
 * ascending id order, until cb returns non-zero. Reads one directory at a
 * time. Returns 0, or -1 with errno set.
 */
int
plinth_dn_store_walk(plinth_dn_store *s, const char *after,
    plinth_dn_walk_pt cb, void *arg)
{
    plinth_dn_walk_ctx  w;
    char                path[PATH_MAX];
    int                 rc;

    w.store = s;
    w.after = after;
    w.cb = cb;
    w.arg = arg;
    memset(w.prefix, 0, sizeof(w.prefix));

    snprintf(path, sizeof(path), "%s/objects", s->root);
    rc = plinth_dn_walk_level(&w, path, 0, after != NULL);
    return rc < 0 ? -1 : 0;
}


/*
 * One level of the walk: depth 0 lists objects/ (ab), 1 lists ab/ (cd),
 * 2 lists ab/cd/ (ids). on_path: the names so far equal after's prefix,
 * so names below after's are skipped. Returns 0, 1 (stopped), -1.
 */
static int
plinth_dn_walk_level(plinth_dn_walk_ctx *w, char *path, int depth,
    int on_path)
{
    size_t   len = depth < 2 ? 2 : PLINTH_DN_ID_LEN, n, i, plen;
    char    *names, *name;
    int      rc = 0, c;

    names = plinth_dn_read_names(path, len, &n);
    if (names == NULL) {
        return errno == ENOENT && depth > 0 ? 0 : -1;
    }

    plen = strlen(path);
    for (i = 0; i < n && rc == 0; i++) {
        name = names + i * (len + 1);
        snprintf(path + plen, PATH_MAX - plen, "/%s", name);

        if (depth == 2) {
            if (memcmp(name, w->prefix, 4) == 0
                && !(on_path && strcmp(name, w->after) <= 0))
            {
                rc = plinth_dn_walk_visit(w, path, name);
            }
            continue;
        }

        c = on_path ? strncmp(name, w->after + 2 * depth, 2) : 1;
        if (c >= 0) {
            memcpy(w->prefix + 2 * depth, name, 2);
            rc = plinth_dn_walk_level(w, path, depth + 1, on_path && c == 0);
        }
    }

    path[plen] = '\0';
    free(names);
    return rc;
}


static int
plinth_dn_walk_visit(plinth_dn_walk_ctx *w, const char *path, const char *id)
{
    struct stat  st;
    uint64_t     size;
    int          fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? 0 : -1;      /* deleted meanwhile */
    }
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    size = plinth_dn_file_size(fd);
    close(fd);

    return w->cb(w->arg, id, size, st.st_mtime) ? 1 : 0;
}


/*
 * Names in directory path that are exactly len lower-case hex digits,
 * sorted, as one malloc'ed array of n slots of len+1 bytes. NULL with
 * errno set on failure (n = 0 and a valid pointer for an empty dir).
 */
static char *
plinth_dn_read_names(const char *path, size_t len, size_t *n)
{
    DIR            *d;
    struct dirent  *de;
    char           *names, *p;
    size_t          cap = 64, i;

    d = opendir(path);
    names = d ? malloc(cap * (len + 1)) : NULL;
    if (names == NULL) {
        if (d != NULL) {
            closedir(d);
            errno = ENOMEM;
        }
        return NULL;
    }

    *n = 0;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strlen(de->d_name) != len
            || strspn(de->d_name, "0123456789abcdef") != len)
        {
            continue;
        }
        if (*n == cap) {
            p = realloc(names, cap * 2 * (len + 1));
            if (p == NULL) {
                free(names);
                closedir(d);
                errno = ENOMEM;
                return NULL;
            }
            names = p;
            cap *= 2;
        }
        memcpy(names + *n * (len + 1), de->d_name, len + 1);
        (*n)++;
    }
    i = (size_t) errno;
    closedir(d);
    if (i != 0) {
        free(names);
        errno = (int) i;
        return NULL;
    }

    qsort(names, *n, len + 1, plinth_dn_name_cmp);
    return names;
}


static int
plinth_dn_name_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}


/* Data size from the trailer; the whole file size if the trailer is bad. */
static uint64_t
plinth_dn_file_size(int fd)
{
    blockfile_trailer  t;
    struct stat        st;

    if (blockfile_read_trailer(fd, &t) == BLOCKFILE_OK) {
        return t.size;
    }
    return fstat(fd, &st) == 0 ? (uint64_t) st.st_size : 0;
}


static int
plinth_dn_scan_cb(void *arg, const char *id, uint64_t size, int64_t mtime)
{
    plinth_dn_store  *s = arg;

    s->blob_count++;
    s->blob_bytes += size;
    return 0;
}


/*
 * Write to the temp file, first reserving what the reservation made at
 * begin does not cover (chunked bodies; is_data = 0 for the footer, which
 * takes disk but not capacity).
 */
static plinth_dn_rc
plinth_dn_write_all(plinth_dn_put *p, const void *data, size_t len,
    int is_data)
{
    const char    *c = data;
    plinth_dn_rc   rc;
    uint64_t       more, cap;
    ssize_t        n;

    if (len > p->fs_left) {
        more = len - p->fs_left;
        cap = is_data && p->expected < 0 ? more : 0;
        rc = plinth_dn_reserve(p->store, more, cap);
        if (rc != PLINTH_DN_OK) {
            return rc;
        }
        p->cap_held += cap;
        p->fs_left = len;
    }

    while (len > 0) {
        n = write(p->fd, c, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EINVAL && p->direct == 1) {
                /* O_DIRECT refused at the write (or a short write left
                 * the rest unaligned): the rest through the page cache */
                plinth_dn_put_direct(p, 0);
                p->direct = -1;
                continue;
            }
            return plinth_dn_errno_rc(errno);
        }
        c += n;
        len -= (size_t) n;

        pthread_mutex_lock(&p->store->mutex);
        p->store->pending_fs -= (uint64_t) n;
        pthread_mutex_unlock(&p->store->mutex);
        p->fs_left -= (uint64_t) n;
    }
    return PLINTH_DN_OK;
}


/* Footer, fsync, close. Leaves the decoded footer in b->meta. */
static plinth_dn_rc
plinth_dn_put_sync(plinth_dn_put *p, plinth_dn_blob *b)
{
    blockfile_trailer   t;
    struct stat         st;
    uint8_t            *footer;
    size_t              len;
    plinth_dn_rc        rc;
    int                 fd;

    rc = plinth_dn_put_flush(p);
    if (rc != PLINTH_DN_OK) {
        return rc;
    }

    plinth_dn_put_direct(p, 0);       /* the footer: not aligned */
    footer = blockfile_writer_finish(&p->w, &t, &len);
    if (footer == NULL) {
        return PLINTH_DN_ENOMEM;
    }
    if (p->expected >= 0 && t.size != (uint64_t) p->expected) {
        free(footer);
        errno = EPROTO;
        return PLINTH_DN_EIO;
    }

    rc = plinth_dn_write_all(p, footer, len, 0);
    if (rc == PLINTH_DN_OK
        && blockfile_footer_decode(footer, len, &b->meta) != BLOCKFILE_OK)
    {
        rc = PLINTH_DN_ENOMEM;
    }
    free(footer);
    if (rc != PLINTH_DN_OK) {
        return rc;
    }

    fd = p->fd;
    p->fd = -1;
    if (fsync(fd) != 0 || fstat(fd, &st) != 0) {
        rc = plinth_dn_errno_rc(errno);
        close(fd);
        return rc;
    }
    b->mtime = st.st_mtime;
    return close(fd) == 0 ? PLINTH_DN_OK : plinth_dn_errno_rc(errno);
}


/* Make ab/ and ab/cd/, rename the temp file in, fsync the directory. */
static plinth_dn_rc
plinth_dn_put_link(plinth_dn_put *p, plinth_dn_blob *b)
{
    plinth_dn_store  *s = p->store;
    char              objects[PATH_MAX], ab[PATH_MAX], cd[PATH_MAX];
    char              path[PATH_MAX];
    int               rc;

    plinth_dn_blob_path(s, p->id, 0, objects);
    plinth_dn_blob_path(s, p->id, 1, ab);
    plinth_dn_blob_path(s, p->id, 2, cd);
    plinth_dn_blob_path(s, p->id, 3, path);

    if (plinth_dn_mkdir_sync(ab, objects) != 0
        || plinth_dn_mkdir_sync(cd, ab) != 0)
    {
        return plinth_dn_errno_rc(errno);
    }

    rc = renameat2(AT_FDCWD, p->tmp, AT_FDCWD, path, RENAME_NOREPLACE);
    if (rc == 0) {
        p->tmp[0] = '\0';             /* nothing left for put_abort */
    } else if (errno == EINVAL || errno == ENOSYS) {
        rc = link(p->tmp, path);       /* no RENAME_NOREPLACE on this fs */
    }
    if (rc != 0) {
        return errno == EEXIST ? plinth_dn_put_existing(p, b)
                               : plinth_dn_errno_rc(errno);
    }

    if (plinth_dn_sync_leaf(s, cd) != 0) {
        return plinth_dn_errno_rc(errno);
    }

    pthread_mutex_lock(&s->mutex);
    s->blob_count++;
    s->blob_bytes += b->meta.t.size;
    pthread_mutex_unlock(&s->mutex);
    return PLINTH_DN_OK;
}


/* The id is taken: the same blob (retry) is success, anything else not. */
static plinth_dn_rc
plinth_dn_put_existing(plinth_dn_put *p, plinth_dn_blob *b)
{
    plinth_dn_blob  old;
    plinth_dn_rc    rc;

    rc = plinth_dn_blob_open(p->store, p->id, &old);
    if (rc == PLINTH_DN_NOT_FOUND) {
        errno = EAGAIN;                /* deleted meanwhile: let it retry */
        return PLINTH_DN_EIO;
    }
    if (rc == PLINTH_DN_CORRUPT) {
        return PLINTH_DN_EXISTS;
    }
    if (rc != PLINTH_DN_OK) {
        return rc;
    }

    if (old.meta.t.size != b->meta.t.size
        || old.meta.t.xxh3 != b->meta.t.xxh3)
    {
        plinth_dn_blob_close(&old);
        return PLINTH_DN_EXISTS;
    }

    close(old.fd);
    blockfile_meta_free(&b->meta);
    b->meta = old.meta;
    b->mtime = old.mtime;
    return PLINTH_DN_SAME;
}


/*
 * Reserve fs bytes of disk and cap bytes of capacity for a put, or
 * answer PLINTH_DN_FULL.
 */
static plinth_dn_rc
plinth_dn_reserve(plinth_dn_store *s, uint64_t fs, uint64_t cap)
{
    struct statvfs  vfs;
    uint64_t        avail;
    plinth_dn_rc    rc = PLINTH_DN_OK;

    if (statvfs(s->root, &vfs) != 0) {
        return PLINTH_DN_EIO;
    }
    avail = (uint64_t) vfs.f_bavail * vfs.f_frsize;

    pthread_mutex_lock(&s->mutex);
    if (avail < s->reserve + s->pending_fs
        || fs > avail - s->reserve - s->pending_fs
        || (s->capacity
            && s->blob_bytes + s->pending_cap + cap > s->capacity))
    {
        rc = PLINTH_DN_FULL;
    } else {
        s->pending_fs += fs;
        s->pending_cap += cap;
    }
    pthread_mutex_unlock(&s->mutex);
    return rc;
}


static void
plinth_dn_release(plinth_dn_put *p)
{
    pthread_mutex_lock(&p->store->mutex);
    p->store->pending_fs -= p->fs_left;
    p->store->pending_cap -= p->cap_held;
    pthread_mutex_unlock(&p->store->mutex);
    p->fs_left = 0;
    p->cap_held = 0;
}


static plinth_dn_rc
plinth_dn_errno_rc(int err)
{
    return err == ENOSPC || err == EDQUOT ? PLINTH_DN_FULL : PLINTH_DN_EIO;
}


/*
 * Path of id's file (depth 3) or of its directories: 2 = objects/ab/cd,
 * 1 = objects/ab, 0 = objects. buf is PATH_MAX bytes; ids are checked
 * before they get here, so the result always fits a sane data_dir.
 */
static int
plinth_dn_blob_path(plinth_dn_store *s, const char *id, int depth, char *buf)
{
    static const char  *fmt[] = {
        "%s/objects", "%s/objects/%.2s", "%s/objects/%.2s/%.2s",
        ("%s/objects/" PLINTH_DN_BLOB_NAME)
    };

    return snprintf(buf, PATH_MAX, fmt[depth], s->root, id, id + 2, id);
}


/* mkdir dir (relative to parent if not absolute); fsync parent if made. */
static int
plinth_dn_mkdir_sync(const char *dir, const char *parent)
{
    char  path[PATH_MAX];

    if (dir[0] != '/') {
        snprintf(path, sizeof(path), "%s/%s", parent, dir);
        dir = path;
    }
    if (mkdir(dir, 0750) != 0) {
        return errno == EEXIST ? 0 : -1;
    }
    return plinth_dn_fsync_dir(parent);
}


/*
 * Make a rename into leaf directory dir durable: fsync dir, alone or as
 * part of a group commit (see the top). Returns 0, or -1 with errno set.
 */
static int
plinth_dn_sync_leaf(plinth_dn_store *s, const char *dir)
{
    plinth_dn_gc_wait   me, *batch, *w, *v;

    if (!s->group_commit) {
        return plinth_dn_fsync_dir(dir);
    }

    me.dir = dir;
    me.err = 0;
    me.done = 0;

    pthread_mutex_lock(&s->gc_mutex);
    me.next = s->gc_queue;
    s->gc_queue = &me;

    while (!me.done) {
        if (s->gc_running) {
            pthread_cond_wait(&s->gc_cond, &s->gc_mutex);
            continue;
        }

        /* lead: the queue (with me in it) is the batch */
        s->gc_running = 1;
        batch = s->gc_queue;
        s->gc_queue = NULL;
        pthread_mutex_unlock(&s->gc_mutex);

        for (w = batch; w != NULL; w = w->next) {
            for (v = batch; v != w; v = v->next) {
                if (strcmp(v->dir, w->dir) == 0) {
                    break;
                }
            }
            if (v != w) {
                w->err = v->err;           /* same directory, synced */
            } else {
                w->err = plinth_dn_fsync_dir(w->dir) == 0 ? 0 : errno;
            }
        }

        pthread_mutex_lock(&s->gc_mutex);
        for (w = batch; w != NULL; w = v) {
            v = w->next;                   /* w's owner may leave at once */
            w->done = 1;
        }
        s->gc_running = 0;
        pthread_cond_broadcast(&s->gc_cond);
    }
    pthread_mutex_unlock(&s->gc_mutex);

    if (me.err != 0) {
        errno = me.err;
        return -1;
    }
    return 0;
}


static int
plinth_dn_fsync_dir(const char *dir)
{
    int  fd, rc;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    rc = fsync(fd);
    if (rc != 0) {
        rc = errno;
        close(fd);
        errno = rc;
        return -1;
    }
    return close(fd);
}


static int
plinth_dn_mkdir_p(const char *dir)
{
    char    path[PATH_MAX];
    char   *p;
    size_t  len = strlen(dir);

    if (len == 0 || len >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(path, dir, len + 1);

    for (p = path + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char  c = *p;

            *p = '\0';
            if (mkdir(path, 0750) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = c;
            if (c == '\0') {
                break;
            }
        }
    }
    return 0;
}


/*
 * Make objects/00 .. objects/ff, those missing, with one fsync of
 * objects/ for all of them. A put makes its own directories when they are
 * missing, so this only saves work: without it, the first thousand or so
 * blobs of a new store (until all 256 exist) each made one, and a put
 * that makes a directory waits for an fsync of objects/, which every such
 * put shares (measured: PUT 4 KiB tails of 20 - 50 ms in a new cluster's
 * first second or two). 256 directories cost about 1 MiB; the 65,536
 * leaves below them (256 MiB) are still made as blobs arrive.
 * A directory that cannot be made here (a read-only filesystem serving
 * reads) is left to the put that needs it. Returns -1 only when objects/
 * cannot be synced after directories were made.
 */
static int
plinth_dn_make_top_dirs(plinth_dn_store *s, const char *objects)
{
    char  name[3];
    int   i, made = 0, failed = 0, err = 0;

    for (i = 0; i < 256; i++) {
        snprintf(name, sizeof(name), "%02x", i);
        if (mkdirat(s->objects_fd, name, 0750) == 0) {
            made++;
        } else if (errno != EEXIST) {
            failed++;
            err = errno;
        }
    }
    if (failed > 0) {
        plinth_dn_log(PLINTH_DN_LOG_WARN, NULL, NULL,
                      "could not make %d of the 256 directories under \"%s\" "
                      "(%s); puts will make them", failed, objects,
                      strerror(err));
    }
    return made > 0 ? plinth_dn_fsync_dir(objects) : 0;
}


/* Remove everything a crash left in tmp/. */
static int
plinth_dn_clean_tmp(plinth_dn_store *s)
{
    char            path[PATH_MAX];
    DIR            *d;
    struct dirent  *de;
    int             n = 0, fd;

    snprintf(path, sizeof(path), "%s/tmp", s->root);
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }

    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && (de->d_name[1] == '\0'
            || (de->d_name[1] == '.' && de->d_name[2] == '\0')))
        {
            continue;
        }
        if (unlinkat(fd, de->d_name, 0) == 0) {
            n++;
        }
    }
    closedir(d);

    if (n > 0) {
        plinth_dn_log(PLINTH_DN_LOG_WARN, NULL, NULL,
                      "removed %d unfinished write(s) from \"%s\"", n, path);
    }
    return 0;
}
