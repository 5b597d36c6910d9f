/*
 * Usage of the gateway: egress bytes and reads per object, counted in
 * shared memory and flushed to PostgreSQL in batches.
 *
 * A GET that sent object bytes calls ngx_http_plinth_usage_record_read()
 * once (from the log phase; other features that serve object bytes call it
 * for each object they serve): it adds the bytes and one read to the entry
 * of (bucket, key) in the "plinth_usage" zone, shared by all workers, and
 * keeps the latest access time. No database write per read.
 *
 * Every plinth_usage_flush (5 s by default) each worker's timer tries to
 * become the flusher (a lock word in the zone: one flusher at a time across
 * workers, and one flush per interval however many workers there are). The
 * flusher takes every entry out of the zone under its mutex into its own
 * memory and sends them as ONE statement, plinth_usage_flush (sql/016:
 * arrays, unnest), through the pool's background queries. If the query
 * fails, the entries are put back into the zone for the next flush.
 *
 * The zone holds at most plinth_usage_entries keys. When it is three
 * quarters full, the recording worker starts a flush at once; a read that
 * finds it full (or the slab pool out of memory) is dropped and counted
 * (plinth_usage_dropped_reads_total in /metrics).
 *
 * plinth_usage_flush 0 turns all of it off (nothing is counted).
 *
 * What can be lost: the zone survives `nginx -s reload` (same name and
 * size: the new workers flush what the old ones counted); a restart or a
 * killed master loses what was not flushed yet (at most one interval of
 * reads, plus a batch in flight when a worker exits); a PostgreSQL crash
 * may lose the last flushed batch (it commits without waiting for its WAL
 * flush).
 */

#include "ngx_plinth.h"


#define NGX_PLINTH_USAGE_VERSION    1
#define NGX_PLINTH_USAGE_STALE      60      /* s: a flusher that vanished */
#define NGX_PLINTH_USAGE_NAME_MAX   (63 + 1 + NGX_PLINTH_MAX_KEY_LEN)


typedef struct {
    ngx_str_node_t                sn;       /* "bucket/key" */
    ngx_queue_t                   queue;
    uint64_t                      bytes;
    uint64_t                      reads;
    uint64_t                      last_ms;
    u_char                        data[1];
} ngx_http_plinth_usage_entry_t;


typedef struct {
    ngx_uint_t                    version;
    ngx_rbtree_t                  rbtree;
    ngx_rbtree_node_t             sentinel;
    ngx_queue_t                   queue;
    ngx_uint_t                    entries;

    ngx_atomic_t                  flush_lock;   /* flusher's pid, 0: none */
    ngx_atomic_t                  lock_time;    /* s, when taken */
    ngx_atomic_t                  last_flush;   /* ms since the epoch */

    ngx_atomic_t                  flushes;
    ngx_atomic_t                  flush_failures;
    ngx_atomic_t                  flushed_keys;
    ngx_atomic_t                  dropped;
    ngx_atomic_t                  recorded;
} ngx_http_plinth_usage_shm_t;


/* one key of a batch in flight, in the flusher's own memory */
typedef struct {
    u_char                       *name;
    size_t                        len;
    size_t                        blen;
    uint64_t                      bytes;
    uint64_t                      reads;
    uint64_t                      last_ms;
} ngx_http_plinth_usage_item_t;


typedef struct {
    ngx_http_plinth_usage_item_t *items;
    ngx_uint_t                    n;
    u_char                       *names;
} ngx_http_plinth_usage_batch_t;


static ngx_int_t ngx_http_plinth_usage_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_plinth_usage_timer(ngx_event_t *ev);
static void ngx_http_plinth_usage_flush(ngx_log_t *log, ngx_uint_t early);
static void ngx_http_plinth_usage_done(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static ngx_int_t ngx_http_plinth_usage_add_locked(u_char *name, size_t len,
    size_t blen, uint64_t bytes, uint64_t reads, uint64_t last_ms);
static void ngx_http_plinth_usage_unlock(void);


static ngx_shm_zone_t               *ngx_http_plinth_usage_zone;
static ngx_http_plinth_usage_shm_t  *ngx_http_plinth_usage_sh;
static ngx_uint_t                    ngx_http_plinth_usage_cap;
static ngx_msec_t                    ngx_http_plinth_usage_every;
static ngx_uint_t                    ngx_http_plinth_usage_rf;
static ngx_event_t                   ngx_http_plinth_usage_ev;
static ngx_log_t                    *ngx_http_plinth_usage_log;
static ngx_uint_t                    ngx_http_plinth_usage_in_flight;
static ngx_uint_t                    ngx_http_plinth_usage_in_flight_keys;


static uint64_t
ngx_http_plinth_usage_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();
    return (uint64_t) tp->sec * 1000 + tp->msec;
}


