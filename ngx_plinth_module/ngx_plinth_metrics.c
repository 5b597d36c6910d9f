/*
 * Prometheus metrics of the gateway, in shared memory.
 *
 * Every worker adds to the same counters (atomic adds in one shared zone,
 * "plinth_metrics"), so a scrape of any worker shows the whole gateway;
 * nginx keeps a zone of the same name and size across `nginx -s reload`,
 * so counters survive reloads (they restart with the master process, as
 * Prometheus expects of a counter). Recorded in the log phase, once per
 * client request: its S3 operation and status, its duration (histogram),
 * the bytes it read and wrote. Data-node failures (a replica answered an
 * error, was unreachable, or was cut off) are counted per node where they
 * happen. The PostgreSQL pool's figures are per worker: each worker
 * publishes its own into its slot after every request, and the scrape
 * adds the slots up.
 *
 * The zone has no layout version, on purpose: nginx hands a reload the
 * old zone only when its name and size are unchanged, and a reload cannot
 * bring a new layout of the same size, because the master re-opens the
 * module while the old cycle still holds it (dlopen returns the loaded
 * copy: new module code needs a restart or a binary upgrade, whose new
 * master makes its zones afresh). A size change (a new operation, node or
 * status slot) gives a new, zeroed zone.
 *
 * Served by `plinth_metrics;` in a location, in the text exposition
 * format 0.0.4 (t/44-metrics.t checks it with promtool).
 */

#include "ngx_plinth.h"


#define NGX_PLINTH_METRICS_NODES    256   /* node ids 1..255 */
#define NGX_PLINTH_METRICS_WORKERS  64
#define NGX_PLINTH_METRICS_BUCKETS  12

static const ngx_uint_t  ngx_http_plinth_statuses[] = {
    200, 204, 206, 304, 400, 403, 404, 405, 409, 411, 412, 416, 500, 501,
    503, 0    /* 0: any other */
};

#define NGX_PLINTH_METRICS_STATUSES                                          \
    (sizeof(ngx_http_plinth_statuses) / sizeof(ngx_http_plinth_statuses[0]))

/* histogram bounds, in milliseconds */
static const ngx_msec_t  ngx_http_plinth_bounds[NGX_PLINTH_METRICS_BUCKETS] = {
    1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000
};


typedef struct {
    ngx_atomic_t   ready;
    ngx_atomic_t   pid;
    ngx_atomic_t   connections;
    ngx_atomic_t   ready_connections;
    ngx_atomic_t   busy;
    ngx_atomic_t   queued;
    ngx_atomic_t   reconnects;
    ngx_atomic_t   failed;
    ngx_atomic_t   wait_ms;        /* total time jobs waited */
    ngx_atomic_t   waited;         /* jobs that ran */
} ngx_http_plinth_worker_metrics_t;


typedef struct {
    ngx_atomic_t   requests[NGX_PLINTH_OP_MAX][NGX_PLINTH_METRICS_STATUSES];
    ngx_atomic_t   buckets[NGX_PLINTH_OP_MAX][NGX_PLINTH_METRICS_BUCKETS];
    ngx_atomic_t   count[NGX_PLINTH_OP_MAX];
    ngx_atomic_t   sum_ms[NGX_PLINTH_OP_MAX];
    ngx_atomic_t   bytes_in[NGX_PLINTH_OP_MAX];
    ngx_atomic_t   bytes_out[NGX_PLINTH_OP_MAX];
    ngx_atomic_t   node_errors[NGX_PLINTH_METRICS_NODES];
    ngx_atomic_t   get_lookups;             /* GET/HEAD lookups sent */
    ngx_atomic_t   get_lookup_statements;   /* ... in this many statements */
    ngx_http_plinth_worker_metrics_t  workers[NGX_PLINTH_METRICS_WORKERS];
} ngx_http_plinth_metrics_t;


static ngx_int_t ngx_http_plinth_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_plinth_metrics_worker(void);


static ngx_shm_zone_t             *ngx_http_plinth_metrics_zone;
static ngx_http_plinth_metrics_t  *ngx_http_plinth_metrics;


