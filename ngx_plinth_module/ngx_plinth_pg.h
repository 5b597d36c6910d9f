/*
 * Plinth PostgreSQL pool: non-blocking libpq connections on nginx's event
 * loop, one pool per worker process.
 *
 * Each worker keeps `size` connections, each with every statement of the
 * table prepared once after it connects. A query waits in a FIFO (capped at
 * `queue_max` jobs, each with a deadline of `queue_timeout`) until a
 * connection is free; the pool never blocks the worker: it uses
 * PQconnectStart/PQconnectPoll, PQsendQueryPrepared, PQflush,
 * PQconsumeInput/PQisBusy/PQgetResult only. A broken connection (e.g. after
 * a PostgreSQL restart) is closed and reconnected with a backoff timer;
 * while no connection is usable, queries fail at once (the caller answers
 * 503) instead of hanging.
 *
 * The pool knows nothing of S3: callers pass a statement index into the
 * table given to ngx_plinth_pg_init() and text parameters.
 */

#ifndef NGX_PLINTH_PG_H
#define NGX_PLINTH_PG_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <libpq-fe.h>


typedef struct {
    const char              *name;      /* prepared statement name */
    const char              *sql;       /* text with $1..$n */
    int                      nparams;
} ngx_plinth_pg_stmt_t;


typedef struct {
    ngx_str_t                conninfo;        /* libpq connection string */
    ngx_uint_t               size;            /* connections per worker */
    ngx_uint_t               queue_max;       /* jobs waiting, at most */
    ngx_msec_t               queue_timeout;   /* wait for a connection */
    ngx_msec_t               query_timeout;   /* a sent query, at most */
    ngx_msec_t               reconnect_min;   /* first backoff */
    ngx_msec_t               reconnect_max;   /* backoff ceiling */
    const ngx_plinth_pg_stmt_t *stmts;
    ngx_uint_t               nstmts;
} ngx_plinth_pg_conf_t;


/*
 * Called exactly once per accepted query (never from inside
 * ngx_plinth_pg_query itself), unless the request was terminated first:
 *   rc == NGX_OK     res is the statement's result; it may be an error
 *                    result (PGRES_FATAL_ERROR: read PG_DIAG_SQLSTATE);
 *                    the pool PQclear()s it after the handler returns, so
 *                    copy what you need into r->pool;
 *   rc == NGX_ERROR  the query could not run or its connection broke
 *                    (PostgreSQL down, query timeout): res is NULL;
 *   rc == NGX_BUSY   the queue was full or the wait for a connection
 *                    expired: res is NULL.
 * The pool returns the connection to the idle set before calling the
 * handler (so the handler may issue the next query at once) and runs
 * ngx_http_run_posted_requests() on the request's connection afterwards.
 * The pool does not touch r->main->count: the caller keeps the request
 * alive while a query is pending (the usual count++ / NGX_DONE idiom).
 */
typedef void (*ngx_plinth_pg_handler_pt)(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);


/* init_process / exit_process of the module. conf must outlive the pool. */
ngx_int_t ngx_plinth_pg_init(ngx_cycle_t *cycle, ngx_plinth_pg_conf_t *conf);
void ngx_plinth_pg_exit(ngx_cycle_t *cycle);

/*
 * Queues statement `stmt` with nparams text parameters (values[i] may be
 * NULL for SQL NULL; lengths are ignored for text and may be NULL: values
 * are NUL-terminated). Parameters are copied. A request cleanup detaches
 * the job if the request goes away first. Returns NGX_OK (handler will be
 * called later), or NGX_ERROR on allocation failure (handler not called).
 */
ngx_int_t ngx_plinth_pg_query(ngx_http_request_t *r, ngx_uint_t stmt,
    ngx_uint_t nparams, const char *const *values,
    ngx_plinth_pg_handler_pt handler, void *data);

/*
 * The same for work that belongs to no request (a timer's refresh, a
 * report that must outlive the request that found it): the handler is
 * called with r == NULL, exactly once, and the job's memory (parameters
 * included) is freed after it returns.
 */
ngx_int_t ngx_plinth_pg_background(ngx_log_t *log, ngx_uint_t stmt,
    ngx_uint_t nparams, const char *const *values,
    ngx_plinth_pg_handler_pt handler, void *data);

/* Pool statistics for this worker (for /metrics and tests). */
typedef struct {
    ngx_uint_t               connections;     /* configured */
    ngx_uint_t               ready;           /* connected and prepared */
    ngx_uint_t               busy;            /* running a query */
    ngx_uint_t               queued;          /* jobs waiting */
    ngx_uint_t               reconnects;      /* connections re-established */
    ngx_uint_t               failed;          /* jobs answered NGX_ERROR/BUSY */
    ngx_uint_t               wait_ms;         /* jobs' total queue time */
    ngx_uint_t               waited;          /* jobs sent */
} ngx_plinth_pg_stats_t;

void ngx_plinth_pg_stats(ngx_plinth_pg_stats_t *stats);

#endif /* NGX_PLINTH_PG_H */
