/*
 * work.c -- what the working repaird does: health probes, repair steps,
 * scrub steps. Each step is bounded (one batch of blobs, one scrub page
 * of one node) so the loop in main.c keeps probing health between them.
 *
 * Repair of one blob (idempotent: a crash anywhere leaves either the old
 * placement, with maybe an unrecorded verified copy that the next pass
 * finds again - a retried pull of the same blob answers 201 - or the new
 * placement):
 *   1. good = its recorded nodes that are up and not queued as bad;
 *   2. targets = the ring's next nodes for its key (the gateway's key:
 *      "bucket/key", or the blob id for a part), skipping good, offline,
 *      suspect and full nodes, as many as RF - |good|;
 *   3. each target pulls the blob from a good replica (the data node
 *      verifies the copy: whole-blob XXH3 equal to the source's, every
 *      block read back); a node holding a bad copy deletes it first;
 *   4. one transaction (plinth_repair_placement) adds the verified copies
 *      and drops the bad ones - and the offline ones once RF good copies
 *      exist - from every row naming the blob.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plinth.pb-c.h"
#include "repaird.h"

#define RD_LIST_MAX   10000000     /* ids held for one scrub page check */

typedef struct {
    uint32_t  v[RD_MAX_NODES];
    size_t    n;
} rd_ids;

static void rd_ids_parse(const char *s, rd_ids *ids);
static int rd_ids_has(const rd_ids *ids, uint32_t v);


double
rd_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


void
rd_sleep(double s)
{
    double           end = rd_now() + s, left;
    struct timespec  ts;

    while (!rd_stop && (left = end - rd_now()) > 0) {
        if (left > 0.1) {
            left = 0.1;
        }
        ts.tv_sec = (time_t) left;
        ts.tv_nsec = (long) ((left - (double) ts.tv_sec) * 1e9);
        nanosleep(&ts, NULL);
    }
}


/* ------------------------------------------------------------ cluster */

typedef struct {
    void   **p;
    size_t   n, cap;
} rd_arena;


static void *
rd_ring_alloc(void *ctx, size_t size)
{
    rd_arena  *a = ctx;
    void     **np;

    if (a->n == a->cap) {
        np = realloc(a->p, (a->cap ? a->cap * 2 : 16) * sizeof(void *));
        if (np == NULL) {
            return NULL;
        }
        a->p = np;
        a->cap = a->cap ? a->cap * 2 : 16;
    }
    a->p[a->n] = malloc(size);
    return a->p[a->n] ? a->p[a->n++] : NULL;
}


static void
rd_arena_free(rd_arena *a)
{
    size_t  i;

    if (a == NULL) {
        return;
    }
    for (i = 0; i < a->n; i++) {
        free(a->p[i]);
    }
    free(a->p);
    free(a);
}


/* (Re)reads the cluster file and rebuilds the ring; keeps the old one on
 * error. Nodes that stay keep their last known status. */
int
rd_cluster_apply(rd_ctx *x)
{
    rd_node_conf        *nc;
    rd_node             *nodes;
    plinth_ring_node_t  *rn;
    plinth_ring_t       *ring;
    rd_arena            *arena;
    size_t               n, i, j;
    char                 err[512];

    if (rd_cluster_load(x->cf.cluster, &nc, &n, err, sizeof(err)) != 0) {
        rd_log(RD_LOG_ERROR, "cluster file: %s", err);
        return -1;
    }
    nodes = calloc(n, sizeof(*nodes));
    rn = calloc(n, sizeof(*rn));
    arena = calloc(1, sizeof(*arena));
    if (nodes == NULL || rn == NULL || arena == NULL) {
        goto nomem;
    }
    for (i = 0; i < n; i++) {
        rn[i].id = nc[i].id;
        rn[i].weight = nc[i].weight;
        rn[i].zone = nc[i].zone;
        rn[i].tier = nc[i].tier;
    }
    ring = plinth_ring_create(rn, n, 0, rd_ring_alloc, arena);
    if (ring == NULL) {
        goto nomem;
    }
    for (i = 0; i < n; i++) {
        nodes[i].c = nc[i];
        nodes[i].status = RD_NODE_ONLINE;
        for (j = 0; j < x->nnodes; j++) {
            if (x->nodes[j].c.id == nc[i].id) {
                nodes[i] = x->nodes[j];
                nodes[i].c = nc[i];
                nodes[i].status = x->nodes[j].status;
                nodes[i].full = x->nodes[j].full;
                nodes[i].probed = x->nodes[j].probed;
            }
        }
    }
    free(nc);                       /* the strings now belong to nodes[] */
    free(rn);
    pthread_mutex_lock(&rd_nodes_mutex);
    for (j = 0; j < x->nnodes; j++) {
        free(x->nodes[j].c.address);
        free(x->nodes[j].c.zone);
        free(x->nodes[j].c.tier);
    }
    free(x->nodes);
    x->nodes = nodes;
    x->nnodes = n;
    pthread_mutex_unlock(&rd_nodes_mutex);
    rd_arena_free(x->ring_mem);
    x->ring = ring;
    x->ring_mem = arena;
    x->scrub_node = 0;
    rd_log(RD_LOG_INFO, "cluster: %zu data nodes", n);
    return 0;

nomem:
    rd_log(RD_LOG_ERROR, "cluster file: out of memory");
    rd_nodes_free(nc, n);
    free(nodes);
    free(rn);
    rd_arena_free(arena);
    return -1;
}


static rd_node *
rd_node_by_id(rd_ctx *x, uint32_t id)
{
    size_t  i;

    for (i = 0; i < x->nnodes; i++) {
        if (x->nodes[i].c.id == id) {
            return &x->nodes[i];
        }
    }
    return NULL;
}




/* ------------------------------------------------------------ health */

int
rd_health_round(rd_ctx *x)
{
    rd_http_answer      *all;
    const char         **addrs;
    Plinth__NodeHealth  *nh;
    rd_node             *nd;
    PGresult            *res;
    size_t               i;
    int                  ok, st;
    char                 id[16], full[8], total[24], used[24], freeb[24],
                         count[24], err[160], off[32];
    const char          *p[10];

    all = calloc(x->nnodes ? x->nnodes : 1, sizeof(*all));
    addrs = calloc(x->nnodes ? x->nnodes : 1, sizeof(*addrs));
    if (all == NULL || addrs == NULL) {
        free(all);
        free(addrs);
        return 0;
    }
    for (i = 0; i < x->nnodes; i++) {
        addrs[i] = x->nodes[i].c.address;
    }
    rd_http_get_all(addrs, x->nnodes, "/health", x->cf.probe_timeout, all);
    free(addrs);

    for (i = 0; i < x->nnodes && !rd_stop; i++) {
        nd = &x->nodes[i];
        nh = NULL;
        ok = 0;
        err[0] = '\0';
        if (all[i].status == 200) {
            nh = plinth__node_health__unpack(NULL, all[i].len, all[i].body);
            ok = nh != NULL;
            if (!ok) {
                snprintf(err, sizeof(err), "undecodable /health answer");
            }
        } else if (all[i].status) {
            snprintf(err, sizeof(err), "HTTP %ld %s", all[i].status,
                     all[i].error);
        } else {
            snprintf(err, sizeof(err), "%s", all[i].error);
        }
        rd_http_answer_free(&all[i]);
        __atomic_add_fetch(&x->stats.health_probes, 1, __ATOMIC_RELAXED);

        snprintf(id, sizeof(id), "%u", nd->c.id);
        /* is_full: takes no new blobs; a read-only data directory
         * ("read_only") neither, though its blobs can still be read */
        snprintf(full, sizeof(full), "%s",
                 nh && (strcmp(nh->status, "full") == 0
                        || strcmp(nh->status, "read_only") == 0) ? "t" : "f");
        snprintf(total, sizeof(total), "%llu",
                 nh ? (unsigned long long) nh->disk_total_bytes : 0ULL);
        snprintf(used, sizeof(used), "%llu",
                 nh ? (unsigned long long) nh->disk_used_bytes : 0ULL);
        snprintf(freeb, sizeof(freeb), "%llu",
                 nh ? (unsigned long long) nh->disk_free_bytes : 0ULL);
        snprintf(count, sizeof(count), "%llu",
                 nh ? (unsigned long long) nh->blob_count : 0ULL);
        snprintf(off, sizeof(off), "%.3f", x->cf.offline_after);
        if (nh != NULL) {
            nd->full = nh->status != NULL
                       && (strcmp(nh->status, "full") == 0
                           || strcmp(nh->status, "read_only") == 0);
            nd->disk_total = nh->disk_total_bytes;
            nd->disk_used = nh->disk_used_bytes;
            nd->blob_count = nh->blob_count;
            plinth__node_health__free_unpacked(nh, NULL);
        }

        p[0] = id; p[1] = nd->c.address; p[2] = ok ? "t" : "f";
        p[3] = full; p[4] = total; p[5] = used; p[6] = freeb; p[7] = count;
        p[8] = ok ? NULL : err; p[9] = off;
        res = rd_db_exec(x, "SELECT old_status, new_status FROM "
                "plinth_node_probe($1::integer, $2, $3::boolean, $4::boolean, "
                "$5::bigint, $6::bigint, $7::bigint, $8::bigint, $9, "
                "$10::double precision)", 10, p);
        if (res == NULL) {
            for (; i < x->nnodes; i++) {
                rd_http_answer_free(&all[i]);
            }
            free(all);
            return -1;
        }
        st = strcmp(PQgetvalue(res, 0, 1), "online") == 0 ? RD_NODE_ONLINE
             : strcmp(PQgetvalue(res, 0, 1), "suspect") == 0 ? RD_NODE_SUSPECT
             : RD_NODE_OFFLINE;
        if (PQgetisnull(res, 0, 0)
            || strcmp(PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1)) != 0)
        {
            rd_log(st == RD_NODE_ONLINE ? RD_LOG_INFO : RD_LOG_WARN,
                   "node %u (%s): %s -> %s%s%s", nd->c.id, nd->c.address,
                   PQgetisnull(res, 0, 0) ? "new" : PQgetvalue(res, 0, 0),
                   PQgetvalue(res, 0, 1), ok ? "" : ": ", ok ? "" : err);
        }
        PQclear(res);
        nd->status = st;
        nd->probed = 1;
    }
    for (; i < x->nnodes; i++) {
        rd_http_answer_free(&all[i]);
    }
    free(all);
    res = rd_db_exec(x, "SELECT coalesce(array_agg(node_id)::text, '{}') "
                     "FROM node_admin WHERE draining", 0, NULL);
    if (res == NULL) {
        return -1;
    }
    {
        rd_ids  dr;
        rd_ids_parse(PQgetvalue(res, 0, 0), &dr);
        for (i = 0; i < x->nnodes; i++) {
            st = rd_ids_has(&dr, x->nodes[i].c.id);
            if (st != x->nodes[i].draining) {
                rd_log(RD_LOG_INFO, "node %u: %s", x->nodes[i].c.id,
                       st ? "draining" : "no longer draining");
                /* the ideal placement changed: a new rebalancing pass */
                x->rebal_after[0] = '\0';
                x->rebal_misplaced = 0;
                __atomic_store_n(&x->stats.misplaced, -1, __ATOMIC_RELAXED);
            }
            x->nodes[i].draining = st;
        }
    }
    PQclear(res);
    x->health_rounds++;
    return 0;
}


