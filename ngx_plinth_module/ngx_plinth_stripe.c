/*
 * Striped GET: a large object (or a large range of one) is read in
 * consecutive stripes of plinth_stripe_size bytes, up to
 * plinth_stripe_window of them at once, each from a replica of its own,
 * and sent in order.
 *
 * Every stripe is a reader (ngx_http_plinth_read_child): a subrequest of
 * the main request whose read loop is GetObject's, replica after replica,
 * resuming at the byte where one failed; the data nodes verify each block
 * before sending it. nginx's postpone filter sends the readers' output in
 * creation order. A stripe's read has an upstream buffer the size of the
 * stripe (set by the balancer, ngx_plinth_upstream.c), so it reads its
 * whole stripe while the stripes before it are still being sent: that is
 * the read-ahead, bounded by window x stripe bytes per GET. A stripe's
 * buffer is freed once its bytes are on the socket.
 *
 * Stripes never cross a segment (a blob); each asks first the replica of
 * its segment that this GET has found fastest among those least busy:
 * every read's bytes and time are measured here (the time its last byte
 * arrived, not when it was sent), and a replica slower than a third of
 * the fastest one's rate is dropped from the stripe (asked only when the
 * others fail). A read that fails hands its stripe to the next replica as
 * GET does.
 *
 * The first stripe is read alone: the response headers go out when its
 * first replica answers, so a GET whose replicas all fail is still a
 * clean 503. The other stripes start once the headers are out. A stripe
 * that fails on every replica after that cuts the connection (the client
 * sees fewer bytes than Content-Length), as an unstriped GET does.
 */

#include "ngx_plinth.h"


#define NGX_PLINTH_STRIPE_SLOWER   3    /* dropped below 1/3 of the best */
#define NGX_PLINTH_STRIPE_RATES    (NGX_PLINTH_MAX_TARGETS * 2)
#define NGX_PLINTH_STRIPE_HEADROOM 8192 /* the read's response headers */


typedef struct ngx_http_plinth_stripes_s  ngx_http_plinth_stripes_t;

typedef struct {
    ngx_http_plinth_stripes_t    *st;
    ngx_http_request_t           *sr;         /* its reader */
    ngx_http_plinth_ctx_t        *rctx;       /* the reader's ctx */
    uint32_t                      node;       /* the replica asked first */
    off_t                         len;
    unsigned                      arrived:1;  /* every byte received */
    unsigned                      read:1;     /* the reader finished */
} ngx_http_plinth_stripe_t;


/* what this GET measured of a replica */
typedef struct {
    uint32_t                      node;
    off_t                         bytes;
    ngx_msec_t                    ms;
    ngx_uint_t                    busy;       /* stripes still arriving */
} ngx_http_plinth_stripe_rate_t;


struct ngx_http_plinth_stripes_s {
    ngx_http_plinth_stripe_t    **ring;       /* window slots */
    ngx_array_t                  *spent;      /* buffers of sent stripes */
    ngx_uint_t                    window;
    ngx_uint_t                    head;       /* first stripe not yet sent */
    ngx_uint_t                    next;       /* first stripe not started */
    off_t                         size;
    off_t                         pos;        /* first byte not yet striped */
    ngx_uint_t                    seg;        /* its segment */
    ngx_http_plinth_stripe_rate_t rates[NGX_PLINTH_STRIPE_RATES];
    ngx_uint_t                    nrates;
    unsigned                      failed:1;   /* a stripe could not be read */
    unsigned                      done:1;
};


static void ngx_http_plinth_stripe_wev(ngx_http_request_t *r);
static ngx_int_t ngx_http_plinth_stripe_next(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_http_plinth_stripes_t *st);
static uint32_t ngx_http_plinth_stripe_pick(ngx_http_plinth_stripes_t *st,
    ngx_plinth_segment_t *seg, ngx_uint_t index);
static ngx_http_plinth_stripe_rate_t *ngx_http_plinth_stripe_rate(
    ngx_http_plinth_stripes_t *st, uint32_t node);
static ngx_int_t ngx_http_plinth_stripe_read_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_plinth_stripe_spent(ngx_http_plinth_stripes_t *st,
    ngx_http_plinth_stripe_t *s);
static void ngx_http_plinth_stripe_free(ngx_http_request_t *r,
    ngx_http_plinth_stripes_t *st);


