
/*
 * Plinth PostgreSQL pool: non-blocking libpq connections on nginx's event
 * loop, one pool per worker process (the contract is in ngx_plinth_pg.h).
 *
 * A connection goes CLOSED -> CONNECTING -> PREPARING -> IDLE <-> BUSY and
 * back to CLOSED when it breaks or a timer expires; a CLOSED connection
 * waits on a cancelable backoff timer (reconnect_min, doubling up to
 * reconnect_max, reset once the connection is ready again). A connection
 * is in pool->idle exactly while it is IDLE.
 *
 * libpq owns each socket: the ngx_connection_t around it is released with
 * ngx_free_connection() and the descriptor is closed by PQfinish(), never
 * by ngx_close_connection(). Reads are level-triggered, because
 * PQconsumeInput() may leave bytes in the kernel and an edge-triggered
 * event would not fire for them again; the write event is active only
 * while libpq waits to connect or PQflush() returns 1.
 *
 * Answers other than a result (NGX_ERROR, NGX_BUSY) go through the job's
 * own posted event: the handler never runs inside ngx_plinth_pg_query()
 * nor in the middle of the pool's bookkeeping.
 *
 * Limits: no PQcancel() (it blocks), so a query that times out costs its
 * connection, and the statement runs on in the server until it notices.
 * PQconnectStart() resolves host names with a blocking getaddrinfo(), and
 * libpq ignores connect_timeout in PQconnectPoll(): conninfo should give
 * hostaddr=, and query_timeout bounds the connect and prepare phase too.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_plinth_pg.h"


typedef enum {
    NGX_PLINTH_PG_CLOSED = 0,
    NGX_PLINTH_PG_CONNECTING,
    NGX_PLINTH_PG_PREPARING,
    NGX_PLINTH_PG_IDLE,
    NGX_PLINTH_PG_BUSY
} ngx_plinth_pg_state_e;


typedef struct ngx_plinth_pg_pool_s  ngx_plinth_pg_pool_t;
typedef struct ngx_plinth_pg_job_s   ngx_plinth_pg_job_t;


typedef struct {
    ngx_queue_t                 queue;      /* in pool->idle while IDLE */
    ngx_plinth_pg_pool_t       *pool;
    ngx_uint_t                  index;
    ngx_plinth_pg_state_e       state;

    PGconn                     *conn;
    ngx_connection_t           *c;          /* wraps PQsocket(conn) */
    ngx_file_uniq_t             uniq;       /* inode of that socket */

    ngx_uint_t                  stmt;       /* preparing, or running */
    ngx_plinth_pg_job_t        *job;        /* NULL if idle or detached */
    PGresult                   *res;        /* last result so far */

    ngx_event_t                 timer;      /* connect+prepare, query */
    ngx_event_t                 retry;      /* reconnect backoff */
    ngx_msec_t                  backoff;

    unsigned                    was_ready:1;
} ngx_plinth_pg_conn_t;


struct ngx_plinth_pg_job_s {
    ngx_queue_t                 queue;      /* in pool->jobs while queued */
    ngx_http_request_t         *r;
    ngx_plinth_pg_handler_pt    handler;
    void                       *data;
    ngx_uint_t                  stmt;
    ngx_uint_t                  nparams;
    char                      **values;
    ngx_plinth_pg_conn_t       *pc;         /* running on */
    ngx_http_cleanup_t         *cln;        /* NULL: a background job */
    ngx_pool_t                 *mem;        /* a background job's memory */
    ngx_event_t                 ev;         /* queue deadline, late answer */
    ngx_int_t                   rc;         /* the late answer */
    ngx_msec_t                  since;      /* queued at */
    unsigned                    queued:1;
};


struct ngx_plinth_pg_pool_s {
    ngx_plinth_pg_conf_t       *conf;
    ngx_pool_t                 *pool;
    ngx_log_t                  *log;
    char                       *conninfo;
    ngx_plinth_pg_conn_t       *conns;
    ngx_queue_t                 idle;
    ngx_queue_t                 jobs;
    ngx_uint_t                  nqueued;
    ngx_msec_t                  reconnect_min;
    ngx_msec_t                  reconnect_max;
    ngx_uint_t                  reconnects;
    ngx_uint_t                  wait_ms;    /* jobs' time in the queue */
    ngx_uint_t                  waited;     /* jobs sent */
    ngx_uint_t                  failed;
};


static void ngx_plinth_pg_connect(ngx_plinth_pg_conn_t *pc);
static void ngx_plinth_pg_poll(ngx_plinth_pg_conn_t *pc);
static ngx_int_t ngx_plinth_pg_wrap(ngx_plinth_pg_conn_t *pc);
static void ngx_plinth_pg_unwrap(ngx_plinth_pg_conn_t *pc);
static ngx_int_t ngx_plinth_pg_watch(ngx_plinth_pg_conn_t *pc,
    ngx_uint_t rd, ngx_uint_t wr);
static ngx_int_t ngx_plinth_pg_flush(ngx_plinth_pg_conn_t *pc);
static void ngx_plinth_pg_prepare(ngx_plinth_pg_conn_t *pc);
static void ngx_plinth_pg_prepared(ngx_plinth_pg_conn_t *pc);
static void ngx_plinth_pg_ready(ngx_plinth_pg_conn_t *pc);
static void ngx_plinth_pg_idle(ngx_plinth_pg_conn_t *pc);
static void ngx_plinth_pg_dispatch(ngx_plinth_pg_pool_t *pool);
static ngx_int_t ngx_plinth_pg_send(ngx_plinth_pg_conn_t *pc,
    ngx_plinth_pg_job_t *job);
