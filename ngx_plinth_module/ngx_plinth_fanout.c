/*
 * Talking to the data nodes: quorum writes and resumable reads.
 *
 * Write: one background, in-memory subrequest per target node, all sharing
 * the main request's body (nginx copies buffer descriptors only; a body in
 * a temp file is sent with sendfile). Each finished subrequest is counted
 * by its post_subrequest handler, which wakes the main request; the main
 * request's write handler decides once W have acknowledged or more than
 * RF - W have failed. Stragglers run on after the answer, bounded by the
 * proxy timeouts of the internal location.
 *
 * Read: one subrequest at a time streams the wanted range from the
 * object's replicas in order (the balancer hands them to proxy_next_upstream
 * until one answers 200/206 with the right length). The module's body
 * filter counts the bytes passed to the client and whether the part ended
 * cleanly (last_in_chain, which nginx sends only on a clean end: a body cut
 * after headers is turned into a mere flush). If it did not, the node that
 * served it is set aside and the next part asks another replica for
 * "bytes=<next byte>-<end>": the client receives every byte once, in
 * order. The client's headers are sent only when the first replica
 * answers, so a read whose replicas all fail is still a clean 503.
 *
 * An object is a list of segments (one blob each: a single PUT is one, a
 * multipart object one per part). The wanted range is read segment by
 * segment, one subrequest at a time; each segment has its own replicas,
 * so the nodes set aside and the attempts start afresh at each one.
 */

#include "ngx_plinth.h"


enum {
    NGX_PLINTH_PUT_WAITING = 0,
    NGX_PLINTH_PUT_DECIDED = 1
};


static ngx_int_t ngx_http_plinth_put_one(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_uint_t i);
static void ngx_http_plinth_put_replace(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, uint32_t failed);
static ngx_int_t ngx_http_plinth_put_sr_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static void ngx_http_plinth_put_wev(ngx_http_request_t *r);
static ngx_int_t ngx_http_plinth_put_timer(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_event_handler_pt handler,
    ngx_msec_t timeout);
static void ngx_http_plinth_stragglers_expire(ngx_event_t *ev);
static void ngx_http_plinth_put_timer_cleanup(void *data);
static void ngx_http_plinth_linger_expire(ngx_event_t *ev);
static ngx_http_request_t *ngx_http_plinth_blob_subrequest(
    ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    ngx_http_plinth_sr_ctx_t *sctx, ngx_http_post_subrequest_pt handler,
    ngx_uint_t flags);
static ngx_int_t ngx_http_plinth_read_part(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
static ngx_int_t ngx_http_plinth_read_sr_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static void ngx_http_plinth_read_wev(ngx_http_request_t *r);
static void ngx_http_plinth_read_child_wev(ngx_http_request_t *r);
static void ngx_http_plinth_served(ngx_http_plinth_ctx_t *ctx,
    uint32_t node);
static void ngx_http_plinth_set_bad(ngx_http_plinth_ctx_t *ctx,
    uint32_t node);
static ngx_uint_t ngx_http_plinth_is_bad(ngx_http_plinth_ctx_t *ctx,
    uint32_t node);


static ngx_http_request_t *
ngx_http_plinth_blob_subrequest(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_http_plinth_sr_ctx_t *sctx,
    ngx_http_post_subrequest_pt handler, ngx_uint_t flags)
{
    ngx_str_t                     uri;
    ngx_http_request_t           *sr;
    ngx_http_post_subrequest_t   *ps;
    ngx_http_plinth_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);

    uri.len = pmcf->blob_location.len + ctx->blob_id.len;
    uri.data = ngx_pnalloc(r->pool, uri.len);
    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (uri.data == NULL || ps == NULL) {
        return NULL;
    }

    ngx_memcpy(ngx_cpymem(uri.data, pmcf->blob_location.data,
                          pmcf->blob_location.len),
               ctx->blob_id.data, ctx->blob_id.len);

    ps->handler = handler;
    ps->data = sctx;

    if (ngx_http_subrequest(r, &uri, NULL, &sr, ps, flags) != NGX_OK) {
        return NULL;
    }

    sctx->parent = ctx;
    sctx->sr = sr;
    ngx_http_set_ctx(sr, sctx, ngx_http_plinth_module);

    return sr;
}


