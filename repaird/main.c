/*
 * main.c -- plinth-repaird: options, signals, the work loop, /metrics.
 *
 *     plinth-repaird -c repaird.yaml      run in the foreground
 *     plinth-repaird -t -c repaird.yaml   check the configuration
 *     plinth-repaird -v                   print the version
 *
 * SIGTERM/SIGINT: finish the blob in hand, exit 0 (the lock goes with the
 * session). SIGHUP: re-read the cluster file (a node added or removed).
 *
 * The loop (every wait bounded, every step bounded):
 *   no session      -> connect (retry every second)
 *   not the worker  -> try the advisory lock every lock_retry
 *   health due      -> probe every node (health_interval); a non-empty
 *                      repair queue makes a repair step due at once
 *   repair due      -> one batch (repair_interval, or at once while more)
 *   scrub due       -> one page of one node (while a pass is in progress)
 */

#define _GNU_SOURCE

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "repaird.h"

rd_ctx               rd;
pthread_mutex_t      rd_nodes_mutex = PTHREAD_MUTEX_INITIALIZER;
volatile int         rd_stop;
static volatile int  rd_hup;


static void
rd_on_signal(int sig)
{
    if (sig == SIGHUP) {
        rd_hup = 1;
    } else {
        rd_stop = 1;
    }
}


/* ------------------------------------------------------------ metrics */

static size_t rd_metrics_objects(rd_stats *s, char *buf, size_t n,
    size_t cap);

/* Per-node gauges: up, disk usage, scrub progress of the current pass. */
static size_t
rd_metrics_nodes(char *buf, size_t n, size_t cap)
{
    size_t    i, k;
    rd_node  *nd;
    double    ratio;
    static const char *head[] = {
        "# HELP plinth_node_up 1 when repaird's last probe of the node "
        "found it online (0: suspect or offline).\n"
        "# TYPE plinth_node_up gauge\n",
        "# HELP plinth_node_disk_usage_bytes Disk bytes used on the node, "
        "as its /health says.\n"
        "# TYPE plinth_node_disk_usage_bytes gauge\n",
        "# HELP plinth_scrub_progress_ratio Part of the node's blobs checked "
        "by the scrub pass in progress (1: the last pass is complete).\n"
        "# TYPE plinth_scrub_progress_ratio gauge\n",
        "# HELP plinth_scrub_node_last_completion_timestamp_seconds When the "
        "node's last scrub pass completed (0: none since start).\n"
        "# TYPE plinth_scrub_node_last_completion_timestamp_seconds gauge\n"
    };

    pthread_mutex_lock(&rd_nodes_mutex);
    for (k = 0; k < 4; k++) {
        if (n + 1 < cap) {
            n += (size_t) snprintf(buf + n, cap - n, "%s", head[k]);
        }
        for (i = 0; i < rd.nnodes && n + 1 < cap; i++) {
            nd = &rd.nodes[i];
            if (k == 0) {
                n += (size_t) snprintf(buf + n, cap - n,
                        "plinth_node_up{node=\"%u\"} %d\n", nd->c.id,
                        nd->probed && nd->status == RD_NODE_ONLINE);
            } else if (k == 1) {
                n += (size_t) snprintf(buf + n, cap - n,
                        "plinth_node_disk_usage_bytes{node=\"%u\"} %llu\n",
                        nd->c.id, (unsigned long long) nd->disk_used);
            } else if (k == 2) {
                ratio = nd->scrub_checked == 0 ? (nd->scrub_done ? 1 : 0)
                        : nd->blob_count == 0 ? 1
                        : (double) nd->scrub_checked / (double) nd->blob_count;
                n += (size_t) snprintf(buf + n, cap - n,
                        "plinth_scrub_progress_ratio{node=\"%u\"} %.4f\n",
                        nd->c.id, ratio > 1 ? 1 : ratio);
            } else {
                n += (size_t) snprintf(buf + n, cap - n,
                        "plinth_scrub_node_last_completion_timestamp_seconds"
                        "{node=\"%u\"} %lld\n", nd->c.id,
                        (long long) nd->scrub_completed);
            }
        }
    }
    pthread_mutex_unlock(&rd_nodes_mutex);
    return n < cap ? n : cap - 1;
}