static void ngx_plinth_pg_input(ngx_plinth_pg_conn_t *pc);
static void ngx_plinth_pg_done(ngx_plinth_pg_conn_t *pc);
static void ngx_plinth_pg_broken(ngx_plinth_pg_conn_t *pc,
    const char *what);
static void ngx_plinth_pg_close(ngx_plinth_pg_conn_t *pc,
    ngx_uint_t reconnect);
static ngx_uint_t ngx_plinth_pg_live(ngx_plinth_pg_pool_t *pool);
static void ngx_plinth_pg_fail_queued(ngx_plinth_pg_pool_t *pool);
static void ngx_plinth_pg_read_handler(ngx_event_t *rev);
static void ngx_plinth_pg_write_handler(ngx_event_t *wev);
static void ngx_plinth_pg_timeout_handler(ngx_event_t *ev);
static void ngx_plinth_pg_retry_handler(ngx_event_t *ev);
static void ngx_plinth_pg_enqueue(ngx_plinth_pg_pool_t *pool,
    ngx_plinth_pg_job_t *job, ngx_uint_t head);
static ngx_plinth_pg_job_t *ngx_plinth_pg_job(ngx_pool_t *mem, ngx_log_t *log,
    ngx_uint_t stmt, ngx_uint_t nparams, const char *const *values);
static void ngx_plinth_pg_submit(ngx_plinth_pg_job_t *job);
static void ngx_plinth_pg_job_fail(ngx_plinth_pg_job_t *job, ngx_int_t rc);
static void ngx_plinth_pg_job_handler(ngx_event_t *ev);
static void ngx_plinth_pg_answer(ngx_plinth_pg_job_t *job, PGresult *res,
    ngx_int_t rc);
static void ngx_plinth_pg_cleanup(void *data);
static void ngx_plinth_pg_notice(void *arg, const char *message);
static const char *ngx_plinth_pg_text(const char *message);
static const char *ngx_plinth_pg_str(const char *s);


static ngx_plinth_pg_pool_t  *ngx_plinth_pg_pool;


ngx_int_t
ngx_plinth_pg_init(ngx_cycle_t *cycle, ngx_plinth_pg_conf_t *conf)
{
    ngx_uint_t              i;
    ngx_pool_t             *p;
    ngx_plinth_pg_conn_t   *pc;
    ngx_plinth_pg_pool_t   *pool;

    p = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, cycle->log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    pool = ngx_pcalloc(p, sizeof(ngx_plinth_pg_pool_t));
    if (pool == NULL) {
        goto failed;
    }

    pool->conf = conf;
    pool->pool = p;
    pool->log = cycle->log;

    pool->conninfo = ngx_pnalloc(p, conf->conninfo.len + 1);
    if (pool->conninfo == NULL) {
        goto failed;
    }

    (void) ngx_cpystrn((u_char *) pool->conninfo, conf->conninfo.data,
                       conf->conninfo.len + 1);

    /* a zero backoff would turn a dead server into a busy loop */

    pool->reconnect_min = ngx_max(conf->reconnect_min, 1);
    pool->reconnect_max = ngx_max(conf->reconnect_max, pool->reconnect_min);

    if (conf->size) {
        pool->conns = ngx_pcalloc(p, conf->size
                                     * sizeof(ngx_plinth_pg_conn_t));
        if (pool->conns == NULL) {
            goto failed;
        }
    }

    ngx_queue_init(&pool->idle);
    ngx_queue_init(&pool->jobs);

    for (i = 0; i < conf->size; i++) {
        pc = &pool->conns[i];

        pc->pool = pool;
        pc->index = i;

        pc->timer.handler = ngx_plinth_pg_timeout_handler;
        pc->timer.data = pc;
        pc->timer.log = cycle->log;

        pc->retry.handler = ngx_plinth_pg_retry_handler;
        pc->retry.data = pc;
        pc->retry.log = cycle->log;
        pc->retry.cancelable = 1;
    }

    ngx_plinth_pg_pool = pool;

    for (i = 0; i < conf->size; i++) {
        ngx_plinth_pg_connect(&pool->conns[i]);
    }

    return NGX_OK;

failed:

    ngx_destroy_pool(p);

    return NGX_ERROR;
}


