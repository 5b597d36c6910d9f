/*
 * GET and HEAD lookups together (plinth_get_coalesce N).
 *
 * A GET or HEAD without a version id asks PostgreSQL for one row
 * (NGX_PLINTH_SQL_GET_CURRENT). Most of what PostgreSQL spends on that is
 * not the three index lookups but the statement around them: the
 * protocol, executor start-up and a transaction (perf, 4 KiB GETs with 8
 * clients: PostgreSQL took about a third of all the CPU a GET costs).
 * So a worker runs at most N such lookups at once; the lookups that
 * arrive meanwhile wait in its queue, and when a statement ends (or the
 * event loop has read every request of this turn) the waiting ones go
 * together, up to NGX_PLINTH_GETQ_MAX in one statement
 * (NGX_PLINTH_SQL_GET_CURRENT_N: the same columns, one row per lookup in
 * order). One lookup alone is sent as before. Nothing waits for others to
 * come: a lookup that finds fewer than N statements running goes at the
 * end of the event loop's turn, so an idle gateway answers as fast as
 * before, and a busy one sends fewer, larger statements.
 *
 * Each request gets its own one-row result (PQcopyResult, PQsetvalue),
 * shaped as the one-key statement's: no row when the bucket does not
 * exist. The statements belong to no request (ngx_plinth_pg_background):
 * a request that goes away while its lookup waits or runs is dropped
 * from it by its cleanup, and the others are answered.
 */

#include "ngx_plinth.h"


#define NGX_PLINTH_GETQ_MAX  64


typedef struct ngx_http_plinth_getq_group_s  ngx_http_plinth_getq_group_t;


typedef struct {
    ngx_queue_t                    queue;     /* waiting, while queued */
    ngx_http_request_t            *r;
    ngx_http_cleanup_t            *cln;
    ngx_plinth_pg_handler_pt       handler;
    ngx_http_plinth_getq_group_t  *group;     /* the statement it is in */
    ngx_uint_t                     index;     /* its place in it */
    unsigned                       queued:1;
} ngx_http_plinth_getq_entry_t;


struct ngx_http_plinth_getq_group_s {
    ngx_uint_t                     n;
    /* NULL: that request went away */
    ngx_http_plinth_getq_entry_t  *entries[NGX_PLINTH_GETQ_MAX];
};


static void ngx_http_plinth_getq_flush(ngx_event_t *ev);
static void ngx_http_plinth_getq_send(ngx_log_t *log);
static void ngx_http_plinth_getq_done(ngx_http_request_t *unused,
    void *data, PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_getq_answer(ngx_http_plinth_getq_entry_t *e,
    PGresult *res, ngx_int_t rc);
static ngx_int_t ngx_http_plinth_getq_rows(PGresult *res, ngx_uint_t n,
    int *rows);
static PGresult *ngx_http_plinth_getq_row(PGresult *res, int row);
static void ngx_http_plinth_getq_cleanup(void *data);


static ngx_queue_t   ngx_http_plinth_getq_waiting;
static ngx_uint_t    ngx_http_plinth_getq_nwaiting;
static ngx_uint_t    ngx_http_plinth_getq_inflight;
static ngx_event_t   ngx_http_plinth_getq_ev;
static ngx_uint_t    ngx_http_plinth_getq_ready;


/*
 * r's lookup (ctx->bucket, ctx->key, the current version), answered by
 * handler(r, NULL, res, rc) as ngx_plinth_pg_query() would answer it.
 */
ngx_int_t
ngx_http_plinth_get_lookup(ngx_http_request_t *r,
    ngx_plinth_pg_handler_pt handler)
{
    ngx_http_cleanup_t            *cln;
    ngx_http_plinth_getq_entry_t  *e;

    e = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_getq_entry_t));
    cln = ngx_http_cleanup_add(r, 0);
    if (e == NULL || cln == NULL) {
        return NGX_ERROR;
    }

    if (!ngx_http_plinth_getq_ready) {
        ngx_queue_init(&ngx_http_plinth_getq_waiting);
        ngx_http_plinth_getq_ev.handler = ngx_http_plinth_getq_flush;
        ngx_http_plinth_getq_ev.log = ngx_cycle->log;
        ngx_http_plinth_getq_ready = 1;
    }

    cln->handler = ngx_http_plinth_getq_cleanup;
    cln->data = e;

    e->r = r;
    e->cln = cln;
    e->handler = handler;
    e->queued = 1;

    ngx_queue_insert_tail(&ngx_http_plinth_getq_waiting, &e->queue);
    ngx_http_plinth_getq_nwaiting++;

    /* sent at the end of this turn of the event loop, with the lookups
     * of the other requests read in it */
    if (!ngx_http_plinth_getq_ev.posted) {
        ngx_post_event(&ngx_http_plinth_getq_ev, &ngx_posted_events);
    }

    return NGX_OK;
}