/* A GET worth striping: a long enough range of a replicated object. */
ngx_uint_t
ngx_http_plinth_stripe_wanted(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    ngx_uint_t                    i;
    ngx_http_plinth_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);

    if (pmcf->stripe_size == 0 || r != r->main
        || ctx->end - ctx->start < 2 * (off_t) pmcf->stripe_size)
    {
        return 0;
    }

    for (i = 0; i < ctx->obj.nsegs; i++) {
        if (ctx->obj.segs[i].nnodes > 1) {
            return 1;
        }
    }

    return 0;
}


ngx_int_t
ngx_http_plinth_stripe_start(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    ngx_http_plinth_stripes_t    *st;
    ngx_http_plinth_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);

    st = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_stripes_t));
    if (st == NULL) {
        return NGX_ERROR;
    }

    st->window = pmcf->stripe_window;
    st->size = pmcf->stripe_size;
    st->pos = ctx->start;

    st->ring = ngx_pcalloc(r->pool,
                           st->window * sizeof(ngx_http_plinth_stripe_t *));
    st->spent = ngx_array_create(r->pool, 2 * st->window, sizeof(u_char *));
    if (st->ring == NULL || st->spent == NULL) {
        return NGX_ERROR;
    }

    ctx->stripes = st;
    ctx->delivered = 0;
    r->write_event_handler = ngx_http_plinth_stripe_wev;

    /* the first stripe alone: its replica's answer sends the headers */
    return ngx_http_plinth_stripe_next(r, ctx, st);
}


/*
 * The main request's write handler: woken when a reader finishes, when
 * the headers went out, and by write events. Starts stripes up to the
 * window, gives back sent buffers, ends the response.
 */
static void
ngx_http_plinth_stripe_wev(ngx_http_request_t *r)
{
    ngx_http_plinth_ctx_t      *ctx;
    ngx_http_plinth_stripe_t   *sp;
    ngx_http_plinth_stripes_t  *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (ctx == NULL || ctx->finalized || ctx->stripes == NULL) {
        return;
    }

    st = ctx->stripes;

    if (st->done) {
        return;
    }

    if (st->failed) {
        /* only the first stripe, alone, ends so: nothing was sent */
        st->done = 1;
        r->write_event_handler = ngx_http_request_empty_handler;
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_SERVICE_UNAVAILABLE,
                              "No replica of the object is reachable.");
        return;
    }

    /* the stripes whose readers are done: their bytes were handed on */
    while (st->head < st->next) {
        sp = st->ring[st->head % st->window];
        if (!sp->sr->done) {
            break;
        }
        if (ngx_http_plinth_stripe_spent(st, sp) != NGX_OK) {
            ngx_http_plinth_finalize(r, NGX_ERROR);
            return;
        }
        st->head++;
    }

    ngx_http_plinth_stripe_free(r, st);

    while (ctx->headers_sent && st->pos < ctx->end
           && st->next - st->head < st->window)
    {
        if (ngx_http_plinth_stripe_next(r, ctx, st) != NGX_OK) {
            ngx_http_plinth_finalize(r, NGX_ERROR);
            return;
        }
    }

    /* the turn goes on: the held output up to the next reader is sent
     * and that reader woken (nothing else wakes it) */
    if (r == r->connection->data && r->postponed
        && ngx_http_output_filter(r, NULL) == NGX_ERROR)
    {
        ngx_http_plinth_finalize(r, NGX_ERROR);
        return;
    }

    if (st->pos < ctx->end || st->head < st->next) {
        return;
    }

    st->done = 1;
    r->write_event_handler = ngx_http_request_empty_handler;
    ngx_http_plinth_finalize(r, ngx_http_send_special(r, NGX_HTTP_LAST));
}