/* postconfiguration: the zone, sized for plinth_usage_entries keys */
ngx_int_t
ngx_http_plinth_usage_conf(ngx_conf_t *cf, ngx_http_plinth_main_conf_t *pmcf)
{
    size_t     size;
    ngx_str_t  name = ngx_string("plinth_usage");

    ngx_http_plinth_usage_cap = pmcf->usage_entries;

    /*
     * an entry is ~100 bytes and its name: a 256-byte slab slot for names
     * up to ~150 bytes, 512 or more for longer ones (a full zone is
     * counted in /metrics, and flushed at once)
     */
    size = ngx_align(sizeof(ngx_http_plinth_usage_shm_t), ngx_pagesize)
           + pmcf->usage_entries * 320 + 16 * ngx_pagesize;

    ngx_http_plinth_usage_zone = ngx_shared_memory_add(cf, &name, size,
                                                       &ngx_http_plinth_module);
    if (ngx_http_plinth_usage_zone == NULL) {
        return NGX_ERROR;
    }

    ngx_http_plinth_usage_zone->init = ngx_http_plinth_usage_init_zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_plinth_usage_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t              *shpool;
    ngx_http_plinth_usage_shm_t  *sh;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (data) {
        /* a reload: what the old workers counted is flushed by the new */
        sh = data;
        if (sh->version == NGX_PLINTH_USAGE_VERSION) {
            shm_zone->data = data;
            ngx_http_plinth_usage_sh = data;
            return NGX_OK;
        }
    }

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        ngx_http_plinth_usage_sh = shpool->data;
        return NGX_OK;
    }

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_plinth_usage_shm_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    sh->version = NGX_PLINTH_USAGE_VERSION;
    ngx_rbtree_init(&sh->rbtree, &sh->sentinel, ngx_str_rbtree_insert_value);
    ngx_queue_init(&sh->queue);

    shpool->data = sh;
    shm_zone->data = sh;
    ngx_http_plinth_usage_sh = sh;

    shpool->log_nomem = 0;   /* a full zone is counted, not logged */

    return NGX_OK;
}


ngx_int_t
ngx_http_plinth_usage_init(ngx_cycle_t *cycle,
    ngx_http_plinth_main_conf_t *pmcf)
{
    ngx_http_plinth_usage_in_flight = 0;
    ngx_http_plinth_usage_every = 0;

    if (ngx_http_plinth_usage_sh == NULL || pmcf->usage_flush == 0) {
        return NGX_OK;
    }

    ngx_http_plinth_usage_every = pmcf->usage_flush;
    ngx_http_plinth_usage_rf = pmcf->rf;
    ngx_http_plinth_usage_log = cycle->log;

    ngx_http_plinth_usage_ev.handler = ngx_http_plinth_usage_timer;
    ngx_http_plinth_usage_ev.log = cycle->log;
    ngx_http_plinth_usage_ev.data = NULL;
    ngx_http_plinth_usage_ev.cancelable = 1;

    /* the pool connects first */
    ngx_add_timer(&ngx_http_plinth_usage_ev, 200);

    return NGX_OK;
}


void
ngx_http_plinth_usage_exit(void)
{
    if (ngx_http_plinth_usage_ev.timer_set) {
        ngx_del_timer(&ngx_http_plinth_usage_ev);
    }

    /*
     * A flush still unanswered when the process ends: whether PostgreSQL
     * took it is unknown, so it is neither put back (it could count twice)
     * nor kept locked (the other workers flush on at once).
     */
    if (ngx_http_plinth_usage_in_flight && ngx_http_plinth_usage_sh) {
        ngx_log_error(NGX_LOG_WARN, ngx_http_plinth_usage_log, 0,
                      "plinth: exiting with a usage flush of %ui keys "
                      "unanswered: it may be lost",
                      ngx_http_plinth_usage_in_flight_keys);
        ngx_http_plinth_usage_in_flight = 0;
        ngx_http_plinth_usage_unlock();
    }
}