static void
ngx_http_plinth_getq_flush(ngx_event_t *ev)
{
    ngx_http_plinth_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_plinth_module);

    while (ngx_http_plinth_getq_nwaiting
           && ngx_http_plinth_getq_inflight < pmcf->get_coalesce)
    {
        ngx_http_plinth_getq_send(ev->log);
    }
}


/* The waiting lookups, up to NGX_PLINTH_GETQ_MAX, in one statement. */
static void
ngx_http_plinth_getq_send(ngx_log_t *log)
{
    u_char                        *buf, *p, *q;
    size_t                         bsize, ksize;
    ngx_int_t                      rc;
    ngx_uint_t                     i, stmt;
    ngx_queue_t                   *h;
    const char                    *params[2];
    ngx_http_plinth_ctx_t         *ctx;
    ngx_http_plinth_getq_entry_t  *e;
    ngx_http_plinth_getq_group_t  *g;

    g = ngx_alloc(sizeof(ngx_http_plinth_getq_group_t), log);
    if (g == NULL) {
        /* no memory: the waiting lookups fail (500), none hangs */
        while (!ngx_queue_empty(&ngx_http_plinth_getq_waiting)) {
            h = ngx_queue_head(&ngx_http_plinth_getq_waiting);
            e = ngx_queue_data(h, ngx_http_plinth_getq_entry_t, queue);
            ngx_queue_remove(h);
            ngx_http_plinth_getq_nwaiting--;
            e->queued = 0;
            ngx_http_plinth_getq_answer(e, NULL, NGX_ERROR);
        }
        return;
    }

    g->n = 0;
    bsize = 3;
    ksize = 3;

    while (!ngx_queue_empty(&ngx_http_plinth_getq_waiting)
           && g->n < NGX_PLINTH_GETQ_MAX)
    {
        h = ngx_queue_head(&ngx_http_plinth_getq_waiting);
        e = ngx_queue_data(h, ngx_http_plinth_getq_entry_t, queue);
        ngx_queue_remove(h);
        ngx_http_plinth_getq_nwaiting--;

        e->queued = 0;
        e->group = g;
        e->index = g->n;
        g->entries[g->n++] = e;

        ctx = ngx_http_get_module_ctx(e->r, ngx_http_plinth_module);
        bsize += 2 * ctx->bucket.len + 3;
        ksize += 2 * ctx->key.len + 3;
    }

    ngx_http_plinth_getq_inflight++;

    buf = ngx_alloc(bsize + ksize, log);
    if (buf == NULL) {
        ngx_http_plinth_getq_done(NULL, g, NULL, NGX_ERROR);
        return;
    }

    p = buf;
    q = buf + bsize;
    params[0] = (char *) p;
    params[1] = (char *) q;

    if (g->n == 1) {
        /* alone: the one-key statement, its bucket and key */
        ctx = ngx_http_get_module_ctx(g->entries[0]->r,
                                      ngx_http_plinth_module);
        *ngx_cpymem(p, ctx->bucket.data, ctx->bucket.len) = '\0';
        *ngx_cpymem(q, ctx->key.data, ctx->key.len) = '\0';
        stmt = NGX_PLINTH_SQL_GET_CURRENT;

    } else {
        /* arrays of the buckets and of the keys, in the lookups' order */
        *p++ = '{';
        *q++ = '{';

        for (i = 0; i < g->n; i++) {
            ctx = ngx_http_get_module_ctx(g->entries[i]->r,
                                          ngx_http_plinth_module);
            if (i) {
                *p++ = ',';
                *q++ = ',';
            }
            p = ngx_plinth_pg_array_elem(p, ctx->bucket.data, ctx->bucket.len);
            q = ngx_plinth_pg_array_elem(q, ctx->key.data, ctx->key.len);
        }

        *p++ = '}'; *p = '\0';
        *q++ = '}'; *q = '\0';
        stmt = NGX_PLINTH_SQL_GET_CURRENT_N;
    }

    rc = ngx_plinth_pg_background(log, stmt, 2, params,
                                  ngx_http_plinth_getq_done, g);
    ngx_free(buf);

    if (rc != NGX_OK) {
        ngx_http_plinth_getq_done(NULL, g, NULL, NGX_ERROR);
        return;
    }

    ngx_http_plinth_metrics_get_lookups(g->n);
}