static enum MHD_Result
rd_metrics(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_size, void **con_cls)
{
    rd_stats              *s = &rd.stats;
    struct MHD_Response   *resp;
    char                  *buf;
    size_t                 n = 0, cap = 8192 + 400 * RD_MAX_NODES;
    enum MHD_Result        ret;
    int64_t                ur;

    if (strcmp(url, "/metrics") != 0 || strcmp(method, "GET") != 0) {
        resp = MHD_create_response_from_buffer(10, "not found\n",
                                               MHD_RESPMEM_PERSISTENT);
        ret = MHD_queue_response(c, MHD_HTTP_NOT_FOUND, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    buf = malloc(cap);
    if (buf == NULL) {
        return MHD_NO;
    }
#define L(v) (unsigned long long) __atomic_load_n(&s->v, __ATOMIC_RELAXED)
    ur = __atomic_load_n(&s->under_replicated, __ATOMIC_RELAXED);
    n += (size_t) snprintf(buf + n, cap - n,
        "# HELP plinth_repair_operations_total Verified copies made by repaird, by kind.\n"
        "# TYPE plinth_repair_operations_total counter\n"
        "plinth_repair_operations_total{kind=\"replicate\"} %llu\n"
        "plinth_repair_operations_total{kind=\"scrub_repair\"} %llu\n"
        "plinth_repair_operations_total{kind=\"gc\"} %llu\n"
        "plinth_repair_operations_total{kind=\"rebalance\"} %llu\n"
        "# HELP plinth_repair_failures_total Copies that failed or blobs with no good replica.\n"
        "# TYPE plinth_repair_failures_total counter\n"
        "plinth_repair_failures_total %llu\n"
        "# HELP plinth_objects_under_replicated Blobs with fewer than RF good replicas at the last full pass (-1: not counted yet).\n"
        "# TYPE plinth_objects_under_replicated gauge\n"
        "plinth_objects_under_replicated %lld\n"
        "# HELP plinth_objects_misplaced Blobs not on their ideal nodes after the last full rebalancing pass (-1: none yet).\n"
        "# TYPE plinth_objects_misplaced gauge\n"
        "plinth_objects_misplaced %lld\n"
        "# HELP plinth_objects_lost Blobs with no good replica at the last full pass.\n"
        "# TYPE plinth_objects_lost gauge\n"
        "plinth_objects_lost %lld\n"
        "# HELP plinth_scrub_blobs_checked_total Blobs verified by scrubs.\n"
        "# TYPE plinth_scrub_blobs_checked_total counter\n"
        "plinth_scrub_blobs_checked_total %llu\n"
        "# HELP plinth_scrub_corrupt_total Corrupt replicas found by scrubs.\n"
        "# TYPE plinth_scrub_corrupt_total counter\n"
        "plinth_scrub_corrupt_total %llu\n"
        "# HELP plinth_scrub_missing_total Replicas missing on disk found by scrubs.\n"
        "# TYPE plinth_scrub_missing_total counter\n"
        "plinth_scrub_missing_total %llu\n"
        "# HELP plinth_scrub_last_completion_timestamp_seconds When a node's scrub pass last completed.\n"
        "# TYPE plinth_scrub_last_completion_timestamp_seconds gauge\n"
        "plinth_scrub_last_completion_timestamp_seconds %lld\n"
        "# HELP plinth_repair_last_completion_timestamp_seconds When a full repair pass last completed.\n"
        "# TYPE plinth_repair_last_completion_timestamp_seconds gauge\n"
        "plinth_repair_last_completion_timestamp_seconds %lld\n"
        "# HELP plinth_gc_versions_total Dead version rows collected.\n"
        "# TYPE plinth_gc_versions_total counter\n"
        "plinth_gc_versions_total %llu\n"
        "# HELP plinth_gc_orphans_total Orphan blob copies deleted.\n"
        "# TYPE plinth_gc_orphans_total counter\n"
        "plinth_gc_orphans_total %llu\n"
        "# HELP plinth_health_probes_total Data node health probes sent.\n"
        "# TYPE plinth_health_probes_total counter\n"
        "plinth_health_probes_total %llu\n"
        "# HELP plinth_repaird_leader 1 when this instance holds the lock and works.\n"
        "# TYPE plinth_repaird_leader gauge\n"
        "plinth_repaird_leader %d\n"
        "# HELP plinth_repaird_db_up 1 while the PostgreSQL session is up.\n"
        "# TYPE plinth_repaird_db_up gauge\n"
        "plinth_repaird_db_up %d\n",
        L(replicate_ops), L(scrub_repair_ops), L(gc_ops), L(rebalance_ops),
        L(repair_failures),
        (long long) ur,
        (long long) __atomic_load_n(&s->misplaced, __ATOMIC_RELAXED),
        (long long) __atomic_load_n(&s->lost, __ATOMIC_RELAXED),
        L(scrub_checked), L(scrub_corrupt), L(scrub_missing),
        (long long) __atomic_load_n(&s->scrub_last_completed, __ATOMIC_RELAXED),
        (long long) __atomic_load_n(&s->repair_last_completed,
                                    __ATOMIC_RELAXED),
        L(gc_versions), L(gc_orphans), L(health_probes),
        __atomic_load_n(&s->leader, __ATOMIC_RELAXED),
        __atomic_load_n(&s->db_up, __ATOMIC_RELAXED));
#undef L
    if (n >= cap) {
        n = cap - 1;
    }
    if (n < cap) {
#define L(v) (unsigned long long) __atomic_load_n(&s->v, __ATOMIC_RELAXED)
        n += (size_t) snprintf(buf + n, cap - n,
            "# HELP plinth_tier_moves_total Object versions moved to another "
            "tier by lifecycle or access rules.\n"
            "# TYPE plinth_tier_moves_total counter\n"
            "plinth_tier_moves_total %llu\n"
            "# HELP plinth_tier_move_failures_total Tier moves given up (a "
            "copy failed, or the version changed meanwhile).\n"
            "# TYPE plinth_tier_move_failures_total counter\n"
            "plinth_tier_move_failures_total %llu\n"
            "# HELP plinth_lifecycle_expirations_total Versions deleted by "
            "lifecycle Expiration rules.\n"
            "# TYPE plinth_lifecycle_expirations_total counter\n"
            "plinth_lifecycle_expirations_total %llu\n",
            L(tier_moves), L(tier_move_failures), L(lifecycle_expirations));
#undef L
        if (n >= cap) {
            n = cap - 1;
        }
    }
    n = rd_metrics_objects(s, buf, n, cap);
    n = rd_metrics_nodes(buf, n, cap);
    resp = MHD_create_response_from_buffer(n, buf, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(buf);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4");
    ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}


/*
 * Versions stored per tier (from the last full repair pass; none before
 * it). "plinth_objects_total" is the name operators' dashboards expect; it
 * is a count that goes down as well as up, so it is exposed untyped (a
 * gauge may not end in _total, a counter may not go down).
 */
static size_t
rd_metrics_objects(rd_stats *s, char *buf, size_t n, size_t cap)
{
    static const char  *tiers[3] = { "hot", "warm", "cold" };
    int                 t;
    int64_t             v;

    if (n >= cap
        || __atomic_load_n(&s->objects[0], __ATOMIC_RELAXED) < 0)
    {
        return n;
    }
    n += (size_t) snprintf(buf + n, cap - n,
        "# HELP plinth_objects_total Object versions stored (committed, not "
        "delete markers; current and noncurrent), by tier, at the last full "
        "repair pass.\n"
        "# TYPE plinth_objects_total untyped\n");
    for (t = 0; t < 3 && n < cap; t++) {
        v = __atomic_load_n(&s->objects[t], __ATOMIC_RELAXED);
        n += (size_t) snprintf(buf + n, cap - n,
                               "plinth_objects_total{tier=\"%s\"} %lld\n",
                               tiers[t], (long long) v);
    }
    if (n < cap) {
        n += (size_t) snprintf(buf + n, cap - n,
            "# HELP plinth_stored_bytes Logical bytes of those versions (one "
            "copy), by tier.\n"
            "# TYPE plinth_stored_bytes gauge\n");
    }
    for (t = 0; t < 3 && n < cap; t++) {
        v = __atomic_load_n(&s->stored_bytes[t], __ATOMIC_RELAXED);
        n += (size_t) snprintf(buf + n, cap - n,
                               "plinth_stored_bytes{tier=\"%s\"} %lld\n",
                               tiers[t], (long long) v);
    }
    return n >= cap ? cap - 1 : n;
}


static struct MHD_Daemon *
rd_metrics_start(const char *listen)
{
    struct sockaddr_in   sin;
    char                 host[64];
    const char          *colon;
    size_t               hl;
    long                 port;

    colon = strrchr(listen, ':');
    if (colon == NULL) {
        return NULL;
    }
    hl = (size_t) (colon - listen);
    if (hl >= sizeof(host)) {
        return NULL;
    }
    memcpy(host, listen, hl);
    host[hl] = '\0';
    port = strtol(colon + 1, NULL, 10);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t) port);
    if (strcmp(host, "*") == 0 || hl == 0) {
        sin.sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
        return NULL;
    }
    return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO,
            0, NULL, NULL, rd_metrics, NULL,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sin,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 10,
            MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int) 1,
            MHD_OPTION_END);
}