/* Starts the reader of the next stripe: [st->pos, end of it). */
static ngx_int_t
ngx_http_plinth_stripe_next(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    ngx_http_plinth_stripes_t *st)
{
    off_t                        end;
    ngx_http_request_t          *sr;
    ngx_plinth_segment_t        *seg;
    ngx_http_plinth_ctx_t       *rctx;
    ngx_http_plinth_stripe_t    *s;
    ngx_http_post_subrequest_t  *ps;

    while (st->seg + 1 < ctx->obj.nsegs
           && st->pos >= ctx->obj.segs[st->seg].offset
                         + ctx->obj.segs[st->seg].size)
    {
        st->seg++;
    }

    seg = &ctx->obj.segs[st->seg];
    end = ngx_min(ctx->end, ngx_min(st->pos + st->size,
                                    seg->offset + seg->size));

    rctx = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_ctx_t));
    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    s = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_stripe_t));
    if (rctx == NULL || ps == NULL || s == NULL) {
        return NGX_ERROR;
    }

    st->ring[st->next % st->window] = s;
    s->st = st;
    s->rctx = rctx;
    s->len = end - st->pos;
    s->node = ngx_http_plinth_stripe_pick(st, seg, st->next);

    rctx->kind = NGX_PLINTH_CTX_STRIPE;
    rctx->request_id = ctx->request_id;
    rctx->bucket = ctx->bucket;
    rctx->key = ctx->key;
    rctx->stripes = s;
    rctx->obj.size = ctx->obj.size;
    rctx->obj.segs = seg;
    rctx->obj.nsegs = 1;
    rctx->start = st->pos;
    rctx->end = end;
    rctx->prefer = s->node;
    rctx->read_buf = st->size + NGX_PLINTH_STRIPE_HEADROOM;
    /* the first stripe's first replica sends the response headers */
    rctx->headers_sent = ctx->headers_sent;
    rctx->body_error = NGX_PLINTH_ERR_MAX;

    rctx->spent_bufs = ngx_array_create(r->pool, 2, sizeof(u_char *));
    if (rctx->spent_bufs == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_plinth_stripe_read_done;
    ps->data = s;

    if (ngx_http_subrequest(r, &r->uri, NULL, &sr, ps, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    /* a GET without a body (headers_in is the reader's own copy) */
    sr->request_body = NULL;
    ngx_http_set_ctx(sr, rctx, ngx_http_plinth_module);

    s->sr = sr;

    if (s->node) {
        ngx_http_plinth_stripe_rate(st, s->node)->busy++;
    }

    st->pos = end;
    st->next++;

    return NGX_OK;
}


/*
 * The replica a stripe asks first: of its segment's replicas that are
 * online and not dropped (slower than a third of the fastest measured),
 * the one with the fewest stripes still arriving, then the fastest, then
 * by turns.
 */
static uint32_t
ngx_http_plinth_stripe_pick(ngx_http_plinth_stripes_t *st,
    ngx_plinth_segment_t *seg, ngx_uint_t index)
{
    double                          rate, best, cand_rate;
    uint32_t                        node, cand;
    ngx_uint_t                      i, k, cand_busy;
    ngx_http_plinth_stripe_rate_t  *nr;

    best = 0;

    for (i = 0; i < st->nrates; i++) {
        nr = &st->rates[i];
        if (nr->ms) {
            rate = (double) nr->bytes / nr->ms;
            best = ngx_max(best, rate);
        }
    }

    cand = 0;
    cand_busy = 0;
    cand_rate = 0;

    for (k = 0; k < seg->nnodes; k++) {
        node = seg->nodes[(index + k) % seg->nnodes];

        if (ngx_http_plinth_health_offline(node)) {
            continue;
        }

        nr = ngx_http_plinth_stripe_rate(st, node);
        if (nr == NULL) {
            continue;
        }

        rate = nr->ms ? (double) nr->bytes / nr->ms : best;

        if (nr->ms && rate * NGX_PLINTH_STRIPE_SLOWER < best) {
            continue;   /* dropped from the stripe */
        }

        if (cand == 0 || nr->busy < cand_busy
            || (nr->busy == cand_busy && rate > cand_rate))
        {
            cand = node;
            cand_busy = nr->busy;
            cand_rate = rate;
        }
    }

    /* 0: none fits (all offline): the read loop's own order */
    return cand;
}


static ngx_http_plinth_stripe_rate_t *
ngx_http_plinth_stripe_rate(ngx_http_plinth_stripes_t *st, uint32_t node)
{
    ngx_uint_t                      i;
    ngx_http_plinth_stripe_rate_t  *nr;

    for (i = 0; i < st->nrates; i++) {
        if (st->rates[i].node == node) {
            return &st->rates[i];
        }
    }

    if (st->nrates == NGX_PLINTH_STRIPE_RATES) {
        return NULL;
    }

    nr = &st->rates[st->nrates++];
    ngx_memzero(nr, sizeof(ngx_http_plinth_stripe_rate_t));
    nr->node = node;

    return nr;
}


/*
 * From the read's body filter: every byte of a read of the stripe has
 * arrived (it may wait for its turn to be sent). The replica's rate is
 * what it took from the request to the last byte.
 */
void
ngx_http_plinth_stripe_sample(ngx_http_plinth_ctx_t *rctx,
    ngx_http_plinth_sr_ctx_t *sctx)
{
    ngx_msec_t                      ms;
    ngx_http_plinth_stripe_t       *s;
    ngx_http_plinth_stripe_rate_t  *nr;

    s = rctx->stripes;

    if (s == NULL || s->arrived) {
        return;
    }

    s->arrived = 1;

    if (s->node) {
        nr = ngx_http_plinth_stripe_rate(s->st, s->node);
        if (nr && nr->busy) {
            nr->busy--;
        }
    }

    nr = ngx_http_plinth_stripe_rate(s->st, sctx->node);
    if (nr == NULL) {
        return;
    }

    ms = ngx_current_msec - sctx->started;
    nr->bytes += sctx->received;
    nr->ms += ms ? ms : 1;
}


static ngx_int_t
ngx_http_plinth_stripe_read_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_plinth_stripe_t *s = data;

    ngx_uint_t                      i, k;
    ngx_http_plinth_ctx_t          *ctx;
    ngx_http_plinth_stripe_rate_t  *nr;

    if (s->read) {
        return NGX_OK;
    }

    s->read = 1;

    if (!s->arrived && s->node) {
        /* never arrived whole: the replica asked first is not busy now,
         * and what it did (nothing, or part) counts against it */
        nr = ngx_http_plinth_stripe_rate(s->st, s->node);
        if (nr) {
            if (nr->busy) {
                nr->busy--;
            }
            nr->ms += ngx_max(ngx_current_msec - r->start_msec, 1);
        }
    }

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_plinth_module);

    /* $plinth_nodes: every replica that sent bytes of this GET */
    for (i = 0; i < s->rctx->nserved; i++) {
        for (k = 0; k < ctx->nserved; k++) {
            if (ctx->served[k] == s->rctx->served[i]) {
                break;
            }
        }
        if (k == ctx->nserved && k < NGX_PLINTH_MAX_RF) {
            ctx->served[ctx->nserved++] = s->rctx->served[i];
        }
    }

    if (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE
        || s->rctx->delivered != s->len)
    {
        if (!ctx->headers_sent) {
            /* the first stripe, alone: the main request answers 503 */
            s->st->failed = 1;
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "plinth: stripe %O-%O of %V/%V failed after %O of %O "
                      "bytes: cutting the connection", s->rctx->start,
                      s->rctx->end - 1, &ctx->bucket, &ctx->key,
                      s->rctx->delivered, s->len);
        return NGX_ERROR;
    }

    ctx->delivered += s->len;

    return NGX_OK;
}