/*
 * One read of an object: `bytes` of its data were sent to the client (0
 * for an empty object or a body cut off before any byte). Cheap: a lookup
 * under the zone's mutex. Callable from any request of a worker.
 */
void
ngx_http_plinth_usage_record_read(ngx_http_request_t *r, ngx_str_t *bucket,
    ngx_str_t *key, off_t bytes)
{
    u_char            name[NGX_PLINTH_USAGE_NAME_MAX];
    size_t            len;
    ngx_int_t         rc;
    ngx_slab_pool_t  *shpool;

    /* plinth_usage_flush 0: not counted at all */
    if (ngx_http_plinth_usage_sh == NULL || ngx_http_plinth_usage_every == 0
        || bucket->len == 0
        || bucket->len > 63 || key->len > NGX_PLINTH_MAX_KEY_LEN)
    {
        return;
    }

    if (bytes < 0) {
        bytes = 0;
    }

    /* bucket names hold no '/': "bucket/key" splits at its first one */
    len = bucket->len + 1 + key->len;
    ngx_memcpy(name, bucket->data, bucket->len);
    name[bucket->len] = '/';
    ngx_memcpy(name + bucket->len + 1, key->data, key->len);

    shpool = (ngx_slab_pool_t *) ngx_http_plinth_usage_zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);
    rc = ngx_http_plinth_usage_add_locked(name, len, bucket->len,
                                          (uint64_t) bytes, 1,
                                          ngx_http_plinth_usage_now_ms());
    ngx_shmtx_unlock(&shpool->mutex);

    (void) ngx_atomic_fetch_add(&ngx_http_plinth_usage_sh->recorded, 1);

    if (rc != NGX_OK) {
        /* three quarters full, or full: flush now rather than later */
        ngx_http_plinth_usage_flush(r ? r->connection->log
                                        : ngx_http_plinth_usage_log, 1);
    }
}


/*
 * Log phase: a GetObject that answered 200 or 206 is one read of its key;
 * its egress is the object bytes that reached the connection (what was
 * passed on, bounded by what the socket took after the headers).
 */
