/*
 * The data-node upstream: `plinth_cluster <file>` inside an upstream block
 * adds one server per data node of the cluster file and installs Plinth's
 * balancer. The balancer does no choosing of its own: every subrequest to
 * the data nodes carries its replica list (ngx_http_plinth_sr_ctx_t.nodes,
 * in preference order) and the balancer hands those out one try at a time,
 * so proxy_next_upstream walks the replicas in order. A `keepalive`
 * directive after plinth_cluster wraps this balancer with nginx's
 * connection cache, as it wraps round robin.
 *
 * With TLS on the hop (proxy_pass https://...), nginx asks the balancer
 * for a TLS session to resume and hands it the new one (set_session,
 * save_session; without them it calls NULL): one session per data node
 * per worker, as round robin keeps one per peer.
 */

#include "ngx_plinth.h"


typedef struct {
    uint32_t                      id;
    struct sockaddr              *sockaddr;
    socklen_t                     socklen;
    ngx_str_t                     name;
#if (NGX_HTTP_SSL)
    ngx_ssl_session_t            *ssl_session;  /* this worker's, to resume */
#endif
} ngx_http_plinth_peer_t;


typedef struct {
    ngx_http_plinth_peer_t       *peers;
    ngx_uint_t                    npeers;
} ngx_http_plinth_peers_t;


typedef struct {
    ngx_http_plinth_peers_t      *peers;
    ngx_http_plinth_sr_ctx_t     *sctx;
    ngx_http_request_t           *r;
    ngx_uint_t                    next;
    ngx_http_plinth_peer_t       *current;    /* the peer last handed out */
} ngx_http_plinth_peer_data_t;