/* A sent stripe's read buffers join those to free. */
static ngx_int_t
ngx_http_plinth_stripe_spent(ngx_http_plinth_stripes_t *st,
    ngx_http_plinth_stripe_t *s)
{
    u_char      **buf, **to;
    ngx_uint_t    i;

    buf = s->rctx->spent_bufs->elts;

    for (i = 0; i < s->rctx->spent_bufs->nelts; i++) {
        to = ngx_array_push(st->spent);
        if (to == NULL) {
            return NGX_ERROR;
        }
        *to = buf[i];
    }

    s->rctx->spent_bufs->nelts = 0;

    return NGX_OK;
}


/*
 * The read buffers of sent stripes go back to the pool, each once no
 * buffer of the connection's output chain (bytes not yet on the socket)
 * points into it.
 */
static void
ngx_http_plinth_stripe_free(ngx_http_request_t *r,
    ngx_http_plinth_stripes_t *st)
{
    u_char       **buf, *start, *end;
    ngx_uint_t     i, n;
    ngx_chain_t   *cl;

    buf = st->spent->elts;
    n = 0;

    for (i = 0; i < st->spent->nelts; i++) {
        start = buf[i];
        end = start + st->size + NGX_PLINTH_STRIPE_HEADROOM;

        for (cl = r->out; cl; cl = cl->next) {
            if (cl->buf->pos < end && cl->buf->last > start) {
                break;
            }
        }

        if (cl) {
            buf[n++] = start;   /* still being sent */
            continue;
        }

        ngx_pfree(r->pool, start);
    }

    st->spent->nelts = n;
}