ngx_int_t
ngx_http_plinth_usage_log_phase(ngx_http_request_t *r)
{
    off_t                   sent;
    ngx_uint_t              status;
    ngx_http_plinth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (ngx_http_plinth_usage_sh == NULL || r != r->main || ctx == NULL
        || ctx->route == NULL || ctx->route->op != NGX_PLINTH_OP_GET_OBJECT)
    {
        return NGX_OK;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;
    if (status != NGX_HTTP_OK && status != NGX_HTTP_PARTIAL_CONTENT) {
        return NGX_OK;
    }

    sent = r->connection->sent - (off_t) r->header_size;
    if (sent > ctx->delivered) {
        sent = ctx->delivered;
    }

    ngx_http_plinth_usage_record_read(r, &ctx->bucket, &ctx->key, sent);

    return NGX_OK;
}


/*
 * Adds to the entry of name (creating it). NGX_OK; NGX_AGAIN: added, but
 * the zone is filling up; NGX_DECLINED: full, the read was dropped.
 */
static ngx_int_t
ngx_http_plinth_usage_add_locked(u_char *name, size_t len, size_t blen,
    uint64_t bytes, uint64_t reads, uint64_t last_ms)
{
    uint32_t                        hash;
    ngx_str_t                       s;
    ngx_slab_pool_t                *shpool;
    ngx_str_node_t                 *sn;
    ngx_http_plinth_usage_shm_t    *sh;
    ngx_http_plinth_usage_entry_t  *e;

    sh = ngx_http_plinth_usage_sh;
    shpool = (ngx_slab_pool_t *) ngx_http_plinth_usage_zone->shm.addr;

    s.data = name;
    s.len = len;
    hash = ngx_crc32_short(name, len);

    sn = ngx_str_rbtree_lookup(&sh->rbtree, &s, hash);

    if (sn) {
        e = (ngx_http_plinth_usage_entry_t *) sn;
        e->bytes += bytes;
        e->reads += reads;
        if (last_ms > e->last_ms) {
            e->last_ms = last_ms;
        }
        return NGX_OK;
    }

    if (sh->entries >= ngx_http_plinth_usage_cap) {
        (void) ngx_atomic_fetch_add(&sh->dropped, reads);
        return NGX_DECLINED;
    }

    e = ngx_slab_alloc_locked(shpool,
                              offsetof(ngx_http_plinth_usage_entry_t, data)
                              + len);
    if (e == NULL) {
        (void) ngx_atomic_fetch_add(&sh->dropped, reads);
        return NGX_DECLINED;
    }

    ngx_memcpy(e->data, name, len);
    e->sn.str.data = e->data;
    e->sn.str.len = len;
    e->sn.node.key = hash;
    e->bytes = bytes;
    e->reads = reads;
    e->last_ms = last_ms;
    (void) blen;

    ngx_rbtree_insert(&sh->rbtree, &e->sn.node);
    ngx_queue_insert_tail(&sh->queue, &e->queue);
    sh->entries++;

    return sh->entries * 4 >= ngx_http_plinth_usage_cap * 3
           ? NGX_AGAIN : NGX_OK;
}


static void
ngx_http_plinth_usage_timer(ngx_event_t *ev)
{
    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_http_plinth_usage_flush(ngx_http_plinth_usage_log, 0);

    ngx_add_timer(&ngx_http_plinth_usage_ev, ngx_http_plinth_usage_every);
}


static void
ngx_http_plinth_usage_unlock(void)
{
    (void) ngx_atomic_cmp_set(&ngx_http_plinth_usage_sh->flush_lock,
                              (ngx_atomic_uint_t) ngx_pid, 0);
}


/* Becomes the flusher if no one is, takes the zone's entries, sends them. */
static void
ngx_http_plinth_usage_flush(ngx_log_t *log, ngx_uint_t early)
{
    u_char                         *p, *names, *pb, *pk, *pn, *pr, *pl;
    size_t                          size, nsize, bsize, ksize, numsize;
    uint64_t                        now;
    ngx_uint_t                      i, n;
    ngx_queue_t                    *q;
    ngx_atomic_uint_t               holder;
    ngx_slab_pool_t                *shpool;
    const char                     *params[6];
    u_char                          rf[NGX_INT_T_LEN + 1];
    ngx_http_plinth_usage_shm_t    *sh;
    ngx_http_plinth_usage_item_t   *items;
    ngx_http_plinth_usage_entry_t  *e;
    ngx_http_plinth_usage_batch_t  *batch;

    sh = ngx_http_plinth_usage_sh;

    if (sh == NULL || ngx_http_plinth_usage_every == 0
        || ngx_http_plinth_usage_in_flight)
    {
        return;
    }

    if (!ngx_atomic_cmp_set(&sh->flush_lock, 0, (ngx_atomic_uint_t) ngx_pid))
    {
        /* a flusher that died with the lock (a crashed worker) */
        holder = sh->flush_lock;
        if (holder == 0
            || (time_t) sh->lock_time + NGX_PLINTH_USAGE_STALE >= ngx_time()
            || !ngx_atomic_cmp_set(&sh->flush_lock, holder,
                                   (ngx_atomic_uint_t) ngx_pid))
        {
            return;
        }
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "plinth: usage flush lock of process %uA taken over",
                      holder);
    }

    sh->lock_time = (ngx_atomic_uint_t) ngx_time();
    now = ngx_http_plinth_usage_now_ms();

    /* another worker flushed a moment ago: the next tick will */
    if (!early
        && now < (uint64_t) sh->last_flush + ngx_http_plinth_usage_every
                 - ngx_http_plinth_usage_every / 4)
    {
        ngx_http_plinth_usage_unlock();
        return;
    }

    shpool = (ngx_slab_pool_t *) ngx_http_plinth_usage_zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);

    n = sh->entries;

    if (n == 0) {
        ngx_shmtx_unlock(&shpool->mutex);
        sh->last_flush = (ngx_atomic_uint_t) now;
        ngx_http_plinth_usage_unlock();
        return;
    }

    nsize = 0;
    for (q = ngx_queue_head(&sh->queue); q != ngx_queue_sentinel(&sh->queue);
         q = ngx_queue_next(q))
    {
        e = ngx_queue_data(q, ngx_http_plinth_usage_entry_t, queue);
        nsize += e->sn.str.len;
    }

    batch = ngx_alloc(sizeof(ngx_http_plinth_usage_batch_t)
                      + n * sizeof(ngx_http_plinth_usage_item_t) + nsize + 1,
                      log);
    if (batch == NULL) {
        ngx_shmtx_unlock(&shpool->mutex);
        ngx_http_plinth_usage_unlock();
        return;
    }

    items = (ngx_http_plinth_usage_item_t *) (batch + 1);
    names = (u_char *) (items + n);
    batch->items = items;
    batch->names = names;
    batch->n = n;

    /* take the entries out of the zone */
    i = 0;
    p = names;
    while (!ngx_queue_empty(&sh->queue)) {
        q = ngx_queue_head(&sh->queue);
        e = ngx_queue_data(q, ngx_http_plinth_usage_entry_t, queue);

        items[i].name = p;
        items[i].len = e->sn.str.len;
        items[i].blen = (u_char *) ngx_strlchr(e->data, e->data + e->sn.str.len,
                                               '/') - e->data;
        items[i].bytes = e->bytes;
        items[i].reads = e->reads;
        items[i].last_ms = e->last_ms;
        p = ngx_cpymem(p, e->data, e->sn.str.len);
        i++;

        ngx_queue_remove(q);
        ngx_rbtree_delete(&sh->rbtree, &e->sn.node);
        ngx_slab_free_locked(shpool, e);
    }

    sh->entries = 0;
    sh->last_flush = (ngx_atomic_uint_t) now;

    ngx_shmtx_unlock(&shpool->mutex);

    /* the statement's arrays, as PostgreSQL array literals */
    bsize = 3;
    ksize = 3;
    for (i = 0; i < n; i++) {
        bsize += 2 * items[i].blen + 3;
        ksize += 2 * (items[i].len - items[i].blen - 1) + 3;
    }
    numsize = 3 + n * (NGX_INT64_LEN + 1);

    size = bsize + ksize + 3 * numsize;
    p = ngx_alloc(size, log);
    if (p == NULL) {
        ngx_free(batch);
        ngx_http_plinth_usage_unlock();
        return;
    }

    pb = p;
    pk = pb + bsize;
    pn = pk + ksize;
    pr = pn + numsize;
    pl = pr + numsize;

    params[1] = (char *) pb;
    params[2] = (char *) pk;
    params[3] = (char *) pn;
    params[4] = (char *) pr;
    params[5] = (char *) pl;

    *pb++ = '{';
    *pk++ = '{';
    *pn++ = '{';
    *pr++ = '{';
    *pl++ = '{';

    for (i = 0; i < n; i++) {
        if (i) {
            *pb++ = ',';
            *pk++ = ',';
            *pn++ = ',';
            *pr++ = ',';
            *pl++ = ',';
        }
        pb = ngx_plinth_pg_array_elem(pb, items[i].name, items[i].blen);
        pk = ngx_plinth_pg_array_elem(pk, items[i].name + items[i].blen + 1,
                                      items[i].len - items[i].blen - 1);
        pn = ngx_sprintf(pn, "%uL", items[i].bytes);
        pr = ngx_sprintf(pr, "%uL", items[i].reads);
        pl = ngx_sprintf(pl, "%uL", items[i].last_ms);
    }

    *pb++ = '}'; *pb = '\0';
    *pk++ = '}'; *pk = '\0';
    *pn++ = '}'; *pn = '\0';
    *pr++ = '}'; *pr = '\0';
    *pl++ = '}'; *pl = '\0';

    *ngx_sprintf(rf, "%ui", ngx_http_plinth_usage_rf) = '\0';
    params[0] = (char *) rf;

    /* set first: whenever the answer comes, it clears them */
    ngx_http_plinth_usage_in_flight = 1;
    ngx_http_plinth_usage_in_flight_keys = n;

    /* the pool copies the parameters */
    if (ngx_plinth_pg_background(log, NGX_PLINTH_SQL_USAGE_FLUSH, 6, params,
                                 ngx_http_plinth_usage_done, batch)
        != NGX_OK)
    {
        ngx_free(p);
        ngx_http_plinth_usage_done(NULL, batch, NULL, NGX_ERROR);
        return;
    }

    ngx_free(p);
}