ngx_int_t
ngx_http_plinth_fanout_put(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    void (*done)(ngx_http_request_t *r))
{
    ngx_uint_t  i;

    ctx->fanout_done = done;
    ctx->state = NGX_PLINTH_PUT_WAITING;
    ctx->acked = 0;
    ctx->failed = 0;

    r->write_event_handler = ngx_http_plinth_put_wev;

    for (i = 0; i < ctx->ntargets; i++) {
        if (ngx_http_plinth_put_one(r, ctx, i) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* The write of the body to ctx->targets[i]: one background subrequest. */
static ngx_int_t
ngx_http_plinth_put_one(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    ngx_uint_t i)
{
    ngx_http_request_t        *sr;
    ngx_http_plinth_sr_ctx_t  *sctx;

    static ngx_str_t  put = ngx_string("PUT ");

    sctx = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_sr_ctx_t));
    if (sctx == NULL) {
        return NGX_ERROR;
    }

    sctx->nodes[0] = ctx->targets[i];
    sctx->nnodes = 1;
    sctx->index = i;
    ctx->puts[i] = sctx;

    sr = ngx_http_plinth_blob_subrequest(r, ctx, sctx,
                                         ngx_http_plinth_put_sr_done,
                                         NGX_HTTP_SUBREQUEST_IN_MEMORY
                                         |NGX_HTTP_SUBREQUEST_BACKGROUND);
    if (sr == NULL) {
        return NGX_ERROR;
    }

    sr->method = NGX_HTTP_PUT;
    sr->method_name.len = put.len - 1;
    sr->method_name.data = put.data;

    return NGX_OK;
}


/*
 * A replica refused the write (507 disk full, 5xx, refused connection,
 * timeout): the write goes to the ring's next node for the key that it
 * has not tried and that repaird does not mark unwritable, so that RF
 * copies are still made (a full or read-only disk costs no copy). Only
 * while the client has not been answered, and not after the write was
 * decided failed (its garbage nodes are recorded by then); at most
 * NGX_PLINTH_MAX_TARGETS
 * nodes per write. The node tried joins ctx->targets, so a write that
 * still fails records it among the nodes holding its garbage.
 */
static void
ngx_http_plinth_put_replace(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    uint32_t failed)
{
    size_t                        navoid, n;
    uint32_t                     *exclude, node;
    const uint32_t               *avoid;
    ngx_http_plinth_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);

    /* not once the write was given up: the nodes to clean were recorded */
    if (ctx->finalized || ctx->place_key == NULL
        || ctx->ntargets >= NGX_PLINTH_MAX_TARGETS
        || (ctx->state != NGX_PLINTH_PUT_WAITING && ctx->acked < pmcf->w))
    {
        return;
    }

    navoid = ngx_http_plinth_health_avoid(&avoid);

    exclude = ngx_palloc(r->pool, (navoid + ctx->ntargets) * sizeof(uint32_t));
    if (exclude == NULL) {
        return;
    }

    ngx_memcpy(exclude, ctx->targets, ctx->ntargets * sizeof(uint32_t));
    if (navoid) {
        ngx_memcpy(exclude + ctx->ntargets, avoid, navoid * sizeof(uint32_t));
    }

    /* on the write's own tier, as the first RF were chosen */
    n = plinth_ring_lookup(pmcf->ring, ctx->place_key, ctx->place_key_len,
                           plinth_ring_tier_or_hotter(pmcf->ring, ctx->tier),
                           exclude, navoid + ctx->ntargets, 1, &node);
    if (n == 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "plinth: no data node left to take blob %V in place "
                      "of node %uD", &ctx->blob_id, failed);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "plinth: blob %V goes to data node %uD in place of node "
                  "%uD", &ctx->blob_id, node, failed);

    ctx->targets[ctx->ntargets] = node;

    if (ngx_http_plinth_put_one(r, ctx, ctx->ntargets) != NGX_OK) {
        return;
    }

    ctx->ntargets++;
}