/* ------------------------------------------------------------ helpers */

static void
rd_ids_parse(const char *s, rd_ids *ids)
{
    char           *end;
    unsigned long   v;

    ids->n = 0;
    while (*s != '\0' && ids->n < RD_MAX_NODES) {
        if (*s < '0' || *s > '9') {
            s++;
            continue;
        }
        v = strtoul(s, &end, 10);
        ids->v[ids->n++] = (uint32_t) v;
        s = end;
    }
}


static int
rd_ids_has(const rd_ids *ids, uint32_t v)
{
    size_t  i;

    for (i = 0; i < ids->n; i++) {
        if (ids->v[i] == v) {
            return 1;
        }
    }
    return 0;
}


static void
rd_ids_add(rd_ids *ids, uint32_t v)
{
    if (!rd_ids_has(ids, v) && ids->n < RD_MAX_NODES) {
        ids->v[ids->n++] = v;
    }
}


/* "{1,2,3}" */
static void
rd_ids_format(const rd_ids *ids, char *buf, size_t len)
{
    size_t  i, n = 0;

    n += (size_t) snprintf(buf + n, len - n, "{");
    for (i = 0; i < ids->n && n < len; i++) {
        n += (size_t) snprintf(buf + n, len - n, "%s%u", i ? "," : "",
                               ids->v[i]);
    }
    if (n < len) {
        snprintf(buf + n, len - n, "}");
    }
}


static void
rd_live_ids(rd_ctx *x, rd_ids *live)
{
    size_t  i;

    live->n = 0;
    for (i = 0; i < x->nnodes; i++) {
        if (x->nodes[i].status != RD_NODE_OFFLINE) {
            rd_ids_add(live, x->nodes[i].c.id);
        }
    }
}


/* Queue (blob, node) as bad if the node is in the blob's placement. */
static int
rd_report(rd_ctx *x, const char *hex, uint32_t node, const char *reason)
{
    PGresult    *res;
    char         id[16];
    const char  *p[3];

    snprintf(id, sizeof(id), "%u", node);
    p[0] = hex; p[1] = id; p[2] = reason;
    res = rd_db_exec(x,
        "INSERT INTO repair_queue (blob_id, node_id, reason) "
        "SELECT $1::uuid, $2::integer, $3 WHERE EXISTS ("
        "  SELECT 1 FROM plinth_live_blobs l WHERE l.blob_id = $1::uuid "
        "  AND $2::integer = ANY (l.nodes)) "
        "ON CONFLICT (blob_id, node_id) DO NOTHING", 3, p);
    if (res == NULL) {
        return -1;
    }
    if (strcmp(PQcmdTuples(res), "1") == 0) {
        rd_log(RD_LOG_WARN, "blob %s on node %u: %s, queued for repair",
               hex, node, reason);
    }
    PQclear(res);
    return 0;
}


/* After a failed pull from src: is src's copy bad? Then queue it. */
static void
rd_check_source(rd_ctx *x, const char *hex, rd_node *src)
{
    rd_http_answer  a;
    char            path[96];

    snprintf(path, sizeof(path), "/blobs/%s/verify", hex);
    if (rd_http("GET", src->c.address, path, x->cf.http_timeout, &a) == 0) {
        if (a.status == 404) {
            rd_report(x, hex, src->c.id, "missing");
        } else if (a.status == 500 && strcmp(a.error, "corrupt") == 0) {
            rd_report(x, hex, src->c.id, "corrupt");
        }
    }
    rd_http_answer_free(&a);
}


/*
 * Has target t pull hex (size bytes; -1: unknown, asked of a source) from
 * one of the good replicas. 1: copied. The request's timeout grows with
 * the size: http_timeout plus a second per MiB.
 */
static int
rd_pull(rd_ctx *x, const char *hex, rd_node *t, const rd_ids *good,
    int64_t size)
{
    rd_http_answer  a;
    rd_node        *src;
    char            path[512];
    size_t          i, pass;
    int             retried = 0;
    double          timeout;

    for (i = 0; size < 0 && i < good->n; i++) {
        src = rd_node_by_id(x, good->v[i]);
        if (src == NULL || src->status != RD_NODE_ONLINE) {
            continue;
        }
        snprintf(path, sizeof(path), "/blobs/%s", hex);
        if (rd_http("HEAD", src->c.address, path, x->cf.http_timeout, &a) == 0
            && a.status == 200)
        {
            size = strtoll(a.size, NULL, 10);
        }
        rd_http_answer_free(&a);
    }
    timeout = x->cf.http_timeout + (size > 0 ? (double) size / 1048576 : 0);

    /* online sources first, then suspect ones */
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < good->n && !rd_stop; i++) {
            src = rd_node_by_id(x, good->v[i]);
            if (src == NULL || src == t
                || (pass == 0) != (src->status == RD_NODE_ONLINE))
            {
                continue;
            }
        again:
            snprintf(path, sizeof(path), "/blobs/%s/pull?from=%s", hex,
                     src->c.address);
            rd_http("POST", t->c.address, path, timeout, &a);
            if (a.status == 201) {
                rd_log(RD_LOG_INFO, "blob %s: copied from node %u to node "
                       "%u, verified (request %s)", hex, src->c.id, t->c.id,
                       rd_request_id());
                rd_http_answer_free(&a);
                return 1;
            }
            rd_log(RD_LOG_WARN, "blob %s: pull from node %u to node %u "
                   "failed: %ld %s (request %s)", hex, src->c.id, t->c.id,
                   a.status, a.error, rd_request_id());
            rd_http_answer_free(&a);
            if (a.status == 409 && !retried) {
                /* an unrecorded, different copy is in the way: drop it */
                snprintf(path, sizeof(path), "/blobs/%s", hex);
                rd_http("DELETE", t->c.address, path, x->cf.http_timeout, &a);
                rd_http_answer_free(&a);
                retried = 1;
                goto again;
            }
            if (a.status == 502 && strcmp(a.error, "source_failed") == 0) {
                rd_check_source(x, hex, src);
            }
            if (a.status == 0 || a.status == 507) {
                return 0;           /* the target itself is the problem */
            }
        }
    }
    return 0;
}