static ngx_int_t ngx_http_plinth_upstream_init(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_plinth_upstream_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_plinth_upstream_get_peer(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_plinth_upstream_free_peer(ngx_peer_connection_t *pc,
    void *data, ngx_uint_t state);
static void *ngx_http_plinth_ring_alloc(void *ctx, size_t size);
#if (NGX_HTTP_SSL)
static ngx_int_t ngx_http_plinth_upstream_set_session(
    ngx_peer_connection_t *pc, void *data);
static void ngx_http_plinth_upstream_save_session(ngx_peer_connection_t *pc,
    void *data);
#endif


char *
ngx_http_plinth_cluster(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char                          *err;
    ngx_str_t                     *value;
    ngx_url_t                      u;
    ngx_uint_t                     i;
    plinth_ring_node_t            *rn;
    ngx_plinth_cluster_node_t     *node;
    ngx_http_upstream_server_t    *us;
    ngx_http_plinth_main_conf_t   *pmcf;
    ngx_http_upstream_srv_conf_t  *uscf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_plinth_module);
    uscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_upstream_module);

    if (pmcf->upstream) {
        return "is duplicate: one data-node upstream per http block";
    }

    if (uscf->servers && uscf->servers->nelts) {
        return "must come before any \"server\" in the upstream block";
    }

    if (uscf->peer.init_upstream) {
        return "must come before \"keepalive\" and other balancers";
    }

    value = cf->args->elts;

    if (ngx_conf_full_name(cf->cycle, &value[1], 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    err = ngx_plinth_cluster_load(cf->pool, &value[1], &pmcf->nodes);
    if (err) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    if (uscf->servers == NULL) {
        uscf->servers = ngx_array_create(cf->pool, pmcf->nodes->nelts,
                                         sizeof(ngx_http_upstream_server_t));
        if (uscf->servers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rn = ngx_pcalloc(cf->pool, pmcf->nodes->nelts * sizeof(plinth_ring_node_t));
    if (rn == NULL) {
        return NGX_CONF_ERROR;
    }

    node = pmcf->nodes->elts;

    for (i = 0; i < pmcf->nodes->nelts; i++) {
        ngx_memzero(&u, sizeof(ngx_url_t));
        u.url = node[i].address;
        u.default_port = 80;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "data node %uD: invalid address \"%V\"%s%s",
                               node[i].id, &node[i].address,
                               u.err ? ": " : "", u.err ? u.err : "");
            return NGX_CONF_ERROR;
        }

        if (u.naddrs != 1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "data node %uD: address \"%V\" must resolve "
                               "to exactly one address", node[i].id,
                               &node[i].address);
            return NGX_CONF_ERROR;
        }

        us = ngx_array_push(uscf->servers);
        if (us == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(us, sizeof(ngx_http_upstream_server_t));
        us->name = node[i].address;
        us->addrs = u.addrs;
        us->naddrs = 1;
        us->weight = node[i].weight;

        rn[i].id = node[i].id;
        rn[i].weight = node[i].weight;
        rn[i].zone = (const char *) node[i].zone.data;
        rn[i].tier = (const char *) node[i].tier.data;
    }

    pmcf->ring = plinth_ring_create(rn, pmcf->nodes->nelts, 0,
                                    ngx_http_plinth_ring_alloc, cf->pool);
    if (pmcf->ring == NULL) {
        return "could not build the placement ring";
    }

    pmcf->upstream = uscf;
    uscf->peer.init_upstream = ngx_http_plinth_upstream_init;

    return NGX_CONF_OK;
}


static void *
ngx_http_plinth_ring_alloc(void *ctx, size_t size)
{
    return ngx_palloc((ngx_pool_t *) ctx, size);
}


static ngx_int_t
ngx_http_plinth_upstream_init(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_uint_t                    i;
    ngx_http_plinth_peers_t      *peers;
    ngx_plinth_cluster_node_t    *node;
    ngx_http_upstream_server_t   *server;
    ngx_http_plinth_main_conf_t  *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_plinth_module);

    peers = ngx_palloc(cf->pool, sizeof(ngx_http_plinth_peers_t));
    if (peers == NULL) {
        return NGX_ERROR;
    }

    peers->npeers = us->servers->nelts;
    peers->peers = ngx_pcalloc(cf->pool,
                               peers->npeers * sizeof(ngx_http_plinth_peer_t));
    if (peers->peers == NULL) {
        return NGX_ERROR;
    }

    if (peers->npeers != pmcf->nodes->nelts) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "the data-node upstream must hold only the nodes of "
                      "plinth_cluster, no other \"server\"");
        return NGX_ERROR;
    }

    server = us->servers->elts;
    node = pmcf->nodes->elts;

    for (i = 0; i < peers->npeers; i++) {
        peers->peers[i].id = node[i].id;
        peers->peers[i].sockaddr = server[i].addrs[0].sockaddr;
        peers->peers[i].socklen = server[i].addrs[0].socklen;
        peers->peers[i].name = server[i].addrs[0].name;
    }

    us->peer.data = peers;
    us->peer.init = ngx_http_plinth_upstream_init_peer;

    return NGX_OK;
}


static ngx_int_t
ngx_http_plinth_upstream_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_http_upstream_t          *u;
    ngx_http_plinth_sr_ctx_t     *sctx;
    ngx_http_plinth_peer_data_t  *pd;

    sctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);
    if (sctx == NULL || r == r->main) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "the data-node upstream is reachable only through "
                      "plinth's own subrequests");
        return NGX_ERROR;
    }

    pd = ngx_palloc(r->pool, sizeof(ngx_http_plinth_peer_data_t));
    if (pd == NULL) {
        return NGX_ERROR;
    }

    pd->peers = us->peer.data;
    pd->sctx = sctx;
    pd->r = r;
    pd->next = 0;
    pd->current = NULL;

    r->upstream->peer.data = pd;
    r->upstream->peer.get = ngx_http_plinth_upstream_get_peer;
    r->upstream->peer.free = ngx_http_plinth_upstream_free_peer;
#if (NGX_HTTP_SSL)
    r->upstream->peer.set_session = ngx_http_plinth_upstream_set_session;
    r->upstream->peer.save_session = ngx_http_plinth_upstream_save_session;
