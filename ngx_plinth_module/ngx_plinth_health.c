/*
 * What the gateway learns from repaird through PostgreSQL, and what it
 * tells it.
 *
 * Node health: every plinth_health_refresh each worker reads the nodes
 * that must not take new writes (plinth_node_states, sql/014: not online,
 * full, or draining) with a background query, and new writes are placed
 * without them; a node repaird has never probed is not listed (usable).
 * Reads try offline nodes last (they may have come back since). The list is
 * per worker and may be one refresh old; when PostgreSQL cannot be asked,
 * the last list stays. Placement never refuses a write because of it:
 * when too few nodes are left for the write quorum, the write is placed
 * as if all were healthy (the fan-out then decides, as before repaird).
 *
 * GET /health (plinth_health in a location): the cluster as node_health
 * shows it, read from PostgreSQL for each request: {"status": "healthy",
 * "nodes": [...]}, "degraded" while a node is not online or is full, and
 * 503 "unhealthy" when PostgreSQL cannot be asked or fewer than W nodes
 * are online. A node of the cluster file that repaird has never probed is
 * "unknown" and does not count as online: without heartbeats, the gateway
 * cannot say the cluster is healthy.
 *
 * Bad replicas: a read that finds a replica missing (404) or corrupt (the
 * data node's 500: it never sends bytes that fail their checksum) reports
 * it at once (plinth_report_bad_replica), so repaird rebuilds it within a
 * pass rather than at the next scrub. The report is a background query:
 * it outlives the request that found the replica.
 */

#include "ngx_plinth.h"


#define NGX_PLINTH_HEALTH_MAX  256