void
ngx_plinth_pg_exit(ngx_cycle_t *cycle)
{
    ngx_uint_t              i;
    ngx_queue_t            *q;
    ngx_plinth_pg_job_t    *job;
    ngx_plinth_pg_conn_t   *pc;
    ngx_plinth_pg_pool_t   *pool;

    pool = ngx_plinth_pg_pool;

    if (pool == NULL) {
        return;
    }

    /* requests still waiting are being abandoned with the process */

    while (!ngx_queue_empty(&pool->jobs)) {
        q = ngx_queue_head(&pool->jobs);
        job = ngx_queue_data(q, ngx_plinth_pg_job_t, queue);

        ngx_queue_remove(q);
        job->queued = 0;

        if (job->ev.timer_set) {
            ngx_del_timer(&job->ev);
        }

        if (job->cln) {
            job->cln->handler = NULL;
        }

        /* a background job owns its memory: nobody else frees it */
        if (job->mem) {
            ngx_destroy_pool(job->mem);
        }
    }

    for (i = 0; i < pool->conf->size; i++) {
        pc = &pool->conns[i];

        if (pc->job) {
            job = pc->job;
            pc->job = NULL;
            job->pc = NULL;

            if (job->cln) {
                job->cln->handler = NULL;
            }

            if (job->ev.timer_set) {
                ngx_del_timer(&job->ev);
            }

            if (job->mem) {
                ngx_destroy_pool(job->mem);
            }
        }

        if (pc->timer.timer_set) {
            ngx_del_timer(&pc->timer);
        }

        if (pc->retry.timer_set) {
            ngx_del_timer(&pc->retry);
        }

        if (pc->res) {
            PQclear(pc->res);
            pc->res = NULL;
        }

        if (pc->c) {
            ngx_plinth_pg_unwrap(pc);
        }

        if (pc->conn) {
            PQfinish(pc->conn);
            pc->conn = NULL;
        }

        pc->state = NGX_PLINTH_PG_CLOSED;
    }

    ngx_plinth_pg_pool = NULL;

    ngx_destroy_pool(pool->pool);
}


ngx_int_t
ngx_plinth_pg_query(ngx_http_request_t *r, ngx_uint_t stmt,
    ngx_uint_t nparams, const char *const *values,
    ngx_plinth_pg_handler_pt handler, void *data)
{
    ngx_http_cleanup_t   *cln;
    ngx_plinth_pg_job_t  *job;

    job = ngx_plinth_pg_job(r->pool, r->connection->log, stmt, nparams,
                            values);
    if (job == NULL) {
        return NGX_ERROR;
    }

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_plinth_pg_cleanup;
    cln->data = job;

    job->r = r;
    job->cln = cln;
    job->handler = handler;
    job->data = data;

    ngx_plinth_pg_submit(job);

    return NGX_OK;
}


ngx_int_t
ngx_plinth_pg_background(ngx_log_t *log, ngx_uint_t stmt,
    ngx_uint_t nparams, const char *const *values,
    ngx_plinth_pg_handler_pt handler, void *data)
{
    ngx_pool_t           *mem;
    ngx_plinth_pg_job_t  *job;

    mem = ngx_create_pool(1024, log);
    if (mem == NULL) {
        return NGX_ERROR;
    }

    job = ngx_plinth_pg_job(mem, log, stmt, nparams, values);
    if (job == NULL) {
        ngx_destroy_pool(mem);
        return NGX_ERROR;
    }

    job->mem = mem;
    job->handler = handler;
    job->data = data;

    ngx_plinth_pg_submit(job);

    return NGX_OK;
}


/* A job for stmt, its parameters copied into mem; NULL on failure. */
static ngx_plinth_pg_job_t *
ngx_plinth_pg_job(ngx_pool_t *mem, ngx_log_t *log, ngx_uint_t stmt,
    ngx_uint_t nparams, const char *const *values)
{
    size_t                  len;
    ngx_uint_t              i;
    ngx_plinth_pg_job_t    *job;
    ngx_plinth_pg_pool_t   *pool;

    pool = ngx_plinth_pg_pool;

    if (pool
        && (stmt >= pool->conf->nstmts
            || nparams != (ngx_uint_t) pool->conf->stmts[stmt].nparams))
    {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "pg query %ui with %ui parameters does not match "
                      "the statement table", stmt, nparams);
        return NULL;
    }

    job = ngx_pcalloc(mem, sizeof(ngx_plinth_pg_job_t));
    if (job == NULL) {
        return NULL;
    }

    if (nparams) {
        job->values = ngx_palloc(mem, nparams * sizeof(char *));
        if (job->values == NULL) {
            return NULL;
        }
    }

    for (i = 0; i < nparams; i++) {
        if (values[i] == NULL) {
            job->values[i] = NULL;
            continue;
        }

        len = ngx_strlen(values[i]) + 1;

        job->values[i] = ngx_pnalloc(mem, len);
        if (job->values[i] == NULL) {
            return NULL;
        }

        ngx_memcpy(job->values[i], values[i], len);
    }

    job->stmt = stmt;
    job->nparams = nparams;

    job->ev.handler = ngx_plinth_pg_job_handler;
    job->ev.data = job;
    job->ev.log = log;

    return job;
}


/* Queues a job, or fails it (its handler runs later) when it cannot run. */
static void
ngx_plinth_pg_submit(ngx_plinth_pg_job_t *job)
{
    ngx_log_t             *log;
    ngx_plinth_pg_pool_t  *pool;

    pool = ngx_plinth_pg_pool;
    log = job->ev.log;

    if (pool == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "pg pool is not running");
        ngx_plinth_pg_job_fail(job, NGX_ERROR);
        return;
    }

    if (!ngx_plinth_pg_live(pool)) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "pg query \"%s\" failed: no connection to postgresql",
                      pool->conf->stmts[job->stmt].name);
        ngx_plinth_pg_job_fail(job, NGX_ERROR);
        return;
    }

    if (ngx_queue_empty(&pool->idle)
        && pool->nqueued >= pool->conf->queue_max)
    {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "pg query \"%s\" rejected: %ui queries waiting",
                      pool->conf->stmts[job->stmt].name, pool->nqueued);
        ngx_plinth_pg_job_fail(job, NGX_BUSY);
        return;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                   "pg query \"%s\" job:%p queued:%ui",
                   pool->conf->stmts[job->stmt].name, job, pool->nqueued);

    ngx_plinth_pg_enqueue(pool, job, 0);
    ngx_plinth_pg_dispatch(pool);
}