/* The batch was written, or not: then its counts go back into the zone. */
static void
ngx_http_plinth_usage_done(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_uint_t                      i, lost;
    ngx_slab_pool_t                *shpool;
    ngx_http_plinth_usage_shm_t    *sh;
    ngx_http_plinth_usage_item_t   *it;
    ngx_http_plinth_usage_batch_t  *batch = data;

    sh = ngx_http_plinth_usage_sh;
    ngx_http_plinth_usage_in_flight = 0;

    if (rc == NGX_OK && PQresultStatus(res) == PGRES_TUPLES_OK) {
        (void) ngx_atomic_fetch_add(&sh->flushes, 1);
        (void) ngx_atomic_fetch_add(&sh->flushed_keys, batch->n);

    } else {
        (void) ngx_atomic_fetch_add(&sh->flush_failures, 1);

        ngx_log_error(NGX_LOG_WARN, ngx_http_plinth_usage_log, 0,
                      "plinth: usage flush of %ui keys failed%s%s, kept "
                      "for the next one", batch->n,
                      res ? ": " : "",
                      res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                          : "");

        shpool = (ngx_slab_pool_t *) ngx_http_plinth_usage_zone->shm.addr;
        lost = 0;

        ngx_shmtx_lock(&shpool->mutex);
        for (i = 0; i < batch->n; i++) {
            it = &batch->items[i];
            if (ngx_http_plinth_usage_add_locked(it->name, it->len, it->blen,
                                                 it->bytes, it->reads,
                                                 it->last_ms)
                == NGX_DECLINED)
            {
                lost++;
            }
        }
        ngx_shmtx_unlock(&shpool->mutex);

        if (lost) {
            ngx_log_error(NGX_LOG_WARN, ngx_http_plinth_usage_log, 0,
                          "plinth: %ui keys of a failed usage flush did not "
                          "fit back and were dropped", lost);
        }
    }

    ngx_free(batch);
    ngx_http_plinth_usage_unlock();
}