static void ngx_http_plinth_health_refresh(ngx_event_t *ev);
static void ngx_http_plinth_health_read(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_reported(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_health_got(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);


static uint32_t     ngx_http_plinth_avoid[NGX_PLINTH_HEALTH_MAX];
static size_t       ngx_http_plinth_navoid;
static uint32_t     ngx_http_plinth_offline[NGX_PLINTH_HEALTH_MAX];
static size_t       ngx_http_plinth_noffline;
static ngx_event_t  ngx_http_plinth_health_ev;
static ngx_msec_t   ngx_http_plinth_health_every;
static ngx_log_t   *ngx_http_plinth_health_log;


ngx_int_t
ngx_http_plinth_health_init(ngx_cycle_t *cycle,
    ngx_http_plinth_main_conf_t *pmcf)
{
    ngx_http_plinth_navoid = 0;

    if (pmcf->health_refresh == 0) {
        return NGX_OK;
    }

    ngx_http_plinth_health_every = pmcf->health_refresh;
    ngx_http_plinth_health_log = cycle->log;

    ngx_http_plinth_health_ev.handler = ngx_http_plinth_health_refresh;
    ngx_http_plinth_health_ev.log = cycle->log;
    ngx_http_plinth_health_ev.data = NULL;
    /* a pending refresh never holds up a graceful shutdown */
    ngx_http_plinth_health_ev.cancelable = 1;

    /* the pool connects first: the first read a moment later */
    ngx_add_timer(&ngx_http_plinth_health_ev, 100);

    return NGX_OK;
}


void
ngx_http_plinth_health_exit(void)
{
    if (ngx_http_plinth_health_ev.timer_set) {
        ngx_del_timer(&ngx_http_plinth_health_ev);
    }
}


/* The nodes new writes should avoid, as last read. */
size_t
ngx_http_plinth_health_avoid(const uint32_t **nodes)
{
    *nodes = ngx_http_plinth_avoid;
    return ngx_http_plinth_navoid;
}


/* Whether a read should try this node last (repaird found it offline). */
ngx_uint_t
ngx_http_plinth_health_offline(uint32_t node)
{
    size_t  i;

    for (i = 0; i < ngx_http_plinth_noffline; i++) {
        if (ngx_http_plinth_offline[i] == node) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_http_plinth_health_refresh(ngx_event_t *ev)
{
    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (ngx_plinth_pg_background(ngx_http_plinth_health_log,
                                 NGX_PLINTH_SQL_NODE_AVOID, 0, NULL,
                                 ngx_http_plinth_health_read, NULL)
        != NGX_OK)
    {
        ngx_add_timer(&ngx_http_plinth_health_ev,
                      ngx_http_plinth_health_every);
    }
}


static void
ngx_http_plinth_health_read(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    int        i, n;
    size_t     m, k;
    uint32_t   fresh[NGX_PLINTH_HEALTH_MAX];
    ngx_int_t  id;

    if (rc == NGX_OK && PQresultStatus(res) == PGRES_TUPLES_OK) {
        n = PQntuples(res);
        m = 0;
        k = 0;

        for (i = 0; i < n && m < NGX_PLINTH_HEALTH_MAX; i++) {
            id = ngx_atoi((u_char *) PQgetvalue(res, i, 0),
                          PQgetlength(res, i, 0));
            if (id > 0) {
                fresh[m++] = (uint32_t) id;
                if (PQgetvalue(res, i, 1)[0] == 'f') {
                    ngx_http_plinth_offline[k++] = (uint32_t) id;
                }
            }
        }

        ngx_http_plinth_noffline = k;

        if (m != ngx_http_plinth_navoid
            || ngx_memcmp(fresh, ngx_http_plinth_avoid, m * sizeof(uint32_t)))
        {
            ngx_log_error(NGX_LOG_NOTICE, ngx_http_plinth_health_log, 0,
                          "plinth: %uz data node%s offline, full or "
                          "draining, kept out of new writes",
                          m, m == 1 ? "" : "s");
        }

        ngx_memcpy(ngx_http_plinth_avoid, fresh, m * sizeof(uint32_t));
        ngx_http_plinth_navoid = m;

    } else if (rc == NGX_OK) {
        /* node_health is repaird's table: absent before its migration */
        ngx_log_error(NGX_LOG_WARN, ngx_http_plinth_health_log, 0,
                      "plinth: node health could not be read: %s",
                      PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
    }

    if (!(ngx_exiting || ngx_terminate || ngx_quit)) {
        ngx_add_timer(&ngx_http_plinth_health_ev,
                      ngx_http_plinth_health_every);
    }
}


/* A replica found missing or corrupt: queued for repair at once. */
void
ngx_http_plinth_report_bad_replica(ngx_log_t *log, ngx_str_t *blob,
    uint32_t node, const char *reason)
{
    u_char       id[33], num[NGX_INT32_LEN + 1];
    const char  *params[3];

    if (blob->len != 32) {
        return;
    }

    ngx_memcpy(id, blob->data, 32);
    id[32] = '\0';
    *ngx_sprintf(num, "%uD", node) = '\0';

    params[0] = (char *) id;
    params[1] = (char *) num;
    params[2] = reason;

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "plinth: replica of blob %V on data node %uD is %s: "
                  "queued for repair", blob, node, reason);

    /* the cycle's log: the request's may be gone when the answer comes */
    (void) ngx_plinth_pg_background(ngx_cycle->log, NGX_PLINTH_SQL_REPORT_BAD,
                                    3, params, ngx_http_plinth_reported,
                                    NULL);
}


static void
ngx_http_plinth_reported(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "plinth: a bad replica could not be queued for "
                      "repair (the scrub will find it)");
    }
}


ngx_int_t
ngx_http_plinth_health_handler(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_http_plinth_ctx_t  *ctx;

    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_plinth_module);
    ctx->body_error = NGX_PLINTH_ERR_MAX;
    ngx_http_plinth_request_id(r, ctx);

    r->main->count++;

    if (ngx_http_plinth_pg(r, NGX_PLINTH_SQL_NODE_HEALTH, 0, NULL,
                           ngx_http_plinth_health_got)
        != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    return NGX_DONE;
}


static void
ngx_http_plinth_health_got(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    int                           row, n;
    u_char                       *nodes, *p, *end;
    size_t                        size;
    ngx_buf_t                    *b;
    ngx_uint_t                    i, online, unwell, status, up, full;
    ngx_chain_t                  *cl;
    const char                   *state, *overall;
    ngx_plinth_cluster_node_t    *node;
    ngx_http_plinth_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);

    n = (rc == NGX_OK && PQresultStatus(res) == PGRES_TUPLES_OK)
        ? PQntuples(res) : -1;

    /* the nodes first (the head, which comes first, counts them) */
    size = 128 + (pmcf->nodes ? pmcf->nodes->nelts : 0) * 512;
    nodes = ngx_pnalloc(r->pool, size);
    b = ngx_create_temp_buf(r->pool, size + 128);
    cl = ngx_alloc_chain_link(r->pool);
    if (nodes == NULL || b == NULL || cl == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = nodes;
    end = nodes + size;
    online = 0;
    unwell = 0;

    for (i = 0; pmcf->nodes && i < pmcf->nodes->nelts; i++) {
        node = &((ngx_plinth_cluster_node_t *) pmcf->nodes->elts)[i];

        for (row = 0; row < n; row++) {
            if ((uint32_t) ngx_atoi((u_char *) PQgetvalue(res, row, 0),
                                    PQgetlength(res, row, 0)) == node->id)
            {
                break;
            }
        }

        p = ngx_slprintf(p, end, "%s{\"id\": %uD, \"address\": \"%V\", ",
                         i ? ", " : "", node->id, &node->address);

        if (n < 0 || row == n) {
            p = ngx_slprintf(p, end, "\"status\": \"unknown\"}");
            unwell++;
            continue;
        }

        state = PQgetvalue(res, row, 1);
        up = (ngx_strcmp(state, "online") == 0);
        full = (PQgetvalue(res, row, 2)[0] == 't');
        online += up;
        unwell += (!up || full);

        p = ngx_slprintf(p, end, "\"status\": \"%s\", \"full\": %s, "
                         "\"disk_total_bytes\": %s, "
                         "\"disk_used_bytes\": %s, "
                         "\"last_heartbeat\": %s%s%s}",
                         state, full ? "true" : "false",
                         PQgetisnull(res, row, 3) ? "null"
                                                  : PQgetvalue(res, row, 3),
                         PQgetisnull(res, row, 4) ? "null"
                                                  : PQgetvalue(res, row, 4),
                         PQgetisnull(res, row, 5) ? "" : "\"",
                         PQgetisnull(res, row, 5) ? "null"
                                                  : PQgetvalue(res, row, 5),
                         PQgetisnull(res, row, 5) ? "" : "\"");
    }

    if (n < 0 || online < pmcf->w) {
        overall = "unhealthy";
        status = NGX_HTTP_SERVICE_UNAVAILABLE;
    } else if (unwell) {
        overall = "degraded";
        status = NGX_HTTP_OK;
    } else {
        overall = "healthy";
        status = NGX_HTTP_OK;
    }

    b->last = ngx_slprintf(b->pos, b->end,
                           "{\"status\": \"%s\", \"postgresql\": \"%s\", "
                           "\"online\": %ui, \"write_quorum\": %ui, "
                           "\"nodes\": [%*s]}\n",
                           overall, n < 0 ? "unreachable" : "ok", online,
                           pmcf->w, (size_t) (p - nodes), nodes);

    cl->buf = b;
    cl->next = NULL;

    ngx_http_plinth_finalize(r, ngx_http_plinth_send_body(r, status, cl,
                                                          "application/json"));
}
