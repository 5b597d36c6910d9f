/*
 * plinth-repaird: health checks, re-replication and scrubbing.
 *
 * One process, one thread doing the work (plus libmicrohttpd's thread for
 * /metrics). Several may run; exactly one works at a time: the one
 * holding PostgreSQL advisory lock RD_LOCK_KEY on its session. The others
 * retry the lock every lock_retry; when the worker dies its session ends,
 * the lock is free and a standby takes over at its next try.
 *
 *   config.c   the YAML configuration and the cluster file
 *   log.c      JSON-lines logging on stderr
 *   client.c   HTTP to the data nodes (libcurl, keep-alive)
 *   db.c       PostgreSQL (libpq): connect, lock, queries
 *   work.c     health, repair, scrub
 *   main.c     options, signals, the loop, /metrics
 */

#ifndef PLINTH_REPAIRD_H
#define PLINTH_REPAIRD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <pthread.h>

#include <libpq-fe.h>

#include "ngx_plinth_ring.h"

#define RD_VERSION     "0.1.0"
/* pg_try_advisory_lock key: "plinth" in ASCII, one per database */
#define RD_LOCK_KEY    "112108105110116104"
#define RD_ID_LEN      32
#define RD_MAX_NODES   1024
#define RD_MAX_RF      16

#define RD_LOG_DEBUG   0
#define RD_LOG_INFO    1
#define RD_LOG_WARN    2
#define RD_LOG_ERROR   3

/* ------------------------------------------------------------ config */

typedef struct {
    uint32_t   id;
    char      *address;         /* host:port */
    char      *zone;
    char      *tier;
    uint32_t   weight;
} rd_node_conf;

typedef struct {
    char      *pg;               /* libpq conninfo */
    char      *cluster;          /* path of the cluster file */
    char      *listen;           /* host:port for /metrics; NULL: none */
    char      *instance;         /* name in logs; default host:pid */
    char      *pid_file;
    char      *cluster_secret_file;  /* required: the closed internal hop */
    char      *tls_ca;           /* CA of the data nodes' certificates:
                                  * talk HTTPS to them; NULL: HTTP */
    int        log_level;
    uint32_t   rf;               /* replication_factor */
    double     health_interval;  /* seconds */
    double     probe_timeout;
    double     offline_after;
    double     lock_retry;
    double     repair_interval;
    uint32_t   repair_batch;     /* blobs per repair step */
    double     repair_rate;      /* copies per second; 0: no limit */
    double     scrub_interval;   /* 0: no scrubbing */
    uint32_t   scrub_batch;      /* blobs per scrub request */
    double     scrub_grace;      /* younger references are not "missing" */
    double     http_timeout;     /* a pull, a scrub page */
    double     gc_interval;      /* 0: no garbage collection */
    double     gc_grace;         /* dead versions, garbage_blobs rows */
    double     pending_grace;    /* pending versions never committed */
    double     upload_max_age;   /* open multipart uploads */
    double     orphan_grace;     /* blob files nothing names */
    uint32_t   gc_batch;
    double     rebalance_interval; /* 0: no rebalancing */
    double     rebalance_rate;     /* copies per second; 0: no limit */
    double     lifecycle_interval; /* 0: no lifecycle / tiering passes */
    double     lifecycle_day_seconds;  /* a rule's day (86400; tests) */
} rd_config;

int rd_config_load(const char *path, rd_config *cf, char *err, size_t len);
void rd_config_free(rd_config *cf);
/* The cluster file: nodes[] (malloc'd, free with rd_nodes_free). */
int rd_cluster_load(const char *path, rd_node_conf **nodes, size_t *n,
    char *err, size_t len);
void rd_nodes_free(rd_node_conf *nodes, size_t n);

/* ------------------------------------------------------------ log */

extern int          rd_log_level;
extern const char  *rd_log_instance;

#define rd_log(level, ...)                                                  \
    do {                                                                    \
        if ((level) >= rd_log_level) {                                      \
            rd_log_write((level), __VA_ARGS__);                             \
        }                                                                   \
    } while (0)