static ngx_int_t
ngx_http_plinth_put_sr_done(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_http_plinth_sr_ctx_t *sctx = data;

    ngx_http_plinth_ctx_t  *ctx;

    if (sctx->finished) {
        return NGX_OK;
    }

    sctx->finished = 1;
    sctx->status = r->headers_out.status;
    ctx = sctx->parent;

    if (rc == NGX_OK
        && (sctx->status == NGX_HTTP_CREATED || sctx->status == NGX_HTTP_OK))
    {
        if (ctx->state == NGX_PLINTH_PUT_WAITING) {
            ctx->acked_nodes[ctx->acked++] = sctx->nodes[0];

        } else if (ctx->committed) {
            /* a straggler: record its copy too */
            ngx_http_plinth_put_add_node(r->main, ctx, sctx->nodes[0]);

        } else {
            ctx->late_nodes[ctx->nlate++] = sctx->nodes[0];
        }

    } else {
        ctx->failed++;
        ngx_http_plinth_metrics_node_error(sctx->nodes[0]);
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "plinth: data node %uD refused blob %V: rc %i, "
                      "status %ui", sctx->nodes[0], &ctx->blob_id, rc,
                      sctx->status);

        ngx_http_plinth_put_replace(r->main, ctx, sctx->nodes[0]);
    }

    if (ctx->state == NGX_PLINTH_PUT_WAITING && !ctx->finalized) {
        if (ngx_http_post_request(r->main, NULL) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* never let nginx build an error page for a subrequest */
    return NGX_OK;
}


/*
 * Also runs on unrelated write events: decides at most once. W
 * acknowledgements decide the write, but while the other replicas are
 * still writing it lingers up to plinth_put_linger for them, so that the
 * commit records every copy made: a copy acknowledged after the commit
 * costs PostgreSQL an update of the committed row (a late replica, see
 * ngx_plinth_s3_object.c), about a third of what the commit itself costs.
 * The client waits for those writes anyway before its next request on the
 * connection (see plinth_straggler_timeout); a failed or slow replica
 * bounds the wait at the linger, and plinth_put_linger 0 answers after W.
 */
static void
ngx_http_plinth_put_wev(ngx_http_request_t *r)
{
    ngx_uint_t                    all;
    ngx_http_plinth_ctx_t        *ctx;
    ngx_http_plinth_main_conf_t  *pmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);
    pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);

    if (ctx == NULL || ctx->state != NGX_PLINTH_PUT_WAITING
        || ctx->finalized)
    {
        return;
    }

    all = (ctx->acked + ctx->failed == ctx->ntargets);

    if (!all && ctx->failed <= ctx->ntargets - pmcf->w) {

        if (ctx->acked < pmcf->w) {
            return;
        }

        if (!ctx->lingered && pmcf->put_linger) {
            if (ctx->straggler_ev.timer_set) {
                return;
            }

            if (ngx_http_plinth_put_timer(r, ctx,
                                          ngx_http_plinth_linger_expire,
                                          pmcf->put_linger)
                == NGX_OK)
            {
                return;
            }
            /* no timer: decided now, as without the linger */
        }
    }

    ctx->state = NGX_PLINTH_PUT_DECIDED;
    r->write_event_handler = ngx_http_request_empty_handler;

    if (ctx->straggler_ev.timer_set) {
        ngx_del_timer(&ctx->straggler_ev);      /* the linger's */
    }

    if (!all) {
        (void) ngx_http_plinth_put_timer(r, ctx,
                                         ngx_http_plinth_stragglers_expire,
                                         pmcf->straggler_timeout);
    }

    ctx->fanout_done(r);
}