void
ngx_plinth_pg_stats(ngx_plinth_pg_stats_t *stats)
{
    ngx_uint_t              i;
    ngx_plinth_pg_pool_t   *pool;

    ngx_memzero(stats, sizeof(ngx_plinth_pg_stats_t));

    pool = ngx_plinth_pg_pool;

    if (pool == NULL) {
        return;
    }

    stats->connections = pool->conf->size;
    stats->queued = pool->nqueued;
    stats->reconnects = pool->reconnects;
    stats->failed = pool->failed;
    stats->wait_ms = pool->wait_ms;
    stats->waited = pool->waited;

    for (i = 0; i < pool->conf->size; i++) {
        switch (pool->conns[i].state) {

        case NGX_PLINTH_PG_BUSY:
            stats->busy++;
            /* fall through */

        case NGX_PLINTH_PG_IDLE:
            stats->ready++;
            break;

        default:
            break;
        }
    }
}


static void
ngx_plinth_pg_connect(ngx_plinth_pg_conn_t *pc)
{
    ngx_plinth_pg_pool_t  *pool;

    pool = pc->pool;

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "pg connection #%ui connecting", pc->index);

    pc->conn = PQconnectStart(pool->conninfo);

    if (pc->conn == NULL) {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "pg connection #%ui: PQconnectStart() failed",
                      pc->index);
        goto failed;
    }

    if (PQstatus(pc->conn) == CONNECTION_BAD) {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "pg connection #%ui failed: %s",
                      pc->index, ngx_plinth_pg_text(PQerrorMessage(pc->conn)));
        goto failed;
    }

    (void) PQsetNoticeProcessor(pc->conn, ngx_plinth_pg_notice, pc);

    if (PQsetnonblocking(pc->conn, 1) == -1) {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "pg connection #%ui: PQsetnonblocking() failed: %s",
                      pc->index, ngx_plinth_pg_text(PQerrorMessage(pc->conn)));
        goto failed;
    }

    if (ngx_plinth_pg_wrap(pc) != NGX_OK) {
        goto failed;
    }

    pc->state = NGX_PLINTH_PG_CONNECTING;

    /* connecting must not hold up a worker that is shutting down */

    pc->timer.cancelable = 1;
    ngx_add_timer(&pc->timer, pool->conf->query_timeout);

    /* libpq: start as if PQconnectPoll() had returned PGRES_POLLING_WRITING */

    if (ngx_plinth_pg_watch(pc, 0, 1) != NGX_OK) {
        goto failed;
    }

    return;

failed:

    ngx_plinth_pg_close(pc, 1);
}


static void
ngx_plinth_pg_poll(ngx_plinth_pg_conn_t *pc)
{
    ngx_int_t                rc;
    ngx_socket_t             fd;
    ngx_file_info_t          fi;
    PostgresPollingStatusType  st;

    st = PQconnectPoll(pc->conn);
    fd = PQsocket(pc->conn);

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pc->pool->log, 0,
                   "pg connection #%ui poll:%d fd:%d", pc->index, st, fd);

    if (st == PGRES_POLLING_FAILED || fd == (ngx_socket_t) -1) {
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                      "pg connection #%ui to \"%s:%s\" failed: %s",
                      pc->index, ngx_plinth_pg_str(PQhost(pc->conn)),
                      ngx_plinth_pg_str(PQport(pc->conn)),
                      ngx_plinth_pg_text(PQerrorMessage(pc->conn)));
        ngx_plinth_pg_close(pc, 1);
        return;
    }

    /*
     * libpq closes its socket and opens another one when it moves on to the
     * next address; the new descriptor usually gets the same number, so the
     * socket's inode tells whether the wrapper still matches
     */

    if (fd != pc->c->fd
        || ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_uniq(&fi) != pc->uniq)
    {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pc->pool->log, 0,
                       "pg connection #%ui new socket fd:%d", pc->index, fd);

        ngx_plinth_pg_unwrap(pc);

        if (ngx_plinth_pg_wrap(pc) != NGX_OK) {
            ngx_plinth_pg_close(pc, 1);
            return;
        }
    }

    switch (st) {

    case PGRES_POLLING_READING:
        rc = ngx_plinth_pg_watch(pc, 1, 0);
        break;

    case PGRES_POLLING_OK:

        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, pc->pool->log, 0,
                       "pg connection #%ui connected", pc->index);

        if (ngx_plinth_pg_watch(pc, 1, 0) != NGX_OK) {
            ngx_plinth_pg_close(pc, 1);
            return;
        }

        pc->state = NGX_PLINTH_PG_PREPARING;
        pc->stmt = 0;

        ngx_plinth_pg_prepare(pc);
        return;

    default: /* PGRES_POLLING_WRITING (and the unused POLLING_ACTIVE) */
        rc = ngx_plinth_pg_watch(pc, 0, 1);
        break;
    }

    if (rc != NGX_OK) {
        ngx_plinth_pg_close(pc, 1);
    }
}