/* postconfiguration: the zone (one for every gateway of this master) */
ngx_int_t
ngx_http_plinth_metrics_conf(ngx_conf_t *cf)
{
    ngx_str_t  name = ngx_string("plinth_metrics");

    ngx_http_plinth_metrics_zone = ngx_shared_memory_add(cf, &name,
        ngx_align(sizeof(ngx_http_plinth_metrics_t), ngx_pagesize)
        + 8 * ngx_pagesize, &ngx_http_plinth_module);

    if (ngx_http_plinth_metrics_zone == NULL) {
        return NGX_ERROR;
    }

    ngx_http_plinth_metrics_zone->init = ngx_http_plinth_metrics_init_zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_plinth_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t  *shpool;

    if (data) {
        /* a reload: the old cycle's counters go on */
        shm_zone->data = data;
        ngx_http_plinth_metrics = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        ngx_http_plinth_metrics = shpool->data;
        return NGX_OK;
    }

    ngx_http_plinth_metrics = ngx_slab_calloc(shpool,
                                   sizeof(ngx_http_plinth_metrics_t));
    if (ngx_http_plinth_metrics == NULL) {
        return NGX_ERROR;
    }

    shpool->data = ngx_http_plinth_metrics;
    shm_zone->data = ngx_http_plinth_metrics;

    return NGX_OK;
}