static void
ngx_http_plinth_linger_expire(ngx_event_t *ev)
{
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_http_plinth_ctx_t  *ctx;

    r = ev->data;
    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    ctx->lingered = 1;
    ngx_http_plinth_put_wev(r);
    ngx_http_run_posted_requests(c);
}


/*
 * One timer per write, on ctx->straggler_ev: first the linger (before the
 * decision), then the stragglers' (after it). Replica writes still running
 * when the write is decided hold the client's connection (the next request
 * on it waits for them). They get plinth_straggler_timeout to finish; then
 * they are cancelled, and the copy they were making is left for repair.
 * The request's cleanup that removes the timer is added once, on first
 * use (the event's data is set then). NGX_ERROR: no timer (no memory).
 */
static ngx_int_t
ngx_http_plinth_put_timer(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    ngx_event_handler_pt handler, ngx_msec_t timeout)
{
    ngx_http_cleanup_t  *cln;

    if (ctx->straggler_ev.data == NULL) {
        cln = ngx_http_cleanup_add(r, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }

        cln->handler = ngx_http_plinth_put_timer_cleanup;
        cln->data = ctx;

        ctx->straggler_ev.data = r;
        ctx->straggler_ev.log = r->connection->log;
    }

    ctx->straggler_ev.handler = handler;
    ngx_add_timer(&ctx->straggler_ev, timeout);

    return NGX_OK;
}


static void
ngx_http_plinth_put_timer_cleanup(void *data)
{
    ngx_http_plinth_ctx_t *ctx = data;

    if (ctx->straggler_ev.timer_set) {
        ngx_del_timer(&ctx->straggler_ev);
    }
}


static void
ngx_http_plinth_stragglers_expire(ngx_event_t *ev)
{
    ngx_uint_t                 i, n;
    ngx_connection_t          *c;
    ngx_http_request_t        *r, *sr[NGX_PLINTH_MAX_RF];
    ngx_http_plinth_ctx_t     *ctx;
    ngx_http_cleanup_pt        cleanup;
    ngx_http_plinth_sr_ctx_t  *sctx;

    r = ev->data;
    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    n = 0;

    for (i = 0; i < ctx->ntargets; i++) {
        sctx = ctx->puts[i];

        if (sctx && !sctx->finished && sctx->sr->upstream
            && sctx->sr->upstream->cleanup)
        {
            ngx_log_error(NGX_LOG_WARN, c->log, 0,
                          "plinth: cancelling the write of blob %V to data "
                          "node %uD after plinth_straggler_timeout",
                          &ctx->blob_id, sctx->nodes[0]);
            sctx->finished = 1;
            sr[n++] = sctx->sr;
        }
    }

    /* the last cancellation may end the main request: touch nothing after */
    for (i = 0; i < n; i++) {
        cleanup = *sr[i]->upstream->cleanup;
        cleanup(sr[i]);
    }

    ngx_http_run_posted_requests(c);
}


ngx_int_t
ngx_http_plinth_read_start(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    ctx->delivered = 0;
    ctx->attempts = 0;
    ctx->nbad = 0;
    ctx->seg = 0;

    if (ctx->obj.nsegs == 0) {
        return NGX_ERROR;
    }

    r->write_event_handler = ngx_http_plinth_read_wev;

    return ngx_http_plinth_read_part(r, ctx);
}