/* ------------------------------------------------------------ loop */

static void
rd_loop(rd_ctx *x)
{
    double  now, health_due = 0, repair_due = 0, scrub_due = 0,
            lock_due = 0, next, connect_due = 0, gc_due = 0, rebal_due = 0,
            lc_due = 0;
    int     more, q, r;

    while (!rd_stop) {
        now = rd_now();

        if (rd_hup) {
            rd_hup = 0;
            rd_log(RD_LOG_INFO, "SIGHUP: re-reading the cluster file");
            if (rd_cluster_apply(x) == 0) {
                health_due = repair_due = rebal_due = 0;
                x->rebal_after[0] = '\0';
                x->rebal_misplaced = 0;
                __atomic_store_n(&x->stats.misplaced, -1, __ATOMIC_RELAXED);
                __atomic_store_n(&x->stats.under_replicated, -1,
                                 __ATOMIC_RELAXED);
                rd_log(RD_LOG_INFO, "cluster file applied: misplaced and "
                       "under-replicated counts are -1 until the next full "
                       "pass");
            }
        }

        if (!rd_db_ok(x)) {
            if (x->pg != NULL) {
                rd_db_close(x);
            }
            if (now < connect_due) {
                rd_sleep(connect_due - now);
                continue;
            }
            connect_due = now + 1;
            if (rd_db_connect(x) != 0) {
                continue;
            }
            lock_due = 0;
        }

        if (!x->leader) {
            if (now < lock_due) {
                rd_sleep(lock_due - now < 0.5 ? lock_due - now : 0.5);
                continue;
            }
            lock_due = now + x->cf.lock_retry;
            r = rd_db_try_lock(x);
            if (r <= 0) {
                continue;
            }
            /* a fresh worker: probe first, repair after one round */
            x->health_rounds = 0;
            x->repair_after[0] = '\0';
            health_due = repair_due = scrub_due = gc_due = rebal_due = now;
            lc_due = now;
            x->rebal_after[0] = '\0';
            x->rebal_misplaced = 0;
        }

        if (now >= health_due) {
            health_due = now + x->cf.health_interval;
            if (rd_health_round(x) != 0) {
                continue;
            }
            q = rd_queue_pending(x);
            if (q < 0) {
                continue;
            }
            if (q > 0 && repair_due > now) {
                repair_due = now;
            }
        }

        if (x->health_rounds > 0 && now >= repair_due) {
            if (rd_repair_step(x, &more) != 0) {
                continue;
            }
            repair_due = more ? now : rd_now() + x->cf.repair_interval;
        }

        if (x->health_rounds > 0 && x->cf.scrub_interval > 0
            && now >= scrub_due)
        {
            if (rd_scrub_step(x, &more) != 0) {
                continue;
            }
            /* a page found work: look at the queue soon */
            scrub_due = more ? rd_now() : rd_now()
                        + (x->cf.health_interval < x->cf.scrub_interval
                           ? x->cf.health_interval : x->cf.scrub_interval);
            if (more) {
                q = rd_queue_pending(x);
                if (q > 0 && repair_due > rd_now()) {
                    repair_due = rd_now();
                }
            }
        }

        if (x->health_rounds > 0 && x->cf.gc_interval > 0 && now >= gc_due) {
            if (rd_gc_step(x, &more) != 0) {
                continue;
            }
            gc_due = more ? rd_now() : rd_now() + x->cf.gc_interval;
        }

        if (x->health_rounds > 0 && x->cf.rebalance_interval > 0
            && now >= rebal_due && repair_due > now)
        {
            if (rd_rebalance_step(x, &more) != 0) {
                continue;
            }
            rebal_due = more ? rd_now() : rd_now() + x->cf.rebalance_interval;
        }

        /* lifecycle and access tiering: after repair, like rebalancing */
        if (x->health_rounds > 0 && x->cf.lifecycle_interval > 0
            && now >= lc_due && repair_due > now)
        {
            if (rd_lifecycle_step(x, &more) != 0) {
                continue;
            }
            lc_due = more ? rd_now() : rd_now() + x->cf.lifecycle_interval;
        }

        next = health_due;
        if (x->health_rounds > 0 && x->cf.lifecycle_interval > 0
            && lc_due < next)
        {
            next = lc_due;
        }
        if (x->health_rounds > 0 && x->cf.rebalance_interval > 0
            && rebal_due < next)
        {
            next = rebal_due;
        }
        if (x->health_rounds > 0 && x->cf.gc_interval > 0 && gc_due < next) {
            next = gc_due;
        }
        if (x->health_rounds > 0 && repair_due < next) {
            next = repair_due;
        }
        if (x->health_rounds > 0 && x->cf.scrub_interval > 0
            && scrub_due < next)
        {
            next = scrub_due;
        }
        now = rd_now();
        if (next > now) {
            rd_sleep(next - now);
        }
    }
}