static ngx_int_t
ngx_plinth_pg_wrap(ngx_plinth_pg_conn_t *pc)
{
    ngx_socket_t       fd;
    ngx_file_info_t    fi;
    ngx_connection_t  *c;

    fd = PQsocket(pc->conn);

    if (fd == (ngx_socket_t) -1) {
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                      "pg connection #%ui has no socket", pc->index);
        return NGX_ERROR;
    }

    c = ngx_get_connection(fd, pc->pool->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = pc;

    c->read->handler = ngx_plinth_pg_read_handler;
    c->write->handler = ngx_plinth_pg_write_handler;
    c->read->log = pc->pool->log;
    c->write->log = pc->pool->log;

    c->number = ngx_atomic_fetch_add(ngx_connection_counter, 1);

    /*
     * not c->idle: a worker that shuts down gracefully would close idle
     * connections at once, while its requests in flight may still need
     * queries; ngx_plinth_pg_exit() closes them all instead
     */

    pc->c = c;
    pc->uniq = (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR)
               ? 0 : ngx_file_uniq(&fi);

    return NGX_OK;
}


static void
ngx_plinth_pg_unwrap(ngx_plinth_pg_conn_t *pc)
{
    ngx_connection_t  *c;

    c = pc->c;

    /*
     * the descriptor is closed by libpq, or about to be: with
     * NGX_CLOSE_EVENT the event modules only forget the events
     */

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);

    c->fd = (ngx_socket_t) -1;
    pc->c = NULL;
}


static ngx_int_t
ngx_plinth_pg_watch(ngx_plinth_pg_conn_t *pc, ngx_uint_t rd, ngx_uint_t wr)
{
    ngx_connection_t  *c;

    c = pc->c;

    if (rd && !c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (!rd && c->read->active) {
        if (ngx_del_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (wr && !c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (!wr && c->write->active) {
        if (ngx_del_event(c->write, NGX_WRITE_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_plinth_pg_flush(ngx_plinth_pg_conn_t *pc)
{
    int  rc;

    rc = PQflush(pc->conn);

    if (rc == -1) {
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                      "pg connection #%ui: sending failed: %s",
                      pc->index, ngx_plinth_pg_text(PQerrorMessage(pc->conn)));
        return NGX_ERROR;
    }

    return ngx_plinth_pg_watch(pc, 1, rc == 1);
}


static void
ngx_plinth_pg_prepare(ngx_plinth_pg_conn_t *pc)
{
    const ngx_plinth_pg_stmt_t  *stmt;

    if (pc->stmt == pc->pool->conf->nstmts) {
        ngx_plinth_pg_ready(pc);
        return;
    }

    stmt = &pc->pool->conf->stmts[pc->stmt];

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pc->pool->log, 0,
                   "pg connection #%ui prepare \"%s\"", pc->index, stmt->name);

    if (!PQsendPrepare(pc->conn, stmt->name, stmt->sql, stmt->nparams, NULL)) {
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                      "pg connection #%ui: preparing \"%s\" failed: %s",
                      pc->index, stmt->name,
                      ngx_plinth_pg_text(PQerrorMessage(pc->conn)));
        ngx_plinth_pg_close(pc, 1);
        return;
    }

    if (ngx_plinth_pg_flush(pc) != NGX_OK) {
        ngx_plinth_pg_close(pc, 1);
    }
}


static void
ngx_plinth_pg_prepared(ngx_plinth_pg_conn_t *pc)
{
    PGresult                    *res;
    const ngx_plinth_pg_stmt_t  *stmt;

    res = pc->res;
    pc->res = NULL;

    stmt = &pc->pool->conf->stmts[pc->stmt];

    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                      "pg connection #%ui: preparing \"%s\" failed: "
                      "sqlstate \"%s\": %s",
                      pc->index, stmt->name,
                      ngx_plinth_pg_str(res ? PQresultErrorField(res,
                                                      PG_DIAG_SQLSTATE)
                                            : NULL),
                      ngx_plinth_pg_text(res ? PQresultErrorMessage(res)
                                             : PQerrorMessage(pc->conn)));
        if (res) {
            PQclear(res);
        }

        ngx_plinth_pg_close(pc, 1);
        return;
    }

    PQclear(res);

    pc->stmt++;

    ngx_plinth_pg_prepare(pc);
}


static void
ngx_plinth_pg_ready(ngx_plinth_pg_conn_t *pc)
{
    ngx_plinth_pg_pool_t  *pool;

    pool = pc->pool;

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    pc->backoff = 0;

    if (pc->was_ready) {
        pool->reconnects++;
        ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                      "pg connection #%ui to \"%s:%s\" re-established",
                      pc->index, ngx_plinth_pg_str(PQhost(pc->conn)),
                      ngx_plinth_pg_str(PQport(pc->conn)));

    } else {
        ngx_log_error(NGX_LOG_INFO, pool->log, 0,
                      "pg connection #%ui to \"%s:%s\" ready",
                      pc->index, ngx_plinth_pg_str(PQhost(pc->conn)),
                      ngx_plinth_pg_str(PQport(pc->conn)));
    }

    pc->was_ready = 1;

    ngx_plinth_pg_idle(pc);
}


static void
ngx_plinth_pg_idle(ngx_plinth_pg_conn_t *pc)
{
    pc->state = NGX_PLINTH_PG_IDLE;
    ngx_queue_insert_tail(&pc->pool->idle, &pc->queue);

    ngx_plinth_pg_dispatch(pc->pool);
}


static void
ngx_plinth_pg_dispatch(ngx_plinth_pg_pool_t *pool)
{
    ngx_queue_t           *q;
    ngx_plinth_pg_job_t   *job;
    ngx_plinth_pg_conn_t  *pc;

    while (!ngx_queue_empty(&pool->jobs) && !ngx_queue_empty(&pool->idle)) {

        q = ngx_queue_head(&pool->idle);
        pc = ngx_queue_data(q, ngx_plinth_pg_conn_t, queue);
        ngx_queue_remove(q);
        pc->state = NGX_PLINTH_PG_BUSY;

        q = ngx_queue_head(&pool->jobs);
        job = ngx_queue_data(q, ngx_plinth_pg_job_t, queue);
        ngx_queue_remove(q);
        job->queued = 0;
        pool->nqueued--;

        if (job->ev.timer_set) {
            ngx_del_timer(&job->ev);
        }

        if (ngx_plinth_pg_send(pc, job) == NGX_OK) {
            pool->wait_ms += ngx_current_msec - job->since;
            pool->waited++;
            continue;
        }

        /* never sent: the job goes first to the next connection */

        ngx_plinth_pg_enqueue(pool, job, 1);
        ngx_plinth_pg_close(pc, 1);
    }
}


static ngx_int_t
ngx_plinth_pg_send(ngx_plinth_pg_conn_t *pc, ngx_plinth_pg_job_t *job)
{
    const ngx_plinth_pg_stmt_t  *stmt;

    stmt = &pc->pool->conf->stmts[job->stmt];

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, job->ev.log, 0,
                   "pg connection #%ui send \"%s\" job:%p",
                   pc->index, stmt->name, job);

    /*
     * reading first notices a connection that the server has closed
     * since its last read event, before a query is spent on it
     */

    if (!PQconsumeInput(pc->conn)
        || !PQsendQueryPrepared(pc->conn, stmt->name, (int) job->nparams,
                                (const char *const *) job->values,
                                NULL, NULL, 0))
    {
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                      "pg connection #%ui: sending \"%s\" failed: %s",
                      pc->index, stmt->name,
                      ngx_plinth_pg_text(PQerrorMessage(pc->conn)));
        return NGX_DECLINED;
    }

    pc->job = job;
    pc->stmt = job->stmt;
    job->pc = pc;

    pc->timer.cancelable = 0;
    ngx_add_timer(&pc->timer, pc->pool->conf->query_timeout);

    if (ngx_plinth_pg_flush(pc) != NGX_OK) {
        ngx_plinth_pg_close(pc, 1);
    }

    return NGX_OK;
}