static ngx_int_t
ngx_http_plinth_read_part(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    off_t                      pos, from, to;
    ngx_uint_t                 i;
    ngx_http_request_t        *sr;
    ngx_plinth_segment_t      *seg;
    ngx_http_plinth_sr_ctx_t  *sctx;

    pos = ctx->start + ctx->delivered;

    /* the segment holding the next byte; a new one starts afresh */
    while (ctx->seg + 1 < ctx->obj.nsegs
           && pos >= ctx->obj.segs[ctx->seg].offset
                     + ctx->obj.segs[ctx->seg].size)
    {
        ctx->seg++;
        ctx->nbad = 0;
        ctx->attempts = 0;
    }

    seg = &ctx->obj.segs[ctx->seg];

    if (ctx->attempts > seg->nnodes) {
        return NGX_DECLINED;
    }

    sctx = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_sr_ctx_t));
    if (sctx == NULL) {
        return NGX_ERROR;
    }

    /* replicas in placement order (a stripe's chosen one first), those
     * repaird found offline last */
    if (ctx->prefer && ctx->attempts == 0
        && !ngx_http_plinth_is_bad(ctx, ctx->prefer)
        && !ngx_http_plinth_health_offline(ctx->prefer))
    {
        for (i = 0; i < seg->nnodes; i++) {
            if (seg->nodes[i] == ctx->prefer) {
                sctx->nodes[sctx->nnodes++] = ctx->prefer;
                break;
            }
        }
    }

    for (i = 0; i < seg->nnodes; i++) {
        if (!ngx_http_plinth_is_bad(ctx, seg->nodes[i])
            && !ngx_http_plinth_health_offline(seg->nodes[i])
            && (sctx->nnodes == 0 || seg->nodes[i] != sctx->nodes[0]))
        {
            sctx->nodes[sctx->nnodes++] = seg->nodes[i];
        }
    }

    for (i = 0; i < seg->nnodes; i++) {
        if (!ngx_http_plinth_is_bad(ctx, seg->nodes[i])
            && ngx_http_plinth_health_offline(seg->nodes[i]))
        {
            sctx->nodes[sctx->nnodes++] = seg->nodes[i];
        }
    }

    ctx->blob_id = seg->blob_id;

    if (sctx->nnodes == 0) {
        return NGX_DECLINED;
    }

    /* blob-relative: [from, to) of this segment */
    from = seg->blob_offset + pos - seg->offset;
    to = seg->blob_offset
         + ngx_min(ctx->end, seg->offset + seg->size) - seg->offset;

    sctx->get = 1;
    sctx->expect = to - from;
    sctx->started = ngx_current_msec;
    sctx->bufsize = ctx->read_buf;
    sctx->range.data = ngx_pnalloc(r->pool, sizeof("bytes=-") - 1
                                            + 2 * NGX_OFF_T_LEN);
    if (sctx->range.data == NULL) {
        return NGX_ERROR;
    }
    sctx->range.len = ngx_sprintf(sctx->range.data, "bytes=%O-%O", from,
                                  to - 1)
                      - sctx->range.data;

    sr = ngx_http_plinth_blob_subrequest(r, ctx, sctx,
                                         ngx_http_plinth_read_sr_done, 0);
    if (sr == NULL) {
        return NGX_ERROR;
    }

    sr->request_body = NULL;
    ctx->part = sctx;
    ctx->part_done = 0;
    ctx->attempts++;

    return NGX_OK;
}