void rd_log_write(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int rd_log_level_parse(const char *name);

/* ------------------------------------------------------------ client */

typedef struct {
    long       status;           /* HTTP status; 0: no answer */
    char       error[64];        /* X-Plinth-Error, or a transport error */
    char       scrub_last[RD_ID_LEN + 1];
    char       scrub_checked[24];
    char       size[24];         /* X-Plinth-Size */
    uint8_t   *body;
    size_t     len;
} rd_http_answer;

int rd_http_init(const rd_config *cf, char *err, size_t len);
void rd_http_done(void);
/* method on http://address path; body kept (bounded) in a. 0 or -1. */
int rd_http(const char *method, const char *address, const char *path,
    double timeout, rd_http_answer *a);
void rd_http_answer_free(rd_http_answer *a);
int rd_http_get_all(const char *const *addresses, size_t n,
    const char *path, double timeout, rd_http_answer *a);
const char *rd_request_id(void);

/* ------------------------------------------------------------ state */

typedef struct {
    rd_node_conf  c;
    int           status;        /* RD_NODE_* as last written */
    int           full;
    uint64_t      disk_total, disk_used;
    int           probed;        /* at least one probe since start */
    int           scrub_done;    /* this node's scrub pass is complete */
    int           draining;      /* node_admin.draining */
    uint64_t      blob_count;    /* from /health */
    uint64_t      scrub_checked; /* blobs checked in the current pass */
    int64_t       scrub_completed;   /* unix time of its last full pass */
} rd_node;

#define RD_NODE_ONLINE   0
#define RD_NODE_SUSPECT  1
#define RD_NODE_OFFLINE  2

typedef struct {
    /* counters for /metrics (read by the metrics thread: atomics) */
    uint64_t  replicate_ops;
    uint64_t  scrub_repair_ops;
    uint64_t  repair_failures;
    uint64_t  scrub_checked;
    uint64_t  scrub_corrupt;
    uint64_t  scrub_missing;
    uint64_t  health_probes;
    uint64_t  gc_ops;               /* blob copies deleted */
    uint64_t  rebalance_ops;        /* copies made to move blobs */
    uint64_t  tier_moves;           /* versions moved to another tier */
    uint64_t  lifecycle_expirations;  /* versions expired by a rule */
    uint64_t  tier_move_failures;
    int64_t   misplaced;            /* not on their ideal nodes (-1: n/a) */
    uint64_t  gc_versions;          /* dead version rows removed */
    uint64_t  gc_orphans;           /* orphan copies deleted */
    int64_t   under_replicated;     /* -1 until first counted */
    int64_t   lost;                 /* no good replica left */
    int64_t   objects[3];           /* versions stored per tier, hot warm
                                     * cold (-1 until counted) */
    int64_t   stored_bytes[3];      /* their logical bytes */
    int64_t   scrub_last_completed; /* unix time of the last full pass */
    int64_t   repair_last_completed;
    int       leader;
    int       db_up;
} rd_stats;

typedef struct {
    rd_config       cf;
    const char     *cf_path;
    rd_node        *nodes;
    size_t          nnodes;
    plinth_ring_t  *ring;
    void           *ring_mem;    /* one block holding the ring */
    PGconn         *pg;
    int             leader;
    int             health_rounds;
    rd_stats        stats;
    char            repair_after[RD_ID_LEN + 1];   /* repair cursor */
    int             repair_more;
    size_t          scrub_node;  /* next node to scrub a page of */
    char            rebal_after[RD_ID_LEN + 1];    /* rebalance cursor */
    int64_t         rebal_misplaced;               /* in the pass so far */
} rd_ctx;

extern rd_ctx  rd;
/* held while x->nodes is replaced (SIGHUP) and while /metrics reads it */
extern pthread_mutex_t  rd_nodes_mutex;

/* db.c */
int rd_db_connect(rd_ctx *x);
void rd_db_close(rd_ctx *x);
int rd_db_ok(rd_ctx *x);
int rd_db_try_lock(rd_ctx *x);
/* Runs sql with text params; NULL on error (logged; the connection is
 * dropped if it broke). PQclear the result. */
PGresult *rd_db_exec(rd_ctx *x, const char *sql, int n,
    const char *const *params);

/* work.c */
int rd_cluster_apply(rd_ctx *x);
int rd_health_round(rd_ctx *x);
int rd_repair_step(rd_ctx *x, int *more);
int rd_scrub_step(rd_ctx *x, int *more);
int rd_gc_step(rd_ctx *x, int *more);
int rd_rebalance_step(rd_ctx *x, int *more);
int rd_lifecycle_step(rd_ctx *x, int *more);
int rd_queue_pending(rd_ctx *x);
int rd_count_under_replicated(rd_ctx *x);
int rd_count_objects(rd_ctx *x);

double rd_now(void);             /* monotonic seconds */
void rd_sleep(double s);         /* interruptible by the stop flag */
extern volatile int rd_stop;

#endif /* PLINTH_REPAIRD_H */