static void
ngx_plinth_pg_input(ngx_plinth_pg_conn_t *pc)
{
    PGresult  *res;
    PGnotify  *n;

    if (!PQconsumeInput(pc->conn)) {
        ngx_plinth_pg_broken(pc, "reading");
        return;
    }

    /* libpq: a socket that waits to flush may need reading first */

    if (pc->c->write->active && ngx_plinth_pg_flush(pc) != NGX_OK) {
        ngx_plinth_pg_close(pc, 1);
        return;
    }

    if (pc->state == NGX_PLINTH_PG_IDLE) {

        /* parses whatever arrived: notices go to ngx_plinth_pg_notice() */

        (void) PQisBusy(pc->conn);

        while ((n = PQnotifies(pc->conn)) != NULL) {
            PQfreemem(n);
        }

        if (PQstatus(pc->conn) == CONNECTION_BAD) {
            ngx_plinth_pg_broken(pc, "idle");
        }

        return;
    }

    for ( ;; ) {

        if (PQisBusy(pc->conn)) {
            if (PQstatus(pc->conn) == CONNECTION_BAD) {
                ngx_plinth_pg_broken(pc, "reading");
            }

            return;
        }

        res = PQgetResult(pc->conn);

        if (res == NULL) {
            break;
        }

        switch (PQresultStatus(res)) {

        case PGRES_COPY_IN:
        case PGRES_COPY_OUT:
        case PGRES_COPY_BOTH:
            PQclear(res);
            ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                          "pg connection #%ui: unexpected copy state",
                          pc->index);
            ngx_plinth_pg_close(pc, 1);
            return;

        default:
            break;
        }

        if (pc->res) {
            PQclear(pc->res);
        }

        pc->res = res;
    }

    while ((n = PQnotifies(pc->conn)) != NULL) {
        PQfreemem(n);
    }

    if (pc->state == NGX_PLINTH_PG_PREPARING) {
        ngx_plinth_pg_prepared(pc);
        return;
    }

    ngx_plinth_pg_done(pc);
}