ngx_int_t
ngx_http_plinth_sr_header_filter(ngx_http_request_t *r,
    ngx_http_plinth_sr_ctx_t *sctx)
{
    ngx_int_t               rc;
    ngx_http_plinth_ctx_t  *ctx, *mctx;

    ctx = sctx->parent;
    sctx->status = r->headers_out.status;

    if ((sctx->status == NGX_HTTP_OK
         || sctx->status == NGX_HTTP_PARTIAL_CONTENT)
        && r->headers_out.content_length_n == sctx->expect)
    {
        sctx->accepted = 1;
        ngx_http_plinth_served(ctx, sctx->node);

    } else {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "plinth: data node %uD answered %ui for blob %V "
                      "(length %O, wanted %O)", sctx->node, sctx->status,
                      &ctx->blob_id, r->headers_out.content_length_n,
                      sctx->expect);

        ngx_http_plinth_metrics_node_error(sctx->node);

        /* a replica that is not there or fails its checksum: to repaird */
        if (sctx->status == NGX_HTTP_NOT_FOUND
            || sctx->status == NGX_HTTP_INTERNAL_SERVER_ERROR)
        {
            ngx_http_plinth_report_bad_replica(r->connection->log,
                &ctx->blob_id, sctx->node,
                sctx->status == NGX_HTTP_NOT_FOUND ? "missing" : "corrupt");
        }

        return NGX_OK;
    }

    if (!ctx->headers_sent) {
        ctx->headers_sent = 1;

        rc = ngx_http_send_header(r->main);
        if (rc == NGX_ERROR || rc > NGX_OK) {
            return NGX_ERROR;
        }

        if (ctx->kind == NGX_PLINTH_CTX_STRIPE) {
            /* a striped GET's first stripe: the other stripes may start */
            mctx = ngx_http_get_module_ctx(r->main, ngx_http_plinth_module);
            mctx->headers_sent = 1;
            if (ngx_http_post_request(r->main, NULL) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_plinth_sr_body_filter(ngx_http_request_t *r,
    ngx_http_plinth_sr_ctx_t *sctx, ngx_chain_t *in)
{
    off_t         size;
    ngx_chain_t  *cl;

    if (!sctx->accepted) {
        /* an error page of a replica: consume it, never show it */
        for (cl = in; cl; cl = cl->next) {
            cl->buf->pos = cl->buf->last;
            cl->buf->file_pos = cl->buf->file_last;
        }
        return NGX_DONE;
    }

    for (cl = in; cl; cl = cl->next) {
        if (!ngx_buf_special(cl->buf)) {
            size = ngx_buf_size(cl->buf);
            sctx->received += size;
            sctx->parent->delivered += size;
        }

        if (cl->buf->last_in_chain) {
            sctx->complete = 1;
        }
    }

    if (sctx->parent->kind == NGX_PLINTH_CTX_STRIPE
        && sctx->received == sctx->expect)
    {
        /* every byte of the stripe is here (maybe not yet sent) */
        ngx_http_plinth_stripe_sample(sctx->parent, sctx);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_plinth_read_sr_done(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_http_plinth_sr_ctx_t *sctx = data;

    u_char                **buf;
    ngx_uint_t              i;
    ngx_http_plinth_ctx_t  *ctx;

    if (sctx->finished) {
        /*
         * Finalized again once its turn to send came (a batch GET's read
         * that ended while another entry was sending): nginx leaves its
         * held output to a write event that may never come on an idle
         * socket, so one is posted.
         */
        if (r->postponed && r == r->connection->data) {
            ngx_post_event(r->connection->write, &ngx_posted_events);
        }
        return NGX_OK;
    }

    sctx->finished = 1;
    ctx = sctx->parent;

    /* batch GET: this read's proxy buffer (from the main request's pool)
     * is freed once its bytes are sent (ngx_plinth_s3_batch.c) */
    if (ctx->spent_bufs && r->upstream && r->upstream->buffer.start) {
        buf = ngx_array_push(ctx->spent_bufs);
        if (buf) {
            *buf = r->upstream->buffer.start;
        }
    }

    if (sctx->accepted && sctx->complete && sctx->received == sctx->expect) {
        ctx->part_done = 1;
        return NGX_OK;
    }

    if (sctx->accepted) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "plinth: read of blob %V from data node %uD ended "
                      "after %O of %O bytes, resuming on another replica",
                      &ctx->blob_id, sctx->node, sctx->received,
                      sctx->expect);
        ngx_http_plinth_metrics_node_error(sctx->node);
        ngx_http_plinth_set_bad(ctx, sctx->node);

    } else {
        for (i = 0; i < sctx->nnodes; i++) {
            ngx_http_plinth_set_bad(ctx, sctx->nodes[i]);
        }
    }

    return NGX_OK;
}


/*
 * A reader of its own: a subrequest to the S3 location whose ctx names
 * what to read (a batch GET's entry, a striped GET's stripe), served by
 * ngx_http_plinth_s3_handler with GetObject's read loop. Its output is
 * ordered by nginx's postpone filter among its siblings'; its reads are
 * its children, so a resumed read stays in its place.
 */
ngx_int_t
ngx_http_plinth_read_child(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    /* the reader owns this reference until it finalizes */
    r->main->count++;

    if (ngx_http_plinth_read_start(r, ctx) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "plinth: %V/%V: no replica to read",
                      &ctx->bucket, &ctx->key);
        ngx_http_plinth_finalize(r, NGX_ERROR);
        return NGX_DONE;
    }

    r->write_event_handler = ngx_http_plinth_read_child_wev;

    return NGX_DONE;
}


/*
 * A reader is woken when its turn to send comes (the postpone filter made
 * it the connection's active request) and when one of its reads ends. Its
 * output waiting behind it (a read still running) is passed the turn
 * first: nothing else would wake that read.
 */
static void
ngx_http_plinth_read_child_wev(ngx_http_request_t *r)
{
    if (r == r->connection->data && r->postponed
        && ngx_http_output_filter(r, NULL) == NGX_ERROR)
    {
        ngx_http_plinth_finalize(r, NGX_ERROR);
        return;
    }

    ngx_http_plinth_read_wev(r);
}


/* The main request, woken when a part ends: finish, resume, or fail. */
static void
ngx_http_plinth_read_wev(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_http_plinth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (ctx == NULL || ctx->finalized || ctx->part == NULL
        || !ctx->part->finished)
    {
        return;
    }

    if (ctx->part_done && ctx->start + ctx->delivered == ctx->end) {
        ctx->part = NULL;
        r->write_event_handler = ngx_http_request_empty_handler;
        ngx_http_plinth_finalize(r, ngx_http_send_special(r, NGX_HTTP_LAST));
        return;
    }

    ctx->part = NULL;

    /* the next segment, or the rest of this one from another replica */
    rc = ngx_http_plinth_read_part(r, ctx);

    if (rc == NGX_OK) {
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_http_plinth_finalize(r, NGX_ERROR);
        return;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "plinth: no replica of blob %V could serve bytes %O-%O",
                  &ctx->blob_id, ctx->start + ctx->delivered, ctx->end - 1);

    r->write_event_handler = ngx_http_request_empty_handler;

    if (!ctx->headers_sent && r == r->main) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_SERVICE_UNAVAILABLE,
                              "No replica of the object is reachable.");
        return;
    }

    ngx_http_plinth_finalize(r, NGX_ERROR);
}


/* A node that sent bytes of this object, once, for $plinth_nodes. */
static void
ngx_http_plinth_served(ngx_http_plinth_ctx_t *ctx, uint32_t node)
{
    ngx_uint_t  i;

    for (i = 0; i < ctx->nserved; i++) {
        if (ctx->served[i] == node) {
            return;
        }
    }

    if (ctx->nserved < NGX_PLINTH_MAX_RF) {
        ctx->served[ctx->nserved++] = node;
    }
}


static void
ngx_http_plinth_set_bad(ngx_http_plinth_ctx_t *ctx, uint32_t node)
{
    if (node == 0 || ngx_http_plinth_is_bad(ctx, node)
        || ctx->nbad == NGX_PLINTH_MAX_RF)
    {
        return;
    }

    ctx->bad_nodes[ctx->nbad++] = node;
}


static ngx_uint_t
ngx_http_plinth_is_bad(ngx_http_plinth_ctx_t *ctx, uint32_t node)
{
    ngx_uint_t  i;

    for (i = 0; i < ctx->nbad; i++) {
        if (ctx->bad_nodes[i] == node) {
            return 1;
        }
    }

    return 0;
}