#endif
    r->upstream->peer.tries = sctx->nnodes;

    if (sctx->bufsize) {
        /* a stripe's read: a buffer that holds the whole stripe, so the
         * read runs ahead of its turn to send (proxy_buffering off reads
         * only while the buffer has room); nginx allocates
         * proxy_buffer_size only when none is there yet */
        u = r->upstream;
        u->buffer.start = sctx->buf ? sctx->buf
                                    : ngx_palloc(r->pool, sctx->bufsize);
        if (u->buffer.start == NULL) {
            return NGX_ERROR;
        }
        u->buffer.pos = u->buffer.start;
        u->buffer.last = u->buffer.start;
        u->buffer.end = u->buffer.start + sctx->bufsize;
        u->buffer.temporary = 1;
        u->buffer.tag = u->output.tag;

        /* what nginx does along with allocating it */
        if (ngx_list_init(&u->headers_in.headers, r->pool, 8,
                          sizeof(ngx_table_elt_t))
            != NGX_OK
            || ngx_list_init(&u->headers_in.trailers, r->pool, 2,
                             sizeof(ngx_table_elt_t))
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_plinth_upstream_get_peer(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_plinth_peer_data_t  *pd = data;

    uint32_t                  id;
    ngx_uint_t                i;
    ngx_http_plinth_peer_t   *peer;

    pc->cached = 0;
    pc->connection = NULL;

    while (pd->next < pd->sctx->nnodes) {
        id = pd->sctx->nodes[pd->next++];

        for (i = 0; i < pd->peers->npeers; i++) {
            peer = &pd->peers->peers[i];

            if (peer->id == id) {
                pd->sctx->node = id;
                pd->current = peer;
                pc->sockaddr = peer->sockaddr;
                pc->socklen = peer->socklen;
                pc->name = &peer->name;

                ngx_log_debug2(NGX_LOG_DEBUG_HTTP, pc->log, 0,
                               "plinth peer: node %uD \"%V\"", id, pc->name);

                return NGX_OK;
            }
        }

        ngx_log_error(NGX_LOG_WARN, pc->log, 0,
                      "data node %uD is not in the cluster file", id);
    }

    return NGX_BUSY;
}


/*
 * A replica left for the next one: when it answered that the blob is not
 * there (404) or failed its checksum (500), it is reported to repaird
 * (ngx_plinth_health.c). The last replica's answer reaches the header
 * filter instead, which reports it the same way.
 */
static void
ngx_http_plinth_upstream_free_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state)
{
    ngx_http_plinth_peer_data_t  *pd = data;

    ngx_uint_t                status;
    ngx_http_plinth_ctx_t    *ctx;

    if (pc->tries) {
        pc->tries--;
    }

    /* a write's failure is counted where its answer is judged */
    if (!(state & (NGX_PEER_NEXT | NGX_PEER_FAILED)) || !pd->sctx->get) {
        return;
    }

    ngx_http_plinth_metrics_node_error(pd->sctx->node);

    if (pd->r->upstream == NULL) {
        return;
    }

    status = pd->r->upstream->headers_in.status_n;
    ctx = pd->sctx->parent;

    if (status == NGX_HTTP_NOT_FOUND
        || status == NGX_HTTP_INTERNAL_SERVER_ERROR)
    {
        ngx_http_plinth_report_bad_replica(pc->log, &ctx->blob_id,
            pd->sctx->node,
            status == NGX_HTTP_NOT_FOUND ? "missing" : "corrupt");
    }
}


#if (NGX_HTTP_SSL)

static ngx_int_t
ngx_http_plinth_upstream_set_session(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_plinth_peer_data_t  *pd = data;

    if (pd->current == NULL || pd->current->ssl_session == NULL) {
        return NGX_OK;
    }

    return ngx_ssl_set_session(pc->connection, pd->current->ssl_session);
}


static void
ngx_http_plinth_upstream_save_session(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_plinth_peer_data_t  *pd = data;

    ngx_ssl_session_t  *session, *old;

    if (pd->current == NULL) {
        return;
    }

    session = ngx_ssl_get_session(pc->connection);   /* a reference */
    if (session == NULL) {
        return;
    }

    old = pd->current->ssl_session;
    pd->current->ssl_session = session;

    if (old) {
        ngx_ssl_free_session(old);
    }
}

#endif