/* /metrics: the usage counters */
u_char *
ngx_http_plinth_usage_metrics(u_char *p, u_char *end)
{
    ngx_http_plinth_usage_shm_t  *sh;

    sh = ngx_http_plinth_usage_sh;
    if (sh == NULL) {
        return p;
    }

    return ngx_slprintf(p, end,
        "# HELP plinth_usage_reads_total Object reads counted for access "
        "patterns and egress.\n"
        "# TYPE plinth_usage_reads_total counter\n"
        "plinth_usage_reads_total %uA\n"
        "# HELP plinth_usage_flushes_total Batches of usage written to "
        "PostgreSQL.\n"
        "# TYPE plinth_usage_flushes_total counter\n"
        "plinth_usage_flushes_total %uA\n"
        "# HELP plinth_usage_flush_failures_total Usage batches PostgreSQL "
        "did not take (kept for the next flush).\n"
        "# TYPE plinth_usage_flush_failures_total counter\n"
        "plinth_usage_flush_failures_total %uA\n"
        "# HELP plinth_usage_flushed_keys_total Object keys written by usage "
        "flushes.\n"
        "# TYPE plinth_usage_flushed_keys_total counter\n"
        "plinth_usage_flushed_keys_total %uA\n"
        "# HELP plinth_usage_dropped_reads_total Reads not counted: the usage "
        "zone was full.\n"
        "# TYPE plinth_usage_dropped_reads_total counter\n"
        "plinth_usage_dropped_reads_total %uA\n"
        "# HELP plinth_usage_pending_keys Object keys counted and not yet "
        "flushed.\n"
        "# TYPE plinth_usage_pending_keys gauge\n"
        "plinth_usage_pending_keys %ui\n",
        sh->recorded, sh->flushes, sh->flush_failures, sh->flushed_keys,
        sh->dropped, sh->entries);
}