static void
rd_rate_limit(rd_ctx *x, double *next)
{
    double  now;

    if (x->cf.repair_rate <= 0) {
        return;
    }
    now = rd_now();
    if (*next > now) {
        rd_sleep(*next - now);
        now = *next;
    }
    *next = now + 1.0 / x->cf.repair_rate;
}


static int
rd_repair_blob(rd_ctx *x, const char *hex, const char *rkey, int64_t size,
    const rd_ids *nodes, const rd_ids *good, const rd_ids *bad,
    const char *tier, double *next)
{
    rd_ids       exclude, add, remove;
    uint32_t     out[RD_MAX_RF];
    size_t       i, nt = 0;
    rd_node     *t;
    int          need;
    PGresult    *res;
    char         sadd[256], srem[256], path[96];
    const char  *p[4];
    rd_http_answer  a;

    if (good->n == 0) {
        rd_log(RD_LOG_ERROR, "blob %s (%s): no good replica left; cannot "
               "repair", hex, rkey);
        __atomic_add_fetch(&x->stats.repair_failures, 1, __ATOMIC_RELAXED);
        /* its queue rows wait for the regular passes, not every probe */
        p[0] = hex;
        res = rd_db_exec(x, "UPDATE repair_queue SET attempts = attempts + 1, "
                         "last_error = 'no good replica' "
                         "WHERE blob_id = $1::uuid", 1, p);
        if (res == NULL) {
            return -1;
        }
        PQclear(res);
        return 0;
    }

    need = (int) x->cf.rf - (int) good->n;
    exclude = *good;
    for (i = 0; i < x->nnodes; i++) {
        if (x->nodes[i].status != RD_NODE_ONLINE || x->nodes[i].full
            || x->nodes[i].draining)
        {
            rd_ids_add(&exclude, x->nodes[i].c.id);
        }
    }
    if (need > 0) {
        /* new copies on nodes of the blob's tier (sql/017) */
        nt = plinth_ring_lookup(x->ring, rkey, strlen(rkey),
                                plinth_ring_tier_or_hotter(x->ring, tier),
                                exclude.v, exclude.n, (size_t) need, out);
    }

    add.n = 0;
    for (i = 0; i < nt && !rd_stop; i++) {
        t = rd_node_by_id(x, out[i]);
        if (t == NULL) {
            continue;
        }
        rd_rate_limit(x, next);
        if (rd_ids_has(bad, t->c.id)) {
            /* reported bad: delete its copy only if it is (a wrong report
             * must not cost a good copy); a good one is simply kept */
            snprintf(path, sizeof(path), "/blobs/%s/verify", hex);
            rd_http("GET", t->c.address, path,
                    x->cf.http_timeout + (size > 0 ? (double) size / 1048576
                                                   : 0), &a);
            rd_http_answer_free(&a);
            if (a.status == 200) {
                rd_log(RD_LOG_INFO, "blob %s: the copy on node %u reported "
                       "bad verifies: kept", hex, t->c.id);
                rd_ids_add(&add, t->c.id);
                continue;
            }
            if (a.status == 500 && strcmp(a.error, "corrupt") == 0) {
                snprintf(path, sizeof(path), "/blobs/%s", hex);
                rd_http("DELETE", t->c.address, path, x->cf.http_timeout, &a);
                rd_http_answer_free(&a);
            }
        }
        if (rd_pull(x, hex, t, good, size)) {
            rd_ids_add(&add, t->c.id);
            __atomic_add_fetch(bad->n ? &x->stats.scrub_repair_ops
                                      : &x->stats.replicate_ops,
                               1, __ATOMIC_RELAXED);
        } else {
            __atomic_add_fetch(&x->stats.repair_failures, 1,
                               __ATOMIC_RELAXED);
        }
    }

    /* drop bad copies always; copies on down nodes once RF good ones exist */
    remove.n = 0;
    for (i = 0; i < nodes->n; i++) {
        if (rd_ids_has(good, nodes->v[i])) {
            continue;
        }
        if (rd_ids_has(bad, nodes->v[i])
            || good->n + add.n >= x->cf.rf)
        {
            rd_ids_add(&remove, nodes->v[i]);
        }
    }
    for (i = 0; i < bad->n; i++) {
        rd_ids_add(&remove, bad->v[i]);
    }

    if (add.n == 0 && remove.n == 0) {
        if (need > 0 && nt == 0) {
            rd_log(RD_LOG_WARN, "blob %s: %zu of %u replicas and no node to "
                   "copy it to", hex, good->n, x->cf.rf);
        }
        return 0;
    }

    rd_ids_format(&add, sadd, sizeof(sadd));
    rd_ids_format(&remove, srem, sizeof(srem));
    p[0] = hex; p[1] = sadd; p[2] = srem; p[3] = tier;
    res = rd_db_exec(x, "SELECT plinth_repair_placement($1::uuid, "
                     "$2::integer[], $3::integer[], $4)", 4, p);
    if (res == NULL) {
        return -1;
    }
    rd_log(RD_LOG_INFO, "blob %s: placement +%s -%s (%s rows)", hex, sadd,
           srem, PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}


int
rd_repair_step(rd_ctx *x, int *more)
{
    PGresult    *res;
    rd_ids       live, nodes, good, bad;
    char         slive[RD_MAX_NODES * 7], rf[16], lim[16];
    const char  *p[4];
    int          i, n;
    double       next = 0, budget;

    *more = 0;
    rd_live_ids(x, &live);
    rd_ids_format(&live, slive, sizeof(slive));
    snprintf(rf, sizeof(rf), "%u", x->cf.rf);
    snprintf(lim, sizeof(lim), "%u", x->cf.repair_batch);
    p[0] = slive; p[1] = rf;
    p[2] = x->repair_after[0] ? x->repair_after : NULL;
    p[3] = lim;
    res = rd_db_exec(x, "SELECT replace(blob_id::text, '-', ''), rkey, "
                     "nodes::text, good::text, bad::text, size, tier FROM "
                     "plinth_repair_candidates($1::integer[], $2::integer, "
                     "$3::uuid, $4::integer)", 4, p);
    if (res == NULL) {
        return -1;
    }
    n = PQntuples(res);
    /* a step stops after health_interval, so probes keep their pace */
    budget = rd_now() + (x->cf.health_interval > 1 ? x->cf.health_interval
                                                   : 1);
    for (i = 0; i < n && !rd_stop; i++) {
        if (i > 0 && rd_now() > budget) {
            PQclear(res);
            *more = 1;
            return 0;
        }
        rd_ids_parse(PQgetvalue(res, i, 2), &nodes);
        rd_ids_parse(PQgetvalue(res, i, 3), &good);
        rd_ids_parse(PQgetvalue(res, i, 4), &bad);
        if (rd_repair_blob(x, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                           strtoll(PQgetvalue(res, i, 5), NULL, 10),
                           &nodes, &good, &bad, PQgetvalue(res, i, 6),
                           &next) != 0)
        {
            PQclear(res);
            return -1;
        }
        snprintf(x->repair_after, sizeof(x->repair_after), "%s",
                 PQgetvalue(res, i, 0));
    }
    PQclear(res);
    if (n == (int) x->cf.repair_batch && !rd_stop) {
        *more = 1;
        return 0;
    }
    x->repair_after[0] = '\0';
    __atomic_store_n(&x->stats.repair_last_completed, (int64_t) time(NULL),
                     __ATOMIC_RELAXED);
    /* reports about copies no live placement names (the blob was
     * collected, or the node is no longer in its placement) */
    res = rd_db_exec(x, "DELETE FROM repair_queue q WHERE NOT EXISTS ("
                     "SELECT 1 FROM plinth_live_blobs l "
                     "WHERE l.blob_id = q.blob_id "
                     "AND q.node_id = ANY (l.nodes))", 0, NULL);
    if (res == NULL) {
        return -1;
    }
    PQclear(res);
    return rd_count_under_replicated(x);
}


int
rd_count_under_replicated(rd_ctx *x)
{
    PGresult    *res;
    rd_ids       live;
    char         slive[RD_MAX_NODES * 7], rf[16];
    const char  *p[2];

    rd_live_ids(x, &live);
    rd_ids_format(&live, slive, sizeof(slive));
    snprintf(rf, sizeof(rf), "%u", x->cf.rf);
    p[0] = slive; p[1] = rf;
    res = rd_db_exec(x, "SELECT count(*) FILTER (WHERE cardinality(good) < "
                     "$2::integer), count(*) FILTER (WHERE cardinality(good) "
                     "= 0) FROM plinth_repair_candidates($1::integer[], "
                     "$2::integer, NULL, NULL)", 2, p);
    if (res == NULL) {
        return -1;
    }
    __atomic_store_n(&x->stats.under_replicated,
                     strtoll(PQgetvalue(res, 0, 0), NULL, 10),
                     __ATOMIC_RELAXED);
    __atomic_store_n(&x->stats.lost, strtoll(PQgetvalue(res, 0, 1), NULL, 10),
                     __ATOMIC_RELAXED);
    PQclear(res);
    return rd_count_objects(x);
}


/*
 * Versions stored and their bytes, per tier: from cost_tracking (sql/016),
 * kept by a trigger, so a few rows per bucket are read, never versions.
 */
int
rd_count_objects(rd_ctx *x)
{
    static const char  *tiers[3] = { "hot", "warm", "cold" };
    PGresult           *res;
    int                 i, t;
    int64_t             objects[3] = { 0, 0, 0 }, bytes[3] = { 0, 0, 0 };

    res = rd_db_exec(x, "SELECT tier, sum(versions), sum(stored_bytes) "
                     "FROM cost_tracking GROUP BY tier", 0, NULL);
    if (res == NULL) {
        return -1;
    }
    for (i = 0; i < PQntuples(res); i++) {
        for (t = 0; t < 3; t++) {
            if (strcmp(PQgetvalue(res, i, 0), tiers[t]) == 0) {
                objects[t] = strtoll(PQgetvalue(res, i, 1), NULL, 10);
                bytes[t] = strtoll(PQgetvalue(res, i, 2), NULL, 10);
            }
        }
    }
    PQclear(res);
    for (t = 0; t < 3; t++) {
        __atomic_store_n(&x->stats.objects[t], objects[t], __ATOMIC_RELAXED);
        __atomic_store_n(&x->stats.stored_bytes[t], bytes[t],
                         __ATOMIC_RELAXED);
    }
    return 0;
}


/* 1 when the repair queue has rows (a gateway or a scrub reported). */
int
rd_queue_pending(rd_ctx *x)
{
    PGresult  *res;
    int        n;

    res = rd_db_exec(x, "SELECT EXISTS (SELECT 1 FROM repair_queue "
                     "WHERE attempts = 0)", 0, NULL);
    if (res == NULL) {
        return -1;
    }
    n = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return n;
}


/* ------------------------------------------------------------ scrub */

static int
rd_cmp_id(const void *a, const void *b)
{
    return strcmp((const char *) a, (const char *) b);
}


/*
 * The node's blob ids in (after, upto] (upto "": to the end), sorted, in
 * a malloc'd array of 33-byte strings. -1 on error.
 */
static int
rd_node_listing(rd_ctx *x, rd_node *nd, const char *after, const char *upto,
    char **ids, int64_t **mtimes, size_t *n)
{
    int64_t           *nm;
    rd_http_answer     a;
    Plinth__BlobList  *bl;
    char               path[128], cur[RD_ID_LEN + 1], *nb;
    size_t             cap = 0, i;
    int                done = 0;

    *ids = NULL;
    *mtimes = NULL;
    *n = 0;
    snprintf(cur, sizeof(cur), "%s", after);
    while (!done && !rd_stop) {
        snprintf(path, sizeof(path), "/blobs?limit=10000%s%s",
                 cur[0] ? "&after=" : "", cur);
        if (rd_http("GET", nd->c.address, path, x->cf.http_timeout, &a) != 0
            || a.status != 200)
        {
            rd_http_answer_free(&a);
            goto failed;
        }
        bl = plinth__blob_list__unpack(NULL, a.len, a.body);
        rd_http_answer_free(&a);
        if (bl == NULL) {
            goto failed;
        }
        done = !bl->truncated || bl->n_blobs == 0;
        for (i = 0; i < bl->n_blobs; i++) {
            if (upto[0] && strcmp(bl->blobs[i]->id, upto) > 0) {
                done = 1;
                break;
            }
            if (*n == cap) {
                if (cap >= RD_LIST_MAX) {
                    plinth__blob_list__free_unpacked(bl, NULL);
                    goto failed;
                }
                cap = cap ? cap * 2 : 1024;
                nb = realloc(*ids, cap * (RD_ID_LEN + 1));
                if (nb != NULL) {
                    *ids = nb;
                }
                nm = realloc(*mtimes, cap * sizeof(int64_t));
                if (nm != NULL) {
                    *mtimes = nm;
                }
                if (nb == NULL || nm == NULL) {
                    plinth__blob_list__free_unpacked(bl, NULL);
                    goto failed;
                }
            }
            (*mtimes)[*n] = bl->blobs[i]->mtime;
            snprintf(*ids + *n * (RD_ID_LEN + 1), RD_ID_LEN + 1, "%s",
                     bl->blobs[i]->id);
            (*n)++;
            snprintf(cur, sizeof(cur), "%s", bl->blobs[i]->id);
        }
        plinth__blob_list__free_unpacked(bl, NULL);
    }
    return 0;

failed:
    free(*ids);
    free(*mtimes);
    *ids = NULL;
    *mtimes = NULL;
    *n = 0;
    return -1;
}


/*
 * Blobs the database places on nd in (after, upto] that the node does not
 * have: queued as missing. Only references older than scrub_grace count.
 */
static int rd_gc_orphans(rd_ctx *x, rd_node *nd, const char *ids,
    const int64_t *mtimes, size_t n);


static int
rd_scrub_missing(rd_ctx *x, rd_node *nd, const char *after, const char *upto,
    uint64_t *missing)
{
    PGresult    *res;
    char        *ids, id[16], grace[32], key[RD_ID_LEN + 1];
    int64_t     *mtimes;
    size_t       n;
    int          i, rows;
    const char  *p[4];

    if (rd_node_listing(x, nd, after, upto, &ids, &mtimes, &n) != 0) {
        rd_log(RD_LOG_WARN, "scrub of node %u: cannot list its blobs", nd->c.id);
        return 0;
    }
    snprintf(id, sizeof(id), "%u", nd->c.id);
    snprintf(grace, sizeof(grace), "%.3f", x->cf.scrub_grace);
    p[0] = id;
    p[1] = after[0] ? after : NULL;
    p[2] = upto[0] ? upto : NULL;
    p[3] = grace;
    res = rd_db_exec(x, "SELECT replace(blob_id::text, '-', '') FROM "
                     "plinth_node_blobs($1::integer, $2::uuid, $3::uuid, "
                     "clock_timestamp() - make_interval(secs => "
                     "$4::double precision))", 4, p);
    if (res == NULL) {
        free(ids);
        free(mtimes);
        return -1;
    }
    rows = PQntuples(res);
    for (i = 0; i < rows; i++) {
        snprintf(key, sizeof(key), "%s", PQgetvalue(res, i, 0));
        if (n > 0 && bsearch(key, ids, n, RD_ID_LEN + 1, rd_cmp_id) != NULL) {
            continue;
        }
        (*missing)++;
        rd_report(x, key, nd->c.id, "missing");
    }
    PQclear(res);
    rows = x->cf.gc_interval > 0 ? rd_gc_orphans(x, nd, ids, mtimes, n) : 0;
    free(ids);
    free(mtimes);
    return rows;
}


/*
 * One scrub page on the next node whose pass is due (in progress, never
 * done, or done scrub_interval ago): the node verifies scrub_batch blobs;
 * corrupt ones and blobs missing from the range are queued for repair.
 * *more: another page (of some node) is due now.
 */
int
rd_scrub_step(rd_ctx *x, int *more)
{
    PGresult          *res;
    rd_node           *nd = NULL;
    rd_http_answer     a;
    Plinth__BlobList  *bl;
    size_t             k, i;
    char               id[16], ival[32], path[128], after[RD_ID_LEN + 1],
                       upto[RD_ID_LEN + 1], chk[24], cor[24], mis[24];
    const char        *p[6];
    uint64_t           corrupt = 0, missing = 0, checked;
    int                truncated, due;

    *more = 0;
    if (x->cf.scrub_interval <= 0 || x->nnodes == 0) {
        return 0;
    }
    snprintf(ival, sizeof(ival), "%.3f", x->cf.scrub_interval);

    for (k = 0; k < x->nnodes; k++) {
        nd = &x->nodes[(x->scrub_node + k) % x->nnodes];
        if (nd->status != RD_NODE_ONLINE) {
            continue;
        }
        snprintf(id, sizeof(id), "%u", nd->c.id);
        p[0] = id; p[1] = ival;
        res = rd_db_exec(x,
            "WITH ins AS (INSERT INTO scrub_progress (node_id) "
            "  VALUES ($1::integer) ON CONFLICT DO NOTHING) "
            "SELECT coalesce(cursor, ''), pass_started IS NOT NULL "
            "    OR last_completed IS NULL OR last_completed < "
            "    clock_timestamp() - make_interval(secs => $2::double precision) "
            "FROM scrub_progress WHERE node_id = $1::integer "
            "UNION ALL SELECT '', true LIMIT 1", 2, p);
        if (res == NULL) {
            return -1;
        }
        snprintf(after, sizeof(after), "%s", PQgetvalue(res, 0, 0));
        due = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
        PQclear(res);
        if (due) {
            x->scrub_node = (x->scrub_node + k + 1) % x->nnodes;
            break;
        }
        nd = NULL;
    }
    if (nd == NULL) {
        return 0;
    }

    res = rd_db_exec(x, "UPDATE scrub_progress SET pass_started = "
                     "clock_timestamp(), cursor = NULL, checked = 0, "
                     "corrupt = 0, missing = 0 WHERE node_id = $1::integer "
                     "AND pass_started IS NULL", 1, p);
    if (res == NULL) {
        return -1;
    }
    if (strcmp(PQcmdTuples(res), "1") == 0) {
        after[0] = '\0';
        rd_log(RD_LOG_INFO, "scrub of node %u: pass begins", nd->c.id);
    }
    PQclear(res);

    snprintf(path, sizeof(path), "/scrub?limit=%u%s%s", x->cf.scrub_batch,
             after[0] ? "&after=" : "", after);
    if (rd_http("GET", nd->c.address, path, x->cf.http_timeout, &a) != 0
        || a.status != 200)
    {
        rd_log(RD_LOG_WARN, "scrub of node %u failed: %ld %s", nd->c.id,
               a.status, a.error);
        rd_http_answer_free(&a);
        return 0;
    }
    bl = plinth__blob_list__unpack(NULL, a.len, a.body);
    snprintf(upto, sizeof(upto), "%s", a.scrub_last);
    checked = strtoull(a.scrub_checked, NULL, 10);
    rd_http_answer_free(&a);
    if (bl == NULL) {
        rd_log(RD_LOG_WARN, "scrub of node %u: undecodable answer", nd->c.id);
        return 0;
    }
    truncated = bl->truncated;
    for (i = 0; i < bl->n_blobs; i++) {
        corrupt++;
        if (rd_report(x, bl->blobs[i]->id, nd->c.id, "corrupt") != 0) {
            plinth__blob_list__free_unpacked(bl, NULL);
            return -1;
        }
    }
    plinth__blob_list__free_unpacked(bl, NULL);

    if (!truncated) {
        upto[0] = '\0';             /* the last page covers the rest */
    }
    if (rd_scrub_missing(x, nd, after, upto, &missing) != 0) {
        return -1;
    }
    __atomic_add_fetch(&x->stats.scrub_corrupt, corrupt, __ATOMIC_RELAXED);
    __atomic_add_fetch(&x->stats.scrub_missing, missing, __ATOMIC_RELAXED);
    snprintf(chk, sizeof(chk), "%llu", (unsigned long long) checked);
    snprintf(cor, sizeof(cor), "%llu", (unsigned long long) corrupt);
    snprintf(mis, sizeof(mis), "%llu", (unsigned long long) missing);
    __atomic_add_fetch(&x->stats.scrub_checked, checked, __ATOMIC_RELAXED);
    p[0] = id;
    p[1] = truncated ? upto : NULL;
    p[2] = cor; p[3] = mis; p[4] = truncated ? "f" : "t"; p[5] = chk;
    res = rd_db_exec(x, "UPDATE scrub_progress SET cursor = $2, "
        "corrupt = corrupt + $3::bigint, missing = missing + $4::bigint, "
        "checked = checked + $6::bigint, "
        "last_completed = CASE WHEN $5::boolean THEN clock_timestamp() "
        "                 ELSE last_completed END, "
        "pass_started = CASE WHEN $5::boolean THEN NULL ELSE pass_started END "
        "WHERE node_id = $1::integer "
        "RETURNING corrupt, missing, checked", 6, p);
    if (res == NULL) {
        return -1;
    }
    nd->scrub_checked = truncated ? strtoull(PQgetvalue(res, 0, 2), NULL, 10)
                                  : 0;
    if (!truncated) {
        rd_log(RD_LOG_INFO, "scrub of node %u: pass complete, %s corrupt, "
               "%s missing", nd->c.id, PQgetvalue(res, 0, 0),
               PQgetvalue(res, 0, 1));
        nd->scrub_done = 1;
        nd->scrub_completed = (int64_t) time(NULL);
        __atomic_store_n(&x->stats.scrub_last_completed, (int64_t) time(NULL),
                         __ATOMIC_RELAXED);
    }
    PQclear(res);
    *more = 1;
    return 0;
}


/* ------------------------------------------------------------ gc */

/* DELETE one copy. 1: gone (204 or 404), 0: not now (node down, error). */
static int
rd_delete_copy(rd_ctx *x, const char *hex, uint32_t node)
{
    rd_http_answer  a;
    rd_node        *nd = rd_node_by_id(x, node);
    char            path[64];
    int             ok;

    if (nd == NULL || nd->status != RD_NODE_ONLINE) {
        return 0;
    }
    snprintf(path, sizeof(path), "/blobs/%s", hex);
    rd_http("DELETE", nd->c.address, path, x->cf.http_timeout, &a);
    ok = a.status == 204 || a.status == 404;
    if (a.status == 204) {
        rd_log(RD_LOG_DEBUG, "gc: blob %s deleted on node %u", hex, node);
        __atomic_add_fetch(&x->stats.gc_ops, 1, __ATOMIC_RELAXED);
    } else if (!ok) {
        rd_log(RD_LOG_WARN, "gc: delete of blob %s on node %u failed: %ld %s",
               hex, node, a.status, a.error);
    }
    rd_http_answer_free(&a);
    return ok;
}


/*
 * Orphans among a scrub page's listing: copies no row names on this node,
 * older than orphan_grace by the node's clock of their mtime.
 */
static int
rd_gc_orphans(rd_ctx *x, rd_node *nd, const char *ids, const int64_t *mtimes,
    size_t n)
{
    PGresult    *res;
    char        *arr, *q, id[16];
    const char  *p[2];
    size_t       i, k = 0;
    int64_t      limit = (int64_t) time(NULL) - (int64_t) x->cf.orphan_grace;
    int          rows, j;

    arr = malloc(n * (RD_ID_LEN + 1) + 3);
    if (arr == NULL) {
        return 0;
    }
    q = arr;
    *q++ = '{';
    for (i = 0; i < n; i++) {
        if (mtimes[i] >= limit) {
            continue;
        }
        if (k++ > 0) {
            *q++ = ',';
        }
        memcpy(q, ids + i * (RD_ID_LEN + 1), RD_ID_LEN);
        q += RD_ID_LEN;
    }
    *q++ = '}';
    *q = '\0';
    if (k == 0) {
        free(arr);
        return 0;
    }
    snprintf(id, sizeof(id), "%u", nd->c.id);
    p[0] = id;
    p[1] = arr;
    res = rd_db_exec(x, "SELECT blob_id FROM plinth_gc_orphans($1::integer, "
                     "$2::uuid[])", 2, p);
    free(arr);
    if (res == NULL) {
        return -1;
    }
    rows = PQntuples(res);
    for (j = 0; j < rows && !rd_stop; j++) {
        if (rd_delete_copy(x, PQgetvalue(res, j, 0), nd->c.id)) {
            rd_log(RD_LOG_INFO, "gc: orphan blob %s removed from node %u",
                   PQgetvalue(res, j, 0), nd->c.id);
            __atomic_add_fetch(&x->stats.gc_orphans, 1, __ATOMIC_RELAXED);
        }
    }
    PQclear(res);
    return 0;
}


/*
 * One garbage collection step: expire old uploads and pending writes,
 * then up to gc_batch dead versions and gc_batch garbage_blobs rows. A
 * copy that cannot be deleted now (its node down) is kept: as a
 * garbage_blobs row for a version (so the version row can go), as the
 * row's remaining nodes for a garbage_blobs row. *more: a batch was full.
 */
int
rd_gc_step(rd_ctx *x, int *more)
{
    PGresult    *res, *r2;
    char         grace[32], age1[32], age2[32], lim[16], cur[64], failed[256];
    const char  *p[3];
    int          i, n, nfail = 0, done = 0, rows_done = 0;
    rd_ids       fails;

    *more = 0;
    snprintf(grace, sizeof(grace), "%.3f", x->cf.gc_grace);
    snprintf(age1, sizeof(age1), "%.3f", x->cf.upload_max_age);
    snprintf(age2, sizeof(age2), "%.3f", x->cf.pending_grace);
    snprintf(lim, sizeof(lim), "%u", x->cf.gc_batch);

    p[0] = age1; p[1] = age2;
    res = rd_db_exec(x, "SELECT plinth_gc_expire_uploads($1::double precision), "
                     "plinth_gc_pending($2::double precision)", 2, p);
    if (res == NULL) {
        return -1;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "0") != 0
        || strcmp(PQgetvalue(res, 0, 1), "0") != 0)
    {
        rd_log(RD_LOG_INFO, "gc: %s expired uploads aborted, %s pending "
               "writes dropped", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    }
    PQclear(res);

    /* dead versions: rows (version, blob, node)..., then (version, NULL) */
    p[0] = grace; p[1] = lim;
    res = rd_db_exec(x, "SELECT version_id, blob_id, node FROM "
                     "plinth_gc_versions($1::double precision, $2::integer)",
                     2, p);
    if (res == NULL) {
        return -1;
    }
    n = PQntuples(res);
    for (i = 0; i < n && !rd_stop; i++) {
        if (!PQgetisnull(res, i, 1)) {
            if (!rd_delete_copy(x, PQgetvalue(res, i, 1),
                                (uint32_t) atoi(PQgetvalue(res, i, 2))))
            {
                p[0] = PQgetvalue(res, i, 1);
                p[1] = PQgetvalue(res, i, 2);
                r2 = rd_db_exec(x, "INSERT INTO garbage_blobs (blob_id, nodes, "
                                "reason) VALUES ($1::uuid, "
                                "ARRAY[$2::integer], 'gc retry')", 2, p);
                if (r2 == NULL) {
                    PQclear(res);
                    return -1;
                }
                PQclear(r2);
            }
            continue;
        }
        p[0] = PQgetvalue(res, i, 0);
        r2 = rd_db_exec(x, "SELECT plinth_gc_version_done($1::bigint)", 1, p);
        if (r2 == NULL) {
            PQclear(res);
            return -1;
        }
        if (strcmp(PQgetvalue(r2, 0, 0), "t") == 0) {
            __atomic_add_fetch(&x->stats.gc_versions, 1, __ATOMIC_RELAXED);
            if (x->stats.gc_versions % 100 == 1) {
                rd_log(RD_LOG_INFO, "gc: dead version %s collected (%llu so "
                       "far)", p[0], (unsigned long long) x->stats.gc_versions);
            }
        }
        PQclear(r2);
        done++;
    }
    PQclear(res);
    if (done == (int) x->cf.gc_batch) {
        *more = 1;
    }

    /* garbage_blobs rows: (row, blob, node)..., then (row, NULL) */
    p[0] = grace; p[1] = lim;
    res = rd_db_exec(x, "SELECT row_id, blob_id, node FROM "
                     "plinth_gc_garbage_blobs($1::double precision, "
                     "$2::integer)", 2, p);
    if (res == NULL) {
        return -1;
    }
    n = PQntuples(res);
    cur[0] = '\0';
    fails.n = 0;
    for (i = 0; i < n && !rd_stop; i++) {
        if (strcmp(cur, PQgetvalue(res, i, 0)) != 0) {
            snprintf(cur, sizeof(cur), "%s", PQgetvalue(res, i, 0));
            fails.n = 0;
        }
        if (!PQgetisnull(res, i, 1)) {
            if (!rd_delete_copy(x, PQgetvalue(res, i, 1),
                                (uint32_t) atoi(PQgetvalue(res, i, 2))))
            {
                rd_ids_add(&fails, (uint32_t) atoi(PQgetvalue(res, i, 2)));
                nfail++;
            }
            continue;
        }
        rd_ids_format(&fails, failed, sizeof(failed));
        p[0] = cur;
        p[1] = failed;
        r2 = rd_db_exec(x, fails.n == 0
            ? "DELETE FROM garbage_blobs WHERE ctid = $1::tid"
            : "UPDATE garbage_blobs SET nodes = $2::integer[] "
              "WHERE ctid = $1::tid",
            fails.n == 0 ? 1 : 2, p);
        if (r2 == NULL) {
            PQclear(res);
            return -1;
        }
        PQclear(r2);
        rows_done++;
    }
    PQclear(res);
    if (rows_done == (int) x->cf.gc_batch && nfail == 0) {
        *more = 1;
    }
    return 0;
}


/* ------------------------------------------------------------ rebalance */

/*
 * One rebalancing step: up to repair_batch blobs (in id order from the
 * cursor) are compared with their ideal placement, the ring's RF nodes
 * for their key without draining or full nodes. A blob on a node the
 * ring no longer names gets a verified copy on the node it does name,
 * then one transaction adds that node and drops the other (its copy goes
 * to garbage_blobs: GETs that already read the old placement still find
 * it until garbage collection, gc_grace later). Runs only while every
 * node is online and the last repair pass left nothing under-replicated:
 * repair comes first. At most rebalance_rate copies a second.
 */
int
rd_rebalance_step(rd_ctx *x, int *more)
{
    PGresult    *res, *r2;
    rd_ids       nodes, ideal, want, extra, add, remove, good;
    uint32_t     out[RD_MAX_RF];
    rd_ids       exclude;
    rd_node     *t;
    const char  *p[4], *hex, *rkey;
    char         lim[16], sadd[256], srem[256];
    size_t       i, j, k, nt, can_drop;
    int          n, r, all_online;
    double       next = 0, saved_rate, budget;

    *more = 0;
    if (x->cf.rebalance_interval <= 0) {
        return 0;
    }
    for (i = 0; i < x->nnodes; i++) {
        if (x->nodes[i].status != RD_NODE_ONLINE || !x->nodes[i].probed) {
            return 0;               /* repair's time, not ours */
        }
    }
    if (__atomic_load_n(&x->stats.under_replicated, __ATOMIC_RELAXED) != 0) {
        return 0;
    }

    exclude.n = 0;
    for (i = 0; i < x->nnodes; i++) {
        if (x->nodes[i].draining || x->nodes[i].full) {
            rd_ids_add(&exclude, x->nodes[i].c.id);
        }
    }
    snprintf(lim, sizeof(lim), "%u", x->cf.repair_batch);
    p[0] = x->rebal_after[0] ? x->rebal_after : NULL;
    p[1] = lim;
    res = rd_db_exec(x, "SELECT replace(blob_id::text, '-', ''), rkey, "
                     "nodes::text, tier FROM plinth_placements($1::uuid, "
                     "$2::integer)", 2, p);
    if (res == NULL) {
        return -1;
    }
    n = PQntuples(res);
    saved_rate = x->cf.repair_rate;
    x->cf.repair_rate = x->cf.rebalance_rate;

    budget = rd_now() + (x->cf.health_interval > 1 ? x->cf.health_interval
                                                   : 1);
    for (r = 0; r < n && !rd_stop; r++) {
        if (r > 0 && rd_now() > budget) {
            x->cf.repair_rate = saved_rate;
            PQclear(res);
            *more = 1;
            return 0;
        }
        hex = PQgetvalue(res, r, 0);
        rkey = PQgetvalue(res, r, 1);
        rd_ids_parse(PQgetvalue(res, r, 2), &nodes);
        snprintf(x->rebal_after, sizeof(x->rebal_after), "%s", hex);

        all_online = 1;
        for (i = 0; i < nodes.n; i++) {
            t = rd_node_by_id(x, nodes.v[i]);
            if (t == NULL || t->status != RD_NODE_ONLINE) {
                all_online = 0;
            }
        }
        if (!all_online || nodes.n < x->cf.rf) {
            continue;               /* repair handles it (or a write in
                                     * flight is adding its last copy) */
        }

        /* the ideal nodes are of the blob's tier (sql/017) */
        nt = plinth_ring_lookup(x->ring, rkey, strlen(rkey),
                                plinth_ring_tier_or_hotter(x->ring,
                                    PQgetvalue(res, r, 3)),
                                exclude.v, exclude.n, x->cf.rf, out);
        ideal.n = 0;
        for (i = 0; i < nt; i++) {
            rd_ids_add(&ideal, out[i]);
        }
        want.n = extra.n = 0;
        for (i = 0; i < ideal.n; i++) {
            if (!rd_ids_has(&nodes, ideal.v[i])) {
                rd_ids_add(&want, ideal.v[i]);
            }
        }
        /* draining nodes first among the copies to drop */
        for (k = 0; k < 2; k++) {
            for (i = 0; i < nodes.n; i++) {
                t = rd_node_by_id(x, nodes.v[i]);
                if (!rd_ids_has(&ideal, nodes.v[i])
                    && (k == 0) == (t != NULL && t->draining))
                {
                    rd_ids_add(&extra, nodes.v[i]);
                }
            }
        }
        if (want.n == 0 && (extra.n == 0 || nodes.n <= x->cf.rf)) {
            continue;
        }
        x->rebal_misplaced++;

        add.n = 0;
        good = nodes;
        for (i = 0; i < want.n && !rd_stop; i++) {
            t = rd_node_by_id(x, want.v[i]);
            if (t == NULL) {
                continue;
            }
            rd_rate_limit(x, &next);
            if (rd_pull(x, hex, t, &good, -1)) {
                rd_ids_add(&add, t->c.id);
                __atomic_add_fetch(&x->stats.rebalance_ops, 1,
                                   __ATOMIC_RELAXED);
            }
        }

        /* keep at least RF copies */
        can_drop = nodes.n + add.n > x->cf.rf ? nodes.n + add.n - x->cf.rf : 0;
        remove.n = 0;
        for (j = 0; j < extra.n && remove.n < can_drop; j++) {
            rd_ids_add(&remove, extra.v[j]);
        }
        if (add.n == 0 && remove.n == 0) {
            continue;
        }
        if (add.n == want.n && remove.n == extra.n) {
            x->rebal_misplaced--;
        }
        rd_ids_format(&add, sadd, sizeof(sadd));
        rd_ids_format(&remove, srem, sizeof(srem));
        p[0] = hex; p[1] = sadd; p[2] = srem; p[3] = PQgetvalue(res, r, 3);
        r2 = rd_db_exec(x, "SELECT plinth_repair_placement($1::uuid, "
                        "$2::integer[], $3::integer[], $4)", 4, p);
        if (r2 == NULL) {
            x->cf.repair_rate = saved_rate;
            PQclear(res);
            return -1;
        }
        rd_log(RD_LOG_INFO, "blob %s: moved, placement +%s -%s", hex, sadd,
               srem);
        PQclear(r2);
    }
    x->cf.repair_rate = saved_rate;
    PQclear(res);

    if (n == (int) x->cf.repair_batch && !rd_stop) {
        *more = 1;
        return 0;
    }
    __atomic_store_n(&x->stats.misplaced, x->rebal_misplaced,
                     __ATOMIC_RELAXED);
    if (x->rebal_misplaced > 0) {
        rd_log(RD_LOG_INFO, "rebalance pass: %lld blobs still misplaced",
               (long long) x->rebal_misplaced);
    }
    x->rebal_misplaced = 0;
    x->rebal_after[0] = '\0';
    return 0;
}


/* ------------------------------------------------------------ lifecycle */

static int rd_tier_move_parts(rd_ctx *x, const char *version,
    const char *rkey, const char *from, const char *to, const char *reason,
    double *next);

/* A storage class's node tier (sql/015's plinth_storage_class_tier). */
static const char *
rd_class_tier(const char *cls)
{
    if (strcmp(cls, "STANDARD_IA") == 0) {
        return "warm";
    }
    if (strcmp(cls, "GLACIER") == 0 || strcmp(cls, "DEEP_ARCHIVE") == 0) {
        return "cold";
    }
    return "hot";
}


/* Gives up copies this pass made (garbage collection deletes them unless
 * some row names them). */
static void
rd_give_up_copies(rd_ctx *x, const char *hex, const rd_ids *made,
    const char *why)
{
    char         s[256];
    const char  *p[3];
    PGresult    *res;

    if (made->n == 0) {
        return;
    }
    rd_ids_format(made, s, sizeof(s));
    p[0] = hex; p[1] = s; p[2] = why;
    res = rd_db_exec(x, "INSERT INTO garbage_blobs (blob_id, nodes, reason) "
                     "VALUES ($1::uuid, $2::integer[], $3)", 3, p);
    if (res != NULL) {
        PQclear(res);
    }
}


/*
 * Moves one version (a single blob) to class to: verified copies on the
 * ring's RF nodes of the class's tier (the data node's pull verifies every
 * block before it answers 201), then one transaction (plinth_tier_move)
 * records the new nodes and class if nothing changed meanwhile and hands
 * the old copies to garbage collection. 1: moved; 0: not now.
 */
static int
rd_tier_move(rd_ctx *x, const char *version, const char *hex,
    const char *rkey, const char *nodes_s, int64_t size, const char *from,
    const char *to, const char *reason, double *next)
{
    rd_ids       old, exclude, made, want;
    uint32_t     out[RD_MAX_RF];
    size_t       i, nt;
    rd_node     *t;
    const char  *tier, *p[5];
    char         sold[256], snew[256];
    PGresult    *res;
    int          ok;

    rd_ids_parse(nodes_s, &old);
    tier = plinth_ring_tier_or_hotter(x->ring, rd_class_tier(to));

    exclude.n = 0;
    for (i = 0; i < x->nnodes; i++) {
        if (x->nodes[i].status != RD_NODE_ONLINE || x->nodes[i].full
            || x->nodes[i].draining)
        {
            rd_ids_add(&exclude, x->nodes[i].c.id);
        }
    }
    nt = plinth_ring_lookup(x->ring, rkey, strlen(rkey), tier, exclude.v,
                            exclude.n, x->cf.rf, out);
    if (nt < x->cf.rf) {
        rd_log(RD_LOG_WARN, "version %s (%s): %zu usable nodes of tier %s "
               "for a move to %s, RF %u: not now", version, rkey, nt,
               tier ? tier : "any", to, x->cf.rf);
        __atomic_add_fetch(&x->stats.tier_move_failures, 1, __ATOMIC_RELAXED);
        return 0;
    }

    made.n = want.n = 0;
    ok = 1;
    for (i = 0; i < nt && !rd_stop; i++) {
        rd_ids_add(&want, out[i]);
        if (rd_ids_has(&old, out[i])) {
            continue;               /* a copy already there */
        }
        t = rd_node_by_id(x, out[i]);
        if (t == NULL) {
            ok = 0;
            break;
        }
        rd_rate_limit(x, next);
        if (!rd_pull(x, hex, t, &old, size)) {
            ok = 0;
            break;
        }
        rd_ids_add(&made, out[i]);
    }
    if (!ok || rd_stop) {
        rd_log(RD_LOG_WARN, "version %s (%s): move to %s failed; copies "
               "made are given up", version, rkey, to);
        rd_give_up_copies(x, hex, &made, "tier move abandoned");
        __atomic_add_fetch(&x->stats.tier_move_failures, 1, __ATOMIC_RELAXED);
        return 0;
    }

    rd_ids_format(&old, sold, sizeof(sold));
    rd_ids_format(&want, snew, sizeof(snew));
    p[0] = version; p[1] = sold; p[2] = snew; p[3] = from; p[4] = to;
    res = rd_db_exec(x, "SELECT plinth_tier_move($1::bigint, $2::integer[], "
                     "$3::integer[], $4, $5)", 5, p);
    if (res == NULL) {
        return -1;
    }
    if (PQgetvalue(res, 0, 0)[0] != 't') {
        PQclear(res);
        rd_log(RD_LOG_INFO, "version %s (%s): changed during its move to "
               "%s; copies made are given up", version, rkey, to);
        rd_give_up_copies(x, hex, &made, "tier move superseded");
        __atomic_add_fetch(&x->stats.tier_move_failures, 1, __ATOMIC_RELAXED);
        return 0;
    }
    PQclear(res);
    __atomic_add_fetch(&x->stats.tier_moves, 1, __ATOMIC_RELAXED);
    rd_log(RD_LOG_INFO, "version %s (%s, blob %s): moved %s -> %s (%s), "
           "nodes %s -> %s", version, rkey, hex, from, to, reason, sold,
           snew);
    return 1;
}


/*
 * One lifecycle step: the access rule's read windows are brought up to
 * date, then up to repair_batch things due (plinth_lifecycle_due:
 * lifecycle Transitions, Expirations, NoncurrentVersionExpirations, the
 * access rule's moves) are done, at rebalance_rate copies a second. Each
 * pass asks the database afresh, so a stopped repaird resumes where the
 * data says, not where it was.
 */
int
rd_lifecycle_step(rd_ctx *x, int *more)
{
    PGresult    *res, *r2;
    const char  *p[2], *action;
    char         day[64], lim[16];
    int          n, i, done = 0, rc;
    double       next = 0, saved_rate, budget;

    *more = 0;
    snprintf(day, sizeof(day), "%.6f", x->cf.lifecycle_day_seconds);
    snprintf(lim, sizeof(lim), "%u", x->cf.repair_batch);
    p[0] = day; p[1] = lim;

    res = rd_db_exec(x, "SELECT plinth_tiering_windows($1::float8)", 1, p);
    if (res == NULL) {
        return -1;
    }
    PQclear(res);

    res = rd_db_exec(x, "SELECT action, version_id, target, reason, blob_id, "
                     "rkey, nodes, size, storage_class "
                     "FROM plinth_lifecycle_due($1::float8, $2::integer)",
                     2, p);
    if (res == NULL) {
        return -1;
    }
    n = PQntuples(res);
    saved_rate = x->cf.repair_rate;
    x->cf.repair_rate = x->cf.rebalance_rate;
    budget = rd_now() + (x->cf.health_interval > 1 ? x->cf.health_interval
                                                   : 1);

    for (i = 0; i < n && !rd_stop; i++) {
        if (i > 0 && rd_now() > budget) {
            *more = done > 0;
            break;
        }
        action = PQgetvalue(res, i, 0);

        if (strcmp(action, "move") == 0 && PQgetisnull(res, i, 4)) {
            rc = rd_tier_move_parts(x, PQgetvalue(res, i, 1),
                                    PQgetvalue(res, i, 5),
                                    PQgetvalue(res, i, 8),
                                    PQgetvalue(res, i, 2),
                                    PQgetvalue(res, i, 3), &next);
            if (rc < 0) {
                x->cf.repair_rate = saved_rate;
                PQclear(res);
                return -1;
            }
            done += rc;
            continue;
        }

        if (strcmp(action, "move") == 0) {
            rc = rd_tier_move(x, PQgetvalue(res, i, 1), PQgetvalue(res, i, 4),
                              PQgetvalue(res, i, 5), PQgetvalue(res, i, 6),
                              strtoll(PQgetvalue(res, i, 7), NULL, 10),
                              PQgetvalue(res, i, 8), PQgetvalue(res, i, 2),
                              PQgetvalue(res, i, 3), &next);
            if (rc < 0) {
                x->cf.repair_rate = saved_rate;
                PQclear(res);
                return -1;
            }
            done += rc;
            continue;
        }

        /* expire (the current version) or noncurrent */
        p[0] = PQgetvalue(res, i, 1);
        p[1] = strcmp(action, "expire") == 0 ? "true" : "false";
        r2 = rd_db_exec(x, "SELECT plinth_lifecycle_expire($1::bigint, "
                        "$2::boolean)", 2, p);
        if (r2 == NULL) {
            x->cf.repair_rate = saved_rate;
            PQclear(res);
            return -1;
        }
        if (PQgetvalue(r2, 0, 0)[0] == 't') {
            done++;
            __atomic_add_fetch(&x->stats.lifecycle_expirations, 1,
                               __ATOMIC_RELAXED);
            rd_log(RD_LOG_INFO, "version %s (%s): deleted (%s)",
                   PQgetvalue(res, i, 1), PQgetvalue(res, i, 5),
                   PQgetvalue(res, i, 3));
        }
        PQclear(r2);
    }
    x->cf.repair_rate = saved_rate;
    PQclear(res);

    if (n == (int) x->cf.repair_batch && done > 0 && !rd_stop) {
        *more = 1;
    }
    return 0;
}


/*
 * A multipart version's move: each of its part blobs (distinct, with the
 * union of the nodes its rows name) gets verified copies on the ring's RF
 * nodes of the new tier for its ring key (the blob id, as the gateway
 * placed it), then one transaction (plinth_tier_move_parts) moves every
 * part and the class, if nothing changed meanwhile. 1: moved; 0: not now.
 */
static int
rd_tier_move_parts(rd_ctx *x, const char *version, const char *rkey,
    const char *from, const char *to, const char *reason, double *next)
{
    PGresult    *res, *r2;
    rd_ids       old, exclude, made, want;
    uint32_t     out[RD_MAX_RF];
    size_t       i, nt, len, cap;
    int          n, b, ok = 1;
    rd_node     *t;
    const char  *tier, *p[6], *hex;
    char        *sblobs = NULL, *sold = NULL, *snew = NULL, ids[256];
    rd_ids      *made_all = NULL;

    p[0] = version;
    res = rd_db_exec(x, "SELECT replace(vp.blob_id::text, '-', ''), "
                     "array_agg(DISTINCT n)::text, max(vp.size) "
                     "FROM version_parts vp, unnest(vp.nodes) AS n "
                     "WHERE vp.version_id = $1::bigint "
                     "GROUP BY vp.blob_id ORDER BY vp.blob_id", 1, p);
    if (res == NULL) {
        return -1;
    }
    n = PQntuples(res);
    tier = plinth_ring_tier_or_hotter(x->ring, rd_class_tier(to));

    exclude.n = 0;
    for (i = 0; i < x->nnodes; i++) {
        if (x->nodes[i].status != RD_NODE_ONLINE || x->nodes[i].full
            || x->nodes[i].draining)
        {
            rd_ids_add(&exclude, x->nodes[i].c.id);
        }
    }

    cap = (size_t) n * 300 + 16;
    sblobs = malloc(cap);
    sold = malloc(cap);
    snew = malloc(cap);
    made_all = calloc((size_t) n + 1, sizeof(rd_ids));
    if (n == 0 || sblobs == NULL || sold == NULL || snew == NULL
        || made_all == NULL)
    {
        ok = 0;
        goto done;
    }
    strcpy(sblobs, "{");
    strcpy(sold, "{");
    strcpy(snew, "{");

    for (b = 0; b < n && ok && !rd_stop; b++) {
        hex = PQgetvalue(res, b, 0);
        rd_ids_parse(PQgetvalue(res, b, 1), &old);
        nt = plinth_ring_lookup(x->ring, hex, strlen(hex), tier, exclude.v,
                                exclude.n, x->cf.rf, out);
        if (nt < x->cf.rf) {
            rd_log(RD_LOG_WARN, "version %s (%s): %zu usable nodes of tier "
                   "%s for a part, RF %u: not now", version, rkey, nt,
                   tier ? tier : "any", x->cf.rf);
            ok = 0;
            break;
        }
        made.n = want.n = 0;
        for (i = 0; i < nt && !rd_stop; i++) {
            rd_ids_add(&want, out[i]);
            if (rd_ids_has(&old, out[i])) {
                continue;
            }
            t = rd_node_by_id(x, out[i]);
            rd_rate_limit(x, next);
            if (t == NULL
                || !rd_pull(x, hex, t, &old,
                            strtoll(PQgetvalue(res, b, 2), NULL, 10)))
            {
                ok = 0;
                break;
            }
            rd_ids_add(&made, out[i]);
        }
        made_all[b] = made;
        len = strlen(sblobs);
        snprintf(sblobs + len, cap - len, "%s%s", b ? "," : "", hex);
        rd_ids_format(&old, ids, sizeof(ids));
        len = strlen(sold);
        snprintf(sold + len, cap - len, "%s\"%s\"", b ? "," : "", ids);
        rd_ids_format(&want, ids, sizeof(ids));
        len = strlen(snew);
        snprintf(snew + len, cap - len, "%s\"%s\"", b ? "," : "", ids);
    }
    if (rd_stop) {
        ok = 0;
    }
    if (ok) {
        strcat(sblobs, "}");
        strcat(sold, "}");
        strcat(snew, "}");
        p[0] = version; p[1] = sblobs; p[2] = sold; p[3] = snew;
        p[4] = from; p[5] = to;
        r2 = rd_db_exec(x, "SELECT plinth_tier_move_parts($1::bigint, "
                        "$2::uuid[], $3::text[], $4::text[], $5, $6)", 6, p);
        if (r2 == NULL) {
            ok = -1;
            goto done;
        }
        ok = PQgetvalue(r2, 0, 0)[0] == 't';
        PQclear(r2);
        if (!ok) {
            rd_log(RD_LOG_INFO, "version %s (%s): changed during its move "
                   "to %s", version, rkey, to);
        }
    }

done:
    if (ok == 0) {
        for (b = 0; made_all && b < n; b++) {
            rd_give_up_copies(x, PQgetvalue(res, b, 0), &made_all[b],
                              "tier move abandoned");
        }
        __atomic_add_fetch(&x->stats.tier_move_failures, 1, __ATOMIC_RELAXED);
    } else if (ok == 1) {
        __atomic_add_fetch(&x->stats.tier_moves, 1, __ATOMIC_RELAXED);
        rd_log(RD_LOG_INFO, "version %s (%s, %d part blobs): moved %s -> %s "
               "(%s)", version, rkey, n, from, to, reason);
    }
    free(sblobs);
    free(sold);
    free(snew);
    free(made_all);
    PQclear(res);
    return ok;
}