static void
ngx_http_plinth_getq_done(ngx_http_request_t *unused, void *data,
    PGresult *res, ngx_int_t rc)
{
    ngx_http_plinth_getq_group_t *g = data;

    int                            multi, rows[NGX_PLINTH_GETQ_MAX];
    PGresult                      *one;
    ngx_uint_t                     i;
    ngx_http_plinth_getq_entry_t  *e;

    ngx_http_plinth_getq_inflight--;

    /* the next statement first: PostgreSQL works on it while these
     * requests are answered */
    if (ngx_http_plinth_getq_nwaiting) {
        ngx_http_plinth_getq_flush(&ngx_http_plinth_getq_ev);
    }

    multi = (g->n > 1);

    if (multi && rc == NGX_OK && PQresultStatus(res) == PGRES_TUPLES_OK
        && ngx_http_plinth_getq_rows(res, g->n, rows) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "plinth: %d rows do not answer %ui GET lookups",
                      PQntuples(res), g->n);
        rc = NGX_ERROR;
        res = NULL;
    }

    for (i = 0; i < g->n; i++) {
        e = g->entries[i];
        if (e == NULL) {
            continue;
        }

        if (!multi || rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK)
        {
            ngx_http_plinth_getq_answer(e, res, rc);
            continue;
        }

        one = ngx_http_plinth_getq_row(res, rows[i]);
        if (one == NULL) {
            ngx_http_plinth_getq_answer(e, NULL, NGX_ERROR);
        } else {
            ngx_http_plinth_getq_answer(e, one, NGX_OK);
            PQclear(one);
        }
    }

    ngx_free(g);
}


/* e's request gets its answer, as the pool would give it (its cleanup
 * has nothing left to do). */
static void
ngx_http_plinth_getq_answer(ngx_http_plinth_getq_entry_t *e, PGresult *res,
    ngx_int_t rc)
{
    ngx_connection_t  *c;

    c = e->r->connection;
    e->cln->handler = NULL;
    e->group = NULL;

    e->handler(e->r, NULL, res, rc);

    ngx_http_run_posted_requests(c);
}


/* rows[i]: the row of lookup i (idx i + 1), each lookup's exactly once. */
static ngx_int_t
ngx_http_plinth_getq_rows(PGresult *res, ngx_uint_t n, int *rows)
{
    int         row, col;
    ngx_int_t   idx;
    ngx_uint_t  i;

    col = PQfnumber(res, "idx");
    if (col < 0 || PQntuples(res) != (int) n) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        rows[i] = -1;
    }

    for (row = 0; row < (int) n; row++) {
        idx = ngx_atoi((u_char *) PQgetvalue(res, row, col),
                       PQgetlength(res, row, col));
        if (idx < 1 || idx > (ngx_int_t) n || rows[idx - 1] != -1) {
            return NGX_ERROR;
        }
        rows[idx - 1] = row;
    }

    return NGX_OK;
}


/* Row `row` of a many-key answer as the one-key statement answers it. */
static PGresult *
ngx_http_plinth_getq_row(PGresult *res, int row)
{
    int        col, n, found;
    PGresult  *one;

    one = PQcopyResult(res, PG_COPYRES_ATTRS);
    if (one == NULL) {
        return NULL;
    }

    found = PQfnumber(res, "found");
    if (found < 0 || PQgetvalue(res, row, found)[0] != 't') {
        /* no such bucket: no row */
        return one;
    }

    n = PQnfields(res);

    for (col = 0; col < n; col++) {
        if (!PQsetvalue(one, 0, col,
                        PQgetisnull(res, row, col)
                        ? NULL : PQgetvalue(res, row, col),
                        PQgetisnull(res, row, col)
                        ? -1 : PQgetlength(res, row, col)))
        {
            PQclear(one);
            return NULL;
        }
    }

    return one;
}


static void
ngx_http_plinth_getq_cleanup(void *data)
{
    ngx_http_plinth_getq_entry_t *e = data;

    if (e->queued) {
        ngx_queue_remove(&e->queue);
        e->queued = 0;
        ngx_http_plinth_getq_nwaiting--;

    } else if (e->group) {
        e->group->entries[e->index] = NULL;
        e->group = NULL;
    }
}