static void
ngx_plinth_pg_done(ngx_plinth_pg_conn_t *pc)
{
    PGresult             *res;
    ngx_plinth_pg_job_t  *job;

    res = pc->res;
    job = pc->job;

    pc->res = NULL;
    pc->job = NULL;

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pc->pool->log, 0,
                   "pg connection #%ui done job:%p res:%p",
                   pc->index, job, res);

    /* the connection takes the next job before the handler runs */

    ngx_plinth_pg_idle(pc);

    if (job) {
        job->pc = NULL;
        ngx_plinth_pg_answer(job, res, res ? NGX_OK : NGX_ERROR);
    }

    if (res) {
        PQclear(res);
    }
}


static void
ngx_plinth_pg_broken(ngx_plinth_pg_conn_t *pc, const char *what)
{
    ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                  "pg connection #%ui to \"%s:%s\" broken while %s: %s",
                  pc->index, ngx_plinth_pg_str(PQhost(pc->conn)),
                  ngx_plinth_pg_str(PQport(pc->conn)), what,
                  ngx_plinth_pg_text(PQerrorMessage(pc->conn)));

    ngx_plinth_pg_close(pc, 1);
}


static void
ngx_plinth_pg_close(ngx_plinth_pg_conn_t *pc, ngx_uint_t reconnect)
{
    ngx_plinth_pg_job_t   *job;
    ngx_plinth_pg_pool_t  *pool;

    pool = pc->pool;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "pg connection #%ui close state:%d", pc->index, pc->state);

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    if (pc->state == NGX_PLINTH_PG_IDLE) {
        ngx_queue_remove(&pc->queue);
    }

    pc->state = NGX_PLINTH_PG_CLOSED;

    job = pc->job;

    if (job) {
        pc->job = NULL;
        job->pc = NULL;
        ngx_plinth_pg_job_fail(job, NGX_ERROR);
    }

    if (pc->res) {
        PQclear(pc->res);
        pc->res = NULL;
    }

    if (pc->c) {
        ngx_plinth_pg_unwrap(pc);
    }

    if (pc->conn) {
        PQfinish(pc->conn);
        pc->conn = NULL;
    }

    if (reconnect) {
        pc->backoff = pc->backoff ? ngx_min(pc->backoff * 2,
                                            pool->reconnect_max)
                                  : pool->reconnect_min;

        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                       "pg connection #%ui reconnect in %M ms",
                       pc->index, pc->backoff);

        ngx_add_timer(&pc->retry, pc->backoff);
    }

    /* nothing can serve the queue now: answer at once, not at deadline */

    if (!ngx_plinth_pg_live(pool)) {
        ngx_plinth_pg_fail_queued(pool);
    }
}


static ngx_uint_t
ngx_plinth_pg_live(ngx_plinth_pg_pool_t *pool)
{
    ngx_uint_t  i;

    for (i = 0; i < pool->conf->size; i++) {
        if (pool->conns[i].state != NGX_PLINTH_PG_CLOSED) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_plinth_pg_fail_queued(ngx_plinth_pg_pool_t *pool)
{
    ngx_queue_t          *q;
    ngx_plinth_pg_job_t  *job;

    while (!ngx_queue_empty(&pool->jobs)) {
        q = ngx_queue_head(&pool->jobs);
        job = ngx_queue_data(q, ngx_plinth_pg_job_t, queue);

        ngx_queue_remove(q);
        job->queued = 0;
        pool->nqueued--;

        ngx_log_error(NGX_LOG_ERR, job->ev.log, 0,
                      "pg query \"%s\" failed: no connection to postgresql",
                      pool->conf->stmts[job->stmt].name);

        ngx_plinth_pg_job_fail(job, NGX_ERROR);
    }
}


static void
ngx_plinth_pg_read_handler(ngx_event_t *rev)
{
    ngx_connection_t      *c;
    ngx_plinth_pg_conn_t  *pc;

    c = rev->data;
    pc = c->data;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, rev->log, 0,
                   "pg connection #%ui read state:%d", pc->index, pc->state);

    if (c->close) {
        /* worker shutdown: ngx_close_idle_connections() or its timer */
        ngx_log_error(NGX_LOG_INFO, pc->pool->log, 0,
                      "pg connection #%ui closed on shutdown", pc->index);
        ngx_plinth_pg_close(pc, 0);
        return;
    }

    switch (pc->state) {

    case NGX_PLINTH_PG_CONNECTING:
        ngx_plinth_pg_poll(pc);
        return;

    case NGX_PLINTH_PG_PREPARING:
    case NGX_PLINTH_PG_IDLE:
    case NGX_PLINTH_PG_BUSY:
        ngx_plinth_pg_input(pc);
        return;

    default:
        return;
    }
}


static void
ngx_plinth_pg_write_handler(ngx_event_t *wev)
{
    ngx_connection_t      *c;
    ngx_plinth_pg_conn_t  *pc;

    c = wev->data;
    pc = c->data;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, wev->log, 0,
                   "pg connection #%ui write state:%d", pc->index, pc->state);

    switch (pc->state) {

    case NGX_PLINTH_PG_CONNECTING:
        ngx_plinth_pg_poll(pc);
        return;

    case NGX_PLINTH_PG_PREPARING:
    case NGX_PLINTH_PG_IDLE:
    case NGX_PLINTH_PG_BUSY:
        if (ngx_plinth_pg_flush(pc) != NGX_OK) {
            ngx_plinth_pg_close(pc, 1);
        }

        return;

    default:
        return;
    }
}