/* log phase: one client request is done */
ngx_int_t
ngx_http_plinth_metrics_log(ngx_http_request_t *r)
{
    ngx_uint_t                  op, s, b, status;
    ngx_msec_t                  ms;
    ngx_time_t                 *tp;
    ngx_http_plinth_ctx_t      *ctx;
    ngx_http_plinth_metrics_t  *m;

    m = ngx_http_plinth_metrics;
    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (m == NULL || r != r->main || ctx == NULL || ctx->route == NULL) {
        return NGX_OK;
    }

    op = ctx->route->op;
    if (op >= NGX_PLINTH_OP_MAX) {
        return NGX_OK;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;

    for (s = 0; ngx_http_plinth_statuses[s]; s++) {
        if (ngx_http_plinth_statuses[s] == status) {
            break;
        }
    }

    tp = ngx_timeofday();
    ms = (ngx_msec_t) ((tp->sec - r->start_sec) * 1000
                       + (tp->msec - r->start_msec));

    for (b = 0; b < NGX_PLINTH_METRICS_BUCKETS; b++) {
        if (ms <= ngx_http_plinth_bounds[b]) {
            (void) ngx_atomic_fetch_add(&m->buckets[op][b], 1);
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&m->requests[op][s], 1);
    (void) ngx_atomic_fetch_add(&m->count[op], 1);
    (void) ngx_atomic_fetch_add(&m->sum_ms[op], ms);
    (void) ngx_atomic_fetch_add(&m->bytes_in[op], r->request_length);
    (void) ngx_atomic_fetch_add(&m->bytes_out[op], r->connection->sent);

    ngx_http_plinth_metrics_worker();

    return NGX_OK;
}


/* a data node failed a request (error answer, unreachable, cut off) */
void
ngx_http_plinth_metrics_node_error(uint32_t node)
{
    if (ngx_http_plinth_metrics && node < NGX_PLINTH_METRICS_NODES) {
        (void) ngx_atomic_fetch_add(
                   &ngx_http_plinth_metrics->node_errors[node], 1);
    }
}


/* n GET/HEAD lookups sent in one statement (ngx_plinth_getq.c) */
void
ngx_http_plinth_metrics_get_lookups(ngx_uint_t n)
{
    if (ngx_http_plinth_metrics) {
        (void) ngx_atomic_fetch_add(&ngx_http_plinth_metrics->get_lookups, n);
        (void) ngx_atomic_fetch_add(
                   &ngx_http_plinth_metrics->get_lookup_statements, 1);
    }
}


/* this worker's pool figures, into its slot */
static void
ngx_http_plinth_metrics_worker(void)
{
    ngx_plinth_pg_stats_t              st;
    ngx_http_plinth_worker_metrics_t  *w;

    if (ngx_worker >= NGX_PLINTH_METRICS_WORKERS) {
        return;
    }

    ngx_plinth_pg_stats(&st);

    w = &ngx_http_plinth_metrics->workers[ngx_worker];
    w->pid = ngx_pid;
    w->connections = st.connections;
    w->ready_connections = st.ready;
    w->busy = st.busy;
    w->queued = st.queued;
    w->reconnects = st.reconnects;
    w->failed = st.failed;
    w->wait_ms = st.wait_ms;
    w->waited = st.waited;
    w->ready = 1;
}


static u_char *
ngx_http_plinth_metrics_head(u_char *p, u_char *end, const char *name,
    const char *type, const char *help)
{
    return ngx_slprintf(p, end, "# HELP %s %s\n# TYPE %s %s\n",
                        name, help, name, type);
}


ngx_int_t
ngx_http_plinth_metrics_handler(ngx_http_request_t *r)
{
    u_char                            *p, *end;
    size_t                             size;
    ngx_int_t                          rc;
    ngx_buf_t                         *b;
    ngx_uint_t                         op, s, i, cum;
    ngx_chain_t                        out;
    const char                        *name;
    ngx_atomic_uint_t                  conns, ready, busy, queued, recon,
                                       failed, wait_ms, waited;
    ngx_http_plinth_metrics_t         *m;
    ngx_http_plinth_worker_metrics_t  *w;

    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    m = ngx_http_plinth_metrics;
    if (m == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    ngx_http_plinth_metrics_worker();

    size = 16384 + NGX_PLINTH_OP_MAX
                   * (NGX_PLINTH_METRICS_STATUSES + NGX_PLINTH_METRICS_BUCKETS
                      + 8) * 160
           + NGX_PLINTH_METRICS_NODES * 96;

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->pos;
    end = b->end;

    p = ngx_http_plinth_metrics_head(p, end, "plinth_http_requests_total",
            "counter", "S3 requests answered, by operation and status.");
    for (op = 1; op < NGX_PLINTH_OP_MAX; op++) {
        name = ngx_http_plinth_op_name(op);
        for (s = 0; s < NGX_PLINTH_METRICS_STATUSES; s++) {
            if (m->requests[op][s] == 0) {
                continue;
            }
            if (ngx_http_plinth_statuses[s]) {
                p = ngx_slprintf(p, end, "plinth_http_requests_total"
                                 "{operation=\"%s\",status=\"%ui\"} %uA\n",
                                 name, ngx_http_plinth_statuses[s],
                                 m->requests[op][s]);
            } else {
                p = ngx_slprintf(p, end, "plinth_http_requests_total"
                                 "{operation=\"%s\",status=\"other\"} %uA\n",
                                 name, m->requests[op][s]);
            }
        }
    }

    p = ngx_http_plinth_metrics_head(p, end,
            "plinth_http_request_duration_seconds", "histogram",
            "Time from a request's first byte to its last, by operation.");
    for (op = 1; op < NGX_PLINTH_OP_MAX; op++) {
        if (m->count[op] == 0) {
            continue;
        }
        name = ngx_http_plinth_op_name(op);
        cum = 0;
        for (i = 0; i < NGX_PLINTH_METRICS_BUCKETS; i++) {
            cum += m->buckets[op][i];
            p = ngx_slprintf(p, end, "plinth_http_request_duration_seconds"
                             "_bucket{operation=\"%s\",le=\"%ui.%03ui\"} "
                             "%ui\n", name,
                             ngx_http_plinth_bounds[i] / 1000,
                             ngx_http_plinth_bounds[i] % 1000, cum);
        }
        p = ngx_slprintf(p, end, "plinth_http_request_duration_seconds_bucket"
                         "{operation=\"%s\",le=\"+Inf\"} %uA\n"
                         "plinth_http_request_duration_seconds_sum"
                         "{operation=\"%s\"} %uA.%03uA\n"
                         "plinth_http_request_duration_seconds_count"
                         "{operation=\"%s\"} %uA\n",
                         name, m->count[op],
                         name, m->sum_ms[op] / 1000, m->sum_ms[op] % 1000,
                         name, m->count[op]);
    }

    p = ngx_http_plinth_metrics_head(p, end, "plinth_http_received_bytes_total",
            "counter", "Bytes of requests (headers and bodies), by operation.");
    for (op = 1; op < NGX_PLINTH_OP_MAX; op++) {
        if (m->count[op]) {
            p = ngx_slprintf(p, end, "plinth_http_received_bytes_total"
                             "{operation=\"%s\"} %uA\n",
                             ngx_http_plinth_op_name(op), m->bytes_in[op]);
        }
    }

    p = ngx_http_plinth_metrics_head(p, end, "plinth_http_sent_bytes_total",
            "counter", "Bytes of responses (headers and bodies), by operation.");
    for (op = 1; op < NGX_PLINTH_OP_MAX; op++) {
        if (m->count[op]) {
            p = ngx_slprintf(p, end, "plinth_http_sent_bytes_total"
                             "{operation=\"%s\"} %uA\n",
                             ngx_http_plinth_op_name(op), m->bytes_out[op]);
        }
    }

    p = ngx_http_plinth_metrics_head(p, end,
            "plinth_upstream_errors_total", "counter",
            "Data-node requests that failed: an error answer, no connection, "
            "a timeout or a cut-off body, by node.");
    for (i = 1; i < NGX_PLINTH_METRICS_NODES; i++) {
        if (m->node_errors[i]) {
            p = ngx_slprintf(p, end, "plinth_upstream_errors_total"
                             "{node=\"%ui\"} %uA\n", i, m->node_errors[i]);
        }
    }

    p = ngx_http_plinth_metrics_head(p, end, "plinth_get_lookups_total",
            "counter", "GET and HEAD lookups of a current version sent to "
            "PostgreSQL (plinth_get_coalesce).");
    p = ngx_slprintf(p, end, "plinth_get_lookups_total %uA\n",
                     m->get_lookups);
    p = ngx_http_plinth_metrics_head(p, end,
            "plinth_get_lookup_statements_total", "counter",
            "The statements those lookups went in: fewer than the lookups "
            "when they were sent together.");
    p = ngx_slprintf(p, end, "plinth_get_lookup_statements_total %uA\n",
                     m->get_lookup_statements);

    conns = ready = busy = queued = recon = failed = wait_ms = waited = 0;
    for (i = 0; i < NGX_PLINTH_METRICS_WORKERS; i++) {
        w = &m->workers[i];
        if (!w->ready) {
            continue;
        }
        conns += w->connections;
        ready += w->ready_connections;
        busy += w->busy;
        queued += w->queued;
        recon += w->reconnects;
        failed += w->failed;
        wait_ms += w->wait_ms;
        waited += w->waited;
    }

    p = ngx_http_plinth_metrics_head(p, end, "plinth_pg_pool_connections",
            "gauge", "PostgreSQL connections of the gateway's workers, by "
            "state (configured, ready, busy), as each worker last saw them.");
    p = ngx_slprintf(p, end,
                     "plinth_pg_pool_connections{state=\"configured\"} %uA\n"
                     "plinth_pg_pool_connections{state=\"ready\"} %uA\n"
                     "plinth_pg_pool_connections{state=\"busy\"} %uA\n",
                     conns, ready, busy);
    p = ngx_http_plinth_metrics_head(p, end, "plinth_pg_pool_queued", "gauge",
            "Queries waiting for a PostgreSQL connection.");
    p = ngx_slprintf(p, end, "plinth_pg_pool_queued %uA\n", queued);
    p = ngx_http_plinth_metrics_head(p, end, "plinth_pg_pool_wait_seconds",
            "summary", "Time queries waited for a PostgreSQL connection.");
    p = ngx_slprintf(p, end, "plinth_pg_pool_wait_seconds_sum %uA.%03uA\n"
                     "plinth_pg_pool_wait_seconds_count %uA\n",
                     wait_ms / 1000, wait_ms % 1000, waited);
    p = ngx_http_plinth_metrics_head(p, end, "plinth_pg_pool_failed_total",
            "counter", "Queries that could not run (PostgreSQL down, queue "
            "full or wait too long).");
    p = ngx_slprintf(p, end, "plinth_pg_pool_failed_total %uA\n", failed);
    p = ngx_http_plinth_metrics_head(p, end, "plinth_pg_pool_reconnects_total",
            "counter", "PostgreSQL connections re-established.");
    p = ngx_slprintf(p, end, "plinth_pg_pool_reconnects_total %uA\n", recon);

    p = ngx_http_plinth_usage_metrics(p, end);

    b->last = p;
    b->last_buf = (r == r->main);
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