static void
rd_usage(void)
{
    fprintf(stderr, "usage: plinth-repaird -c repaird.yaml [-t] | -v\n");
}


int
main(int argc, char **argv)
{
    struct sigaction    sa;
    struct MHD_Daemon  *md = NULL;
    const char         *path = NULL;
    char                err[1024], inst[128], host[64];
    int                 opt, test = 0;
    FILE               *pf;

    while ((opt = getopt(argc, argv, "c:thv")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test = 1;
            break;
        case 'v':
            printf("plinth-repaird %s\n", RD_VERSION);
            return 0;
        default:
            rd_usage();
            return opt == 'h' ? 0 : 1;
        }
    }
    if (path == NULL || optind != argc) {
        rd_usage();
        return 1;
    }

    if (rd_config_load(path, &rd.cf, err, sizeof(err)) != 0) {
        rd_log(RD_LOG_ERROR, "bad configuration: %s", err);
        return 1;
    }
    rd.cf_path = path;
    if (test) {
        rd_node_conf  *nc;
        size_t         n;
        if (rd_cluster_load(rd.cf.cluster, &nc, &n, err, sizeof(err)) != 0) {
            fprintf(stderr, "plinth-repaird: %s\n", err);
            rd_config_free(&rd.cf);
            return 1;
        }
        rd_nodes_free(nc, n);
        if (rd_http_init(&rd.cf, err, sizeof(err)) != 0) {
            fprintf(stderr, "plinth-repaird: %s\n", err);
            rd_config_free(&rd.cf);
            return 1;
        }
        rd_http_done();
        printf("plinth-repaird: configuration %s is ok\n", path);
        rd_config_free(&rd.cf);
        return 0;
    }

    rd_log_level = rd.cf.log_level;
    if (rd.cf.instance == NULL) {
        if (gethostname(host, sizeof(host)) != 0) {
            snprintf(host, sizeof(host), "localhost");
        }
        host[sizeof(host) - 1] = '\0';
        snprintf(inst, sizeof(inst), "%s:%d", host, (int) getpid());
        rd_log_instance = inst;
    } else {
        rd_log_instance = rd.cf.instance;
    }
    rd.stats.under_replicated = -1;
    rd.stats.objects[0] = rd.stats.objects[1] = rd.stats.objects[2] = -1;
    rd.stats.misplaced = -1;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = rd_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (rd_http_init(&rd.cf, err, sizeof(err)) != 0) {
        rd_log(RD_LOG_ERROR, "%s", err);
        return 1;
    }
    if (rd_cluster_apply(&rd) != 0) {
        rd_http_done();
        return 1;
    }
    if (rd.cf.listen != NULL) {
        md = rd_metrics_start(rd.cf.listen);
        if (md == NULL) {
            rd_log(RD_LOG_ERROR, "cannot serve /metrics on %s (an IPv4 "
                   "host:port)", rd.cf.listen);
            rd_http_done();
            return 1;
        }
    }
    if (rd.cf.pid_file != NULL) {
        pf = fopen(rd.cf.pid_file, "w");
        if (pf != NULL) {
            fprintf(pf, "%d\n", (int) getpid());
            fclose(pf);
        }
    }
    rd_log(RD_LOG_INFO, "plinth-repaird %s started: rf %u, health every "
           "%.3gs, offline after %.3gs, repair every %.3gs, scrub every "
           "%.3gs%s%s", RD_VERSION, rd.cf.rf, rd.cf.health_interval,
           rd.cf.offline_after, rd.cf.repair_interval, rd.cf.scrub_interval,
           rd.cf.listen ? ", metrics on " : "",
           rd.cf.listen ? rd.cf.listen : "");

    rd_loop(&rd);

    rd_log(RD_LOG_INFO, "stopping");
    rd.leader = 0;
    if (md != NULL) {
        MHD_stop_daemon(md);
    }
    rd_db_close(&rd);
    rd_http_done();
    if (rd.cf.pid_file != NULL) {
        unlink(rd.cf.pid_file);
    }
    return 0;
}