static void
ngx_plinth_pg_timeout_handler(ngx_event_t *ev)
{
    ngx_plinth_pg_conn_t  *pc;

    pc = ev->data;
    ev->timedout = 0;

    if (pc->state == NGX_PLINTH_PG_BUSY) {
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                      "pg connection #%ui: query \"%s\" timed out%s",
                      pc->index, pc->pool->conf->stmts[pc->stmt].name,
                      pc->job ? "" : " (detached)");

    } else {
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                      "pg connection #%ui to \"%s:%s\" timed out while %s",
                      pc->index, ngx_plinth_pg_str(PQhost(pc->conn)),
                      ngx_plinth_pg_str(PQport(pc->conn)),
                      pc->state == NGX_PLINTH_PG_CONNECTING
                      ? "connecting" : "preparing statements");
    }

    ngx_plinth_pg_close(pc, 1);
}


static void
ngx_plinth_pg_retry_handler(ngx_event_t *ev)
{
    ngx_plinth_pg_connect(ev->data);
}


static void
ngx_plinth_pg_enqueue(ngx_plinth_pg_pool_t *pool, ngx_plinth_pg_job_t *job,
    ngx_uint_t head)
{
    if (head) {
        ngx_queue_insert_head(&pool->jobs, &job->queue);

    } else {
        ngx_queue_insert_tail(&pool->jobs, &job->queue);
    }

    job->queued = 1;
    pool->nqueued++;

    if (!head) {
        job->since = ngx_current_msec;
    }

    ngx_add_timer(&job->ev, pool->conf->queue_timeout);
}


static void
ngx_plinth_pg_job_fail(ngx_plinth_pg_job_t *job, ngx_int_t rc)
{
    if (job->ev.timer_set) {
        ngx_del_timer(&job->ev);
    }

    job->rc = rc;

    ngx_post_event(&job->ev, &ngx_posted_events);
}


static void
ngx_plinth_pg_job_handler(ngx_event_t *ev)
{
    ngx_plinth_pg_job_t   *job;
    ngx_plinth_pg_pool_t  *pool;

    job = ev->data;

    if (!ev->timedout) {
        ngx_plinth_pg_answer(job, NULL, job->rc);
        return;
    }

    /* the deadline of a queued job */

    ev->timedout = 0;

    pool = ngx_plinth_pg_pool;

    if (job->queued) {
        ngx_queue_remove(&job->queue);
        job->queued = 0;
        pool->nqueued--;
    }

    ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                  "pg query \"%s\" waited %M ms for a connection",
                  pool->conf->stmts[job->stmt].name,
                  pool->conf->queue_timeout);

    ngx_plinth_pg_answer(job, NULL, NGX_BUSY);
}


static void
ngx_plinth_pg_answer(ngx_plinth_pg_job_t *job, PGresult *res, ngx_int_t rc)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = job->r;

    if (rc != NGX_OK && ngx_plinth_pg_pool) {
        ngx_plinth_pg_pool->failed++;
    }

    if (r == NULL) {
        /* a background job: its handler, then its memory goes */
        job->handler(NULL, job->data, res, rc);
        ngx_destroy_pool(job->mem);
        return;
    }

    c = r->connection;

    job->cln->handler = NULL;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "pg answer job:%p rc:%i res:%p", job, rc, res);

    job->handler(r, job->data, res, rc);

    ngx_http_run_posted_requests(c);
}


static void
ngx_plinth_pg_cleanup(void *data)
{
    ngx_plinth_pg_job_t  *job = data;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, job->ev.log, 0,
                   "pg cleanup job:%p", job);

    if (job->ev.timer_set) {
        ngx_del_timer(&job->ev);
    }

    if (job->ev.posted) {
        ngx_delete_posted_event(&job->ev);
    }

    if (job->queued) {
        ngx_queue_remove(&job->queue);
        job->queued = 0;
        ngx_plinth_pg_pool->nqueued--;
    }

    if (job->pc) {

        /* the result will be read and dropped, the connection kept */

        job->pc->job = NULL;
        job->pc->timer.cancelable = 1;
        job->pc = NULL;
    }
}


static void
ngx_plinth_pg_notice(void *arg, const char *message)
{
    ngx_plinth_pg_conn_t  *pc = arg;

    ngx_log_error(NGX_LOG_NOTICE, pc->pool->log, 0,
                  "pg connection #%ui: %s",
                  pc->index, ngx_plinth_pg_text(message));
}


/*
 * libpq's messages end with a newline and may span lines ("\n\t..."):
 * returns one line, in a static buffer valid until the next call
 */

static const char *
ngx_plinth_pg_text(const char *message)
{
    u_char         *p, *last;
    const u_char   *s;
    static u_char   buf[512];

    p = buf;
    last = buf + sizeof(buf) - 1;

    for (s = (const u_char *) message; s && *s && p < last; s++) {

        if (*s == CR || *s == LF || *s == '\t') {
            if (p > buf && p[-1] != ' ') {
                *p++ = ' ';
            }

            continue;
        }

        *p++ = *s;
    }

    while (p > buf && p[-1] == ' ') {
        p--;
    }

    *p = '\0';

    return (const char *) buf;
}


static const char *
ngx_plinth_pg_str(const char *s)
{
    return s ? s : "";
}
