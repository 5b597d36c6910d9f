/*
 * S3 object operations: PutObject, GetObject, HeadObject, DeleteObject.
 *
 * PUT: the body is read in full (hashed with MD5 on the way in by the
 * module's request body filter, spooled to a temp file by nginx when
 * large), the version is recorded as pending, the body fans out to RF data
 * nodes, and after W acknowledgements the version commits in one
 * transaction; fewer than W is a 503 and the pending row becomes garbage.
 *
 * GET/HEAD: one query returns the current version; the body streams from
 * its replicas (ngx_plinth_fanout.c).
 */

#include "ngx_plinth.h"


/*
 * Late replicas. A replica acknowledged after the commit was sent (a
 * straggler: before plinth_put_linger, 10 ms by default, about a third of
 * small PUTs; now the replica of a failing or slow node) is recorded after
 * the commit. Rather than one
 * transaction each, this worker gathers them (version, node) and they ride
 * on the next PUT commit it sends (plinth_put_commit's last two arguments,
 * sql/023), which applies them in its transaction without waiting for a
 * row lock. When no PUT of this worker is about to commit, or after
 * NGX_PLINTH_LATE_WAIT ms, or when NGX_PLINTH_LATE_MAX are waiting, they go
 * as one statement of their own (plinth_put_add_nodes). Best effort, as
 * before: a record lost (worker exit, failed commit whose request went
 * away, row busy) leaves the version under-replicated and the copy an
 * orphan, which repaird sets right.
 */
#define NGX_PLINTH_LATE_MAX     64
#define NGX_PLINTH_LATE_WAIT    50      /* ms */

typedef struct {
    int64_t                       version;
    uint32_t                      node;
} ngx_http_plinth_late_t;

static ngx_http_plinth_late_t     ngx_http_plinth_late[NGX_PLINTH_LATE_MAX];
static ngx_uint_t                 ngx_http_plinth_nlate;
/* this worker's PUTs that sent their begin but not their commit yet */
static ngx_uint_t                 ngx_http_plinth_puts_open;
static ngx_event_t                ngx_http_plinth_late_ev;


static void ngx_http_plinth_put_body_done(ngx_http_request_t *r);
static void ngx_http_plinth_put_object_begin(ngx_http_request_t *r);
static void ngx_http_plinth_put_begun(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_put_quorum(ngx_http_request_t *r);
static void ngx_http_plinth_put_committed(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_put_aborted(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_put_node_added(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_put_open(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
static void ngx_http_plinth_put_close(void *data);
static void ngx_http_plinth_late_queue(int64_t version, uint32_t node);
static void ngx_http_plinth_late_flush(void);
static void ngx_http_plinth_late_expire(ngx_event_t *ev);
static void ngx_http_plinth_late_flushed(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static u_char *ngx_http_plinth_late_arrays(ngx_pool_t *pool,
    ngx_http_plinth_late_t *late, ngx_uint_t n, u_char **nodes);
static u_char *ngx_http_plinth_nodes_param(ngx_pool_t *pool, uint32_t *nodes,
    ngx_uint_t n);
static ngx_int_t ngx_http_plinth_get_query(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_uint_t stmt);
static void ngx_http_plinth_get_done(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static ngx_int_t ngx_http_plinth_parse_range(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
static ngx_int_t ngx_http_plinth_checksum_out(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, PGresult *res);
static ngx_int_t ngx_http_plinth_get_segments(ngx_http_request_t *r,
    PGresult *res, ngx_plinth_object_t *obj);
static ngx_int_t ngx_http_plinth_part_range(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
static ngx_int_t ngx_http_plinth_response_overrides(ngx_http_request_t *r);
static ngx_int_t ngx_http_plinth_object_headers(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
static void ngx_http_plinth_delete_done(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_delete_marker(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, PGresult *res);


ngx_int_t
ngx_http_plinth_put_object(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    ngx_table_elt_t  *source;

    if (ctx->anonymous) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ACCESS_DENIED, NULL);
        return NGX_OK;
    }

    source = ngx_http_plinth_header_in(r, "x-amz-copy-source");
    if (source) {
        return ngx_http_plinth_copy_object(r, ctx, source);
    }

    /* checked before the body is read: a bad header costs no upload */
    if (ngx_http_plinth_canned_acl(r, &ctx->acl) != NGX_OK
        || ngx_http_plinth_storage_class(r, &ctx->storage_class) != NGX_OK)
    {
        return NGX_OK;
    }

    switch (ngx_http_plinth_put_conditions(r, ctx)) {
    case NGX_OK:
        break;
    case NGX_DECLINED:
        return NGX_OK;
    default:
        return NGX_ERROR;
    }

    return ngx_http_plinth_put_body(r, ctx, ngx_http_plinth_put_object_begin);
}


/*
 * The body of PutObject and UploadPart: read in full, hashed (MD5, the
 * ETag) as it arrives, its length and Content-MD5 checked; then begin(r)
 * records the write and places it (ngx_http_plinth_put_place()).
 */
ngx_int_t
ngx_http_plinth_put_body(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    void (*begin)(ngx_http_request_t *r))
{
    off_t                         length;
    ngx_int_t                     rc;
    ngx_http_plinth_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);

    rc = ngx_http_plinth_body_prepare(r, ctx, &length);
    if (rc != NGX_OK) {
        return rc == NGX_DECLINED ? NGX_OK : rc;
    }

    if (length > pmcf->max_object_size) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ENTITY_TOO_LARGE, NULL);
        return NGX_OK;
    }

    ngx_md5_init(&ctx->md5);
    ctx->hash_body = 1;
    ctx->put_begin = begin;

    if (ctx->want_sha256.len
        && ngx_http_plinth_sha256_start(r, ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_plinth_read_request_body(r, ngx_http_plinth_put_body_done);

    return NGX_OK;
}


static void
ngx_http_plinth_put_body_done(ngx_http_request_t *r)
{
    u_char                        digest[16];
    const char                   *message;
    ngx_plinth_err_e              err;
    ngx_http_plinth_ctx_t        *ctx;
    ngx_http_plinth_main_conf_t  *pmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);
    pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);

    if (ctx->finalized) {
        return;
    }

    if (r->request_body == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->hash_body = 0;
    ngx_md5_final(digest, &ctx->md5);
    ngx_hex_dump(ctx->etag, digest, 16);

    if (ngx_http_plinth_body_check(ctx, &err, &message) != NGX_OK) {
        ngx_http_plinth_error(r, err, message);
        return;
    }

    /* the data nodes get the payload: aws-chunked framing is gone */
    r->headers_in.content_length_n = ctx->body_len;

    if (ctx->sha256 && ngx_http_plinth_sha256_check(ctx) != NGX_OK) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_SHA256_MISMATCH, NULL);
        return;
    }

    if (ctx->body_len > pmcf->max_object_size) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ENTITY_TOO_LARGE, NULL);
        return;
    }

    if (ngx_http_plinth_check_content_md5(r, digest) != NGX_OK) {
        return;
    }

    ctx->put_begin(r);
}


/* PutObject: record the version as pending, then place and send it. */
static void
ngx_http_plinth_put_object_begin(ngx_http_request_t *r)
{
    u_char                 *size;
    ngx_str_t               meta;
    const char             *params[9];
    ngx_http_plinth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    switch (ngx_http_plinth_user_meta(r, &meta)) {
    case NGX_OK:
        break;
    case NGX_DECLINED:
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_METADATA_TOO_LARGE, NULL);
        return;
    default:
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    size = ngx_pnalloc(r->pool, NGX_OFF_T_LEN + 1);
    if (size == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    *ngx_sprintf(size, "%O", ctx->body_len) = '\0';

    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    params[1] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->key);
    params[2] = (char *) size;
    params[3] = (char *) ngx_pnalloc(r->pool, 33);
    params[4] = r->headers_in.content_type
                ? (char *) ngx_http_plinth_cstr(r->pool,
                                              &r->headers_in.content_type->value)
                : NULL;
    params[5] = meta.len ? (char *) meta.data : NULL;
    params[6] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);
    params[7] = ctx->acl ? ctx->acl : "private";
    params[8] = ctx->storage_class;     /* NULL: the bucket's default */

    if (params[0] == NULL || params[1] == NULL || params[3] == NULL
        || params[6] == NULL
        || (r->headers_in.content_type && params[4] == NULL))
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy((u_char *) params[3], ctx->etag, 32);
    ((u_char *) params[3])[32] = '\0';

    if (ngx_http_plinth_pg(r, NGX_PLINTH_SQL_PUT_BEGIN, 9, params,
                           ngx_http_plinth_put_begun)
        != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* its commit is to come: late replicas may wait for it */
    ngx_http_plinth_put_open(r, ctx);
}


/*
 * GET's response-* query parameters replace the stored headers in this
 * answer only (S3: response-content-type, -content-language, -expires,
 * -cache-control, -content-disposition, -content-encoding).
 */
static ngx_int_t
ngx_http_plinth_response_overrides(ngx_http_request_t *r)
{
    ngx_str_t         v;
    ngx_uint_t        i, k;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *found;

    static const char  *params[][2] = {
        { "response-content-type", "Content-Type" },
        { "response-content-language", "Content-Language" },
        { "response-expires", "Expires" },
        { "response-cache-control", "Cache-Control" },
        { "response-content-disposition", "Content-Disposition" },
        { "response-content-encoding", "Content-Encoding" },
        { NULL, NULL }
    };

    for (k = 0; params[k][0]; k++) {
        if (ngx_http_plinth_arg(r, params[k][0], &v) != NGX_OK) {
            continue;
        }

        if (k == 0) {
            r->headers_out.content_type = v;
            r->headers_out.content_type_len = v.len;
            continue;
        }

        found = NULL;
        for (part = &r->headers_out.headers.part; part; part = part->next) {
            h = part->elts;
            for (i = 0; i < part->nelts; i++) {
                if (h[i].hash
                    && h[i].key.len == ngx_strlen(params[k][1])
                    && ngx_strncasecmp(h[i].key.data, (u_char *) params[k][1],
                                       h[i].key.len) == 0)
                {
                    found = &h[i];
                }
            }
        }

        if (found) {
            found->value = v;
            continue;
        }

        if (ngx_http_plinth_add_header(r, params[k][1], &v) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The headers an object keeps: x-amz-meta-* (names lower-cased, at most
 * 2 KiB in all as S3 counts it) and the standard ones S3 stores and
 * returns (Cache-Control, Content-Disposition, Content-Encoding without
 * its aws-chunked token, Content-Language, Expires). Kept as
 * "name:value" lines joined by "\n" (names cannot hold ':', values cannot
 * hold '\n'). NGX_DECLINED when the user metadata is too large.
 */
static const char  *ngx_http_plinth_kept_headers[] = {
    "Cache-Control", "Content-Disposition", "Content-Encoding",
    "Content-Language", "Expires", NULL
};


static const char *
ngx_http_plinth_kept_name(ngx_table_elt_t *h)
{
    ngx_uint_t  k;

    if (h->key.len > 11
        && ngx_strncasecmp(h->key.data, (u_char *) "x-amz-meta-", 11) == 0)
    {
        return "";
    }

    for (k = 0; ngx_http_plinth_kept_headers[k]; k++) {
        if (h->key.len == ngx_strlen(ngx_http_plinth_kept_headers[k])
            && ngx_strncasecmp(h->key.data,
                               (u_char *) ngx_http_plinth_kept_headers[k],
                               h->key.len) == 0)
        {
            return ngx_http_plinth_kept_headers[k];
        }
    }

    return NULL;
}


/* Content-Encoding less "aws-chunked" (transport framing, not content). */
static void
ngx_http_plinth_strip_aws_chunked(ngx_str_t *v)
{
    u_char  *p, *q, *last, *start, *end;

    p = v->data;
    last = p + v->len;
    q = p;

    while (p < last) {
        while (p < last && (*p == ' ' || *p == ',')) {
            p++;
        }
        start = p;
        while (p < last && *p != ',') {
            p++;
        }
        end = p;
        while (end > start && end[-1] == ' ') {
            end--;
        }
        if (end - start == 11
            && ngx_strncasecmp(start, (u_char *) "aws-chunked", 11) == 0)
        {
            continue;
        }
        if (end > start) {
            if (q != v->data) {
                *q++ = ',';
            }
            q = ngx_movemem(q, start, end - start);
        }
    }

    v->len = q - v->data;
}


ngx_int_t
ngx_http_plinth_user_meta(ngx_http_request_t *r, ngx_str_t *meta)
{
    size_t            total;
    u_char           *p;
    ngx_str_t         v;
    ngx_uint_t        i;
    const char       *name;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    meta->len = 0;
    meta->data = NULL;
    total = 0;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;
        for (i = 0; i < part->nelts; i++) {
            name = ngx_http_plinth_kept_name(&h[i]);
            if (name == NULL) {
                continue;
            }
            if (*name == '\0') {
                total += h[i].key.len - 11 + h[i].value.len;
            }
            meta->len += h[i].key.len + 1 + h[i].value.len + 1;
        }
    }

    if (total > NGX_PLINTH_MAX_META_SIZE) {
        return NGX_DECLINED;
    }

    if (meta->len == 0) {
        return NGX_OK;
    }

    meta->data = ngx_pnalloc(r->pool, meta->len + 1);
    if (meta->data == NULL) {
        return NGX_ERROR;
    }

    p = meta->data;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;
        for (i = 0; i < part->nelts; i++) {
            name = ngx_http_plinth_kept_name(&h[i]);
            if (name == NULL) {
                continue;
            }

            v.len = h[i].value.len;
            v.data = ngx_pnalloc(r->pool, v.len + 1);
            if (v.data == NULL) {
                return NGX_ERROR;
            }
            ngx_memcpy(v.data, h[i].value.data, v.len);

            if (*name == 'C' && ngx_strcmp(name, "Content-Encoding") == 0) {
                ngx_http_plinth_strip_aws_chunked(&v);
                if (v.len == 0) {
                    continue;
                }
            }

            if (*name == '\0') {
                ngx_strlow(p, h[i].key.data, h[i].key.len);
                p += h[i].key.len;
            } else {
                p = ngx_cpymem(p, name, ngx_strlen(name));
            }
            *p++ = ':';
            p = ngx_cpymem(p, v.data, v.len);
            *p++ = '\n';
        }
    }

    if (p == meta->data) {
        meta->len = 0;
        meta->data = NULL;
        return NGX_OK;
    }

    /* no trailing newline */
    meta->len = p - meta->data - 1;
    meta->data[meta->len] = '\0';

    return NGX_OK;
}


static void
ngx_http_plinth_put_begun(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    size_t                  n;
    u_char                 *hkey;
    ngx_http_plinth_ctx_t  *ctx;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (ngx_http_plinth_copy_value(r->pool, res, 0, 0, &ctx->version_id)
            != NGX_OK
        || ngx_http_plinth_copy_value(r->pool, res, 0, 1, &ctx->blob_id)
            != NGX_OK
        || ngx_http_plinth_copy_value(r->pool, res, 0, 2, &ctx->vid)
            != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->versioned = (PQgetvalue(res, 0, 3)[0] == 't');
    ctx->tier = ngx_http_plinth_class_tier(PQgetvalue(res, 0, 4),
                                           PQgetlength(res, 0, 4));

    /* placement: the ring's RF nodes for "bucket/key" of its tier */
    n = ctx->bucket.len + 1 + ctx->key.len;
    hkey = ngx_pnalloc(r->pool, n);
    if (hkey == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(hkey, ctx->bucket.data, ctx->bucket.len);
    hkey[ctx->bucket.len] = '/';
    ngx_memcpy(hkey + ctx->bucket.len + 1, ctx->key.data, ctx->key.len);

    ngx_http_plinth_put_place(r, ctx, hkey, n, ngx_http_plinth_put_quorum);
}


/*
 * Sends the body of ctx->blob_id to the ring's RF nodes for hkey; decided(r)
 * runs once W acknowledged or they cannot (ngx_http_plinth_put_nodes()
 * tells which and gives the nodes to record).
 */
void
ngx_http_plinth_put_place(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    u_char *hkey, size_t len, void (*decided)(ngx_http_request_t *r))
{
    size_t                        navoid;
    const char                   *tier;
    const uint32_t               *avoid;
    ngx_http_plinth_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);

    tier = plinth_ring_tier_or_hotter(pmcf->ring, ctx->tier);

    /* not on nodes repaird found offline or full (ngx_plinth_health.c) */
    navoid = ngx_http_plinth_health_avoid(&avoid);

    /* a replica that fails is replaced by the ring's next node for it */
    ctx->place_key = hkey;
    ctx->place_key_len = len;

    ctx->ntargets = plinth_ring_lookup(pmcf->ring, hkey, len, tier, avoid,
                                       navoid, pmcf->rf, ctx->targets);

    if (ctx->ntargets < pmcf->w && navoid) {
        /* too few left for the quorum: let the fan-out decide */
        ctx->ntargets = plinth_ring_lookup(pmcf->ring, hkey, len, tier, NULL,
                                           0, pmcf->rf, ctx->targets);
    }

    if (ctx->ntargets < pmcf->w) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "plinth: only %ui data nodes of tier %s for a write "
                      "quorum of %ui", ctx->ntargets, tier, pmcf->w);
        ctx->state = 2;
        decided(r);
        return;
    }

    if (ngx_http_plinth_fanout_put(r, ctx, decided) != NGX_OK) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


/*
 * After the fan-out: *quorum tells whether W acknowledged; the result is
 * the nodes to record as an integer[] literal: those that acknowledged, or
 * for a failed write every node tried (where its garbage may be).
 */
u_char *
ngx_http_plinth_put_nodes(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    ngx_uint_t *quorum)
{
    ngx_http_plinth_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);

    *quorum = (ctx->acked >= pmcf->w);

    if (*quorum) {
        return ngx_http_plinth_nodes_param(r->pool, ctx->acked_nodes,
                                           ctx->acked);
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "plinth: write of blob %V reached %ui of %ui data "
                  "nodes, quorum %ui",
                  &ctx->blob_id, ctx->acked, ctx->ntargets, pmcf->w);

    return ngx_http_plinth_nodes_param(r->pool, ctx->targets, ctx->ntargets);
}


/* Called once the fan-out is decided: W acknowledged, or it cannot be. */
static void
ngx_http_plinth_put_quorum(ngx_http_request_t *r)
{
    size_t                     size;
    const char                *params[8];
    ngx_uint_t                 quorum;
    ngx_http_plinth_ctx_t     *ctx;
    ngx_http_plinth_late_t    *late;
    ngx_plinth_pg_handler_pt   handler;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->version_id);
    params[1] = (char *) ngx_http_plinth_put_nodes(r, ctx, &quorum);
    params[2] = ctx->if_none_match ? "true" : "false";
    params[3] = ctx->if_match.len ? (char *) ctx->if_match.data : NULL;
    if (params[0] == NULL || params[1] == NULL
        || ngx_http_plinth_checksum_params(r, ctx, &params[4], &params[5])
           != NGX_OK)
    {
        ngx_http_plinth_put_close(ctx);
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the commit carries the late replicas waiting in this worker */
    params[6] = "{}";
    params[7] = "{}";

    if (quorum && ngx_http_plinth_nlate) {
        size = ngx_http_plinth_nlate * sizeof(ngx_http_plinth_late_t);
        late = ngx_palloc(r->pool, size);
        if (late) {
            ngx_memcpy(late, ngx_http_plinth_late, size);
            params[6] = (char *) ngx_http_plinth_late_arrays(r->pool, late,
                                                ngx_http_plinth_nlate,
                                                (u_char **) &params[7]);
        }

        if (late && params[6]) {
            ctx->late_carried = late;
            ctx->nlate_carried = ngx_http_plinth_nlate;
            ngx_http_plinth_nlate = 0;
            if (ngx_http_plinth_late_ev.timer_set) {
                ngx_del_timer(&ngx_http_plinth_late_ev);
            }

        } else {
            params[6] = "{}";
            params[7] = "{}";
        }
    }

    ngx_http_plinth_put_close(ctx);

    handler = quorum ? ngx_http_plinth_put_committed
                     : ngx_http_plinth_put_aborted;

    if (ngx_http_plinth_pg(r, handler == ngx_http_plinth_put_committed
                              ? NGX_PLINTH_SQL_PUT_COMMIT
                              : NGX_PLINTH_SQL_PUT_ABORT,
                           handler == ngx_http_plinth_put_committed ? 8 : 2,
                           params, handler)
        != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


static u_char *
ngx_http_plinth_nodes_param(ngx_pool_t *pool, uint32_t *nodes, ngx_uint_t n)
{
    u_char      *p, *s;
    ngx_uint_t   i;

    s = ngx_pnalloc(pool, 2 + n * (NGX_INT32_LEN + 1) + 1);
    if (s == NULL) {
        return NULL;
    }

    p = s;
    *p++ = '{';

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, i ? ",%uD" : "%uD", nodes[i]);
    }

    *p++ = '}';
    *p = '\0';

    return s;
}


static void
ngx_http_plinth_put_committed(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    ngx_uint_t               i;
    ngx_http_plinth_ctx_t   *ctx;
    ngx_http_plinth_late_t  *late;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        /* the late replicas it carried were not recorded: later */
        late = ctx->late_carried;
        for (i = 0; i < ctx->nlate_carried; i++) {
            ngx_http_plinth_late_queue(late[i].version, late[i].node);
        }
        ctx->nlate_carried = 0;

        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    /* a conditional write that did not hold is garbage already */
    if (ngx_strcmp(PQgetvalue(res, 0, 0), "PreconditionFailed") == 0) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_PRECONDITION_FAILED, NULL);
        return;
    }

    if (ngx_strcmp(PQgetvalue(res, 0, 0), "NoSuchKey") == 0) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_NO_SUCH_KEY, NULL);
        return;
    }

    ngx_http_plinth_put_answer(r, ctx, NULL);
}


/*
 * The write is committed: record the copies that landed meanwhile and
 * answer 200 with the ETag (etag, or the body's MD5 when NULL).
 */
void
ngx_http_plinth_put_answer(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    ngx_str_t *etag)
{
    ngx_int_t   sent;
    ngx_str_t   v;
    ngx_uint_t  i;

    ctx->committed = 1;
    for (i = 0; i < ctx->nlate; i++) {
        ngx_http_plinth_put_add_node(r, ctx, ctx->late_nodes[i]);
    }

    v.len = (etag ? etag->len : 32) + 2;
    v.data = ngx_pnalloc(r->pool, v.len);
    if (v.data == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    v.data[0] = '"';
    ngx_memcpy(v.data + 1, etag ? etag->data : ctx->etag, v.len - 2);
    v.data[v.len - 1] = '"';

    if (ngx_http_plinth_add_header(r, "ETag", &v) != NGX_OK) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->versioned && ctx->vid.len
        && ngx_http_plinth_add_header(r, "x-amz-version-id", &ctx->vid)
           != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the checksum the client sent was verified: say so, as S3 does */
    if (ngx_http_plinth_checksum_header(r, ctx) != NGX_OK) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    sent = ngx_http_plinth_send_body(r, NGX_HTTP_OK, NULL, NULL);
    ngx_http_plinth_finalize(r, sent);
}


/*
 * A copy that landed after the commit is recorded as well, best effort:
 * if this fails (or, for a part, the request is gone first), repair finds
 * the object under-replicated and the blob an orphan, and sets both
 * right. A version's goes to the worker's batch (see the top of this
 * file); a part's (UploadPart) is one statement, known by its blob.
 */
void
ngx_http_plinth_put_add_node(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, uint32_t node)
{
    u_char      *n;
    const char  *params[2];

    if (ctx->upload_id.len == 0) {
        ngx_http_plinth_late_queue(ngx_atoof(ctx->version_id.data,
                                             ctx->version_id.len),
                                   node);
        return;
    }

    n = ngx_pnalloc(r->pool, NGX_INT32_LEN + 1);
    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->blob_id);
    if (n == NULL || params[0] == NULL) {
        return;
    }

    *ngx_sprintf(n, "%uD", node) = '\0';
    params[1] = (char *) n;

    (void) ngx_http_plinth_pg(r, NGX_PLINTH_SQL_PART_ADD_NODE, 2, params,
                              ngx_http_plinth_put_node_added);
}


static void
ngx_http_plinth_put_node_added(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    if (rc != NGX_OK || (PQresultStatus(res) != PGRES_COMMAND_OK
                         && PQresultStatus(res) != PGRES_TUPLES_OK))
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "plinth: could not record a late replica; repair "
                      "will find it");
    }
}


/*
 * A PUT of this worker sent its begin: its commit will come (late
 * replicas wait for it) until ngx_http_plinth_put_close(), called when
 * the commit or abort is sent, or when the request goes first (an error
 * of the begin, a client gone).
 */
static void
ngx_http_plinth_put_open(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return;
    }

    cln->handler = ngx_http_plinth_put_close;
    cln->data = ctx;

    ctx->put_open = 1;
    ngx_http_plinth_puts_open++;
}


static void
ngx_http_plinth_put_close(void *data)
{
    ngx_http_plinth_ctx_t *ctx = data;

    if (!ctx->put_open) {
        return;
    }

    ctx->put_open = 0;
    ngx_http_plinth_puts_open--;

    if (ngx_http_plinth_puts_open == 0 && ngx_http_plinth_nlate) {
        ngx_http_plinth_late_flush();
    }
}


static void
ngx_http_plinth_late_queue(int64_t version, uint32_t node)
{
    ngx_event_t  *ev;

    if (version <= 0) {
        return;
    }

    if (ngx_http_plinth_nlate == NGX_PLINTH_LATE_MAX) {
        ngx_http_plinth_late_flush();
    }

    ngx_http_plinth_late[ngx_http_plinth_nlate].version = version;
    ngx_http_plinth_late[ngx_http_plinth_nlate].node = node;
    ngx_http_plinth_nlate++;

    /* no commit of this worker to ride on: now */
    if (ngx_http_plinth_puts_open == 0 || ngx_exiting || ngx_terminate
        || ngx_quit)
    {
        ngx_http_plinth_late_flush();
        return;
    }

    ev = &ngx_http_plinth_late_ev;

    if (!ev->timer_set) {
        ev->handler = ngx_http_plinth_late_expire;
        ev->data = ev;
        ev->log = ngx_cycle->log;
        ev->cancelable = 1;
        ngx_add_timer(ev, NGX_PLINTH_LATE_WAIT);
    }
}


static void
ngx_http_plinth_late_expire(ngx_event_t *ev)
{
    ngx_http_plinth_late_flush();
}


/* The late replicas waiting, as one statement of their own. */
static void
ngx_http_plinth_late_flush(void)
{
    u_char      *v, *nodes = NULL;
    ngx_uint_t   n;
    ngx_pool_t  *pool;
    const char  *params[2];

    n = ngx_http_plinth_nlate;
    ngx_http_plinth_nlate = 0;

    if (ngx_http_plinth_late_ev.timer_set) {
        ngx_del_timer(&ngx_http_plinth_late_ev);
    }

    if (n == 0) {
        return;
    }

    /* the pool copies the parameters */
    pool = ngx_create_pool(1024, ngx_cycle->log);

    v = pool ? ngx_http_plinth_late_arrays(pool, ngx_http_plinth_late, n,
                                           &nodes)
             : NULL;

    if (v) {
        params[0] = (char *) v;
        params[1] = (char *) nodes;

        if (ngx_plinth_pg_background(ngx_cycle->log,
                                     NGX_PLINTH_SQL_PUT_ADD_NODE, 2, params,
                                     ngx_http_plinth_late_flushed, NULL)
            != NGX_OK)
        {
            v = NULL;
        }
    }

    if (v == NULL) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "plinth: could not record %ui late replicas; repair "
                      "will find them", n);
    }

    if (pool) {
        ngx_destroy_pool(pool);
    }
}


static void
ngx_http_plinth_late_flushed(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "plinth: could not record late replicas; repair "
                      "will find them");
    }
}


/* "{v1,v2,...}" of the versions (the result) and "{n1,n2,...}" (*nodes) */
static u_char *
ngx_http_plinth_late_arrays(ngx_pool_t *pool, ngx_http_plinth_late_t *late,
    ngx_uint_t n, u_char **nodes)
{
    u_char      *v, *p, *q;
    ngx_uint_t   i;

    v = ngx_pnalloc(pool, 3 + n * (NGX_INT64_LEN + 1));
    q = ngx_pnalloc(pool, 3 + n * (NGX_INT32_LEN + 1));
    if (v == NULL || q == NULL) {
        return NULL;
    }

    *nodes = q;
    p = v;
    *p++ = '{';
    *q++ = '{';

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, i ? ",%L" : "%L", late[i].version);
        q = ngx_sprintf(q, i ? ",%uD" : "%uD", late[i].node);
    }

    *p++ = '}';
    *p = '\0';
    *q++ = '}';
    *q = '\0';

    return v;
}


static void
ngx_http_plinth_put_aborted(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "plinth: could not mark a failed write; garbage "
                      "collection will find its pending row");
    }

    ngx_http_plinth_error(r, NGX_PLINTH_ERR_SERVICE_UNAVAILABLE,
                          "Not enough data nodes acknowledged the write.");
}


ngx_int_t
ngx_http_plinth_get_object(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    ngx_int_t  n;
    ngx_str_t  v;

    if (ngx_http_plinth_version_arg(r, ctx) != NGX_OK) {
        return NGX_OK;
    }

    /* ?partNumber=N: the N-th part of a multipart object, as a range */
    if (ngx_http_plinth_arg(r, "partNumber", &v) == NGX_OK) {
        n = ngx_atoi(v.data, v.len);
        if (n < 1 || n > 10000) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                                  "Part number must be an integer between "
                                  "1 and 10000, inclusive");
            return NGX_OK;
        }

        if (r->headers_in.range) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_REQUEST,
                                  "Cannot specify both Range header and "
                                  "partNumber query parameter");
            return NGX_OK;
        }

        ctx->part_number = n;
    }

    return ngx_http_plinth_get_query(r, ctx, ctx->vid.len
                                             ? NGX_PLINTH_SQL_GET
                                             : NGX_PLINTH_SQL_GET_CURRENT);
}


/*
 * GET's metadata: NGX_PLINTH_SQL_GET_CURRENT (bucket, key) for the current
 * version of anything but a multipart object, NGX_PLINTH_SQL_GET (bucket,
 * key, version id or NULL) for the rest.
 */
static ngx_int_t
ngx_http_plinth_get_query(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    ngx_uint_t stmt)
{
    const char                   *params[3];
    ngx_http_plinth_main_conf_t  *pmcf;

    if (stmt == NGX_PLINTH_SQL_GET_CURRENT) {
        pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);
        if (pmcf->get_coalesce) {
            /* with other requests' lookups (ngx_plinth_getq.c) */
            return ngx_http_plinth_get_lookup(r, ngx_http_plinth_get_done);
        }
    }

    if (ngx_http_plinth_cstrs(r->pool, params, 2, &ctx->bucket, &ctx->key)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    params[2] = ctx->vid.len ? (char *) ctx->vid.data : NULL;

    return ngx_http_plinth_pg(r, stmt, stmt == NGX_PLINTH_SQL_GET ? 3 : 2,
                              params, ngx_http_plinth_get_done);
}


static void
ngx_http_plinth_get_done(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_http_plinth_ctx_t  *ctx;
    ngx_plinth_object_t    *obj;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);
    obj = &ctx->obj;

    if (PQntuples(res) == 0) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_NO_SUCH_BUCKET, NULL);
        return;
    }

    if (PQfnumber(res, "seg_part") < 0
        && !PQgetisnull(res, 0, PQfnumber(res, "mp_parts")))
    {
        /* multipart, found by NGX_PLINTH_SQL_GET_CURRENT (no seg_* columns):
         * asked again with the statement that has its parts */
        if (ngx_http_plinth_get_query(r, ctx, NGX_PLINTH_SQL_GET) != NGX_OK) {
            ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }
        return;
    }

    /* the owner, or anyone when the bucket or the object is public-read */
    if (!ngx_http_plinth_may_read(ctx, res, 0, PQfnumber(res, "owner_id"),
                                  PQgetvalue(res, 0,
                                             PQfnumber(res, "bucket_acl")),
                                  PQgetisnull(res, 0,
                                              PQfnumber(res, "object_acl"))
                                  ? NULL
                                  : PQgetvalue(res, 0,
                                               PQfnumber(res, "object_acl"))))
    {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ACCESS_DENIED, NULL);
        return;
    }

    ctx->versioned = (PQgetvalue(res, 0, PQfnumber(res, "versioned"))[0]
                      == 't');

    if (PQgetisnull(res, 0, 0)) {
        ngx_http_plinth_error(r, ctx->vid.len ? NGX_PLINTH_ERR_NO_SUCH_VERSION
                                              : NGX_PLINTH_ERR_NO_SUCH_KEY,
                              NULL);
        return;
    }

    if (PQgetvalue(res, 0, 0)[0] == 't') {
        ngx_http_plinth_delete_marker(r, ctx, res);
        return;
    }

    if (ctx->versioned
        && (ngx_http_plinth_copy_value(r->pool, res, 0,
                                       PQfnumber(res, "vid"), &ctx->vid)
            != NGX_OK
            || ngx_http_plinth_add_header(r, "x-amz-version-id", &ctx->vid)
               != NGX_OK))
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_plinth_copy_value(r->pool, res, 0, 1, &obj->version_id)
            == NGX_ERROR
        || ngx_http_plinth_copy_value(r->pool, res, 0, 2, &obj->blob_id)
            == NGX_ERROR
        || ngx_http_plinth_copy_value(r->pool, res, 0, 4, &obj->etag)
            == NGX_ERROR
        || ngx_http_plinth_copy_value(r->pool, res, 0, 5, &obj->content_type)
            == NGX_ERROR
        || ngx_http_plinth_copy_value(r->pool, res, 0, 6, &obj->meta)
            == NGX_ERROR
        || ngx_http_plinth_copy_value(r->pool, res, 0,
                                      PQfnumber(res, "sclass"),
                                      &obj->storage_class)
            == NGX_ERROR)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->blob_id = obj->blob_id;
    obj->size = ngx_atoof((u_char *) PQgetvalue(res, 0, 3),
                          PQgetlength(res, 0, 3));
    obj->mtime = ngx_atotm((u_char *) PQgetvalue(res, 0, 8),
                           PQgetlength(res, 0, 8));

    /* placement "1,2,3" */
    obj->nnodes = ngx_http_plinth_parse_nodes((u_char *) PQgetvalue(res, 0, 7),
                                              PQgetlength(res, 0, 7),
                                              obj->nodes);

    if (ngx_http_plinth_get_segments(r, res, obj) != NGX_OK) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_plinth_get_conditions(r, ctx) != NGX_OK) {
        return;
    }

    if (ctx->part_number) {
        if (ngx_http_plinth_part_range(r, ctx) != NGX_OK) {
            return;
        }

    } else if (ngx_http_plinth_parse_range(r, ctx) != NGX_OK) {
        return;
    }

    if (ngx_http_plinth_object_headers(r, ctx) != NGX_OK
        || ngx_http_plinth_checksum_out(r, ctx, res) != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (r->method == NGX_HTTP_HEAD || ctx->end == ctx->start) {
        r->header_only = (r->method == NGX_HTTP_HEAD);
        rc = ngx_http_send_header(r);
        if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
            ngx_http_plinth_finalize(r, rc);
            return;
        }
        ngx_http_plinth_finalize(r, ngx_http_send_special(r, NGX_HTTP_LAST));
        return;
    }

    rc = ngx_http_plinth_stripe_wanted(r, ctx)
         ? ngx_http_plinth_stripe_start(r, ctx)
         : ngx_http_plinth_read_start(r, ctx);

    if (rc != NGX_OK) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


/*
 * x-amz-checksum-mode: ENABLED: the stored checksum of what is sent, as
 * S3 does: the object's for a whole GET/HEAD, the part's for partNumber,
 * none for a Range (the client could not check it).
 */
static ngx_int_t
ngx_http_plinth_checksum_out(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, PGresult *res)
{
    int               row, calg, cval;
    ngx_str_t         value, type;
    ngx_uint_t        alg;
    ngx_table_elt_t  *h;

    h = ngx_http_plinth_header_in(r, "x-amz-checksum-mode");

    if (h == NULL || h->value.len != 7
        || ngx_strncasecmp(h->value.data, (u_char *) "ENABLED", 7) != 0
        || r->headers_in.range)
    {
        return NGX_OK;
    }

    row = 0;
    calg = PQfnumber(res, "cks_alg");
    cval = PQfnumber(res, "cks");
    ngx_str_set(&type, "FULL_OBJECT");

    if (ctx->part_number && ctx->obj.parts) {
        row = (int) ctx->obj.part_seg;
        calg = PQfnumber(res, "seg_cks_alg");
        cval = PQfnumber(res, "seg_cks");

    } else if (!PQgetisnull(res, 0, PQfnumber(res, "cks_type"))) {
        /* the header outlives res: a copy in the request's pool */
        if (ngx_http_plinth_copy_value(r->pool, res, 0,
                                       PQfnumber(res, "cks_type"), &type)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (row >= PQntuples(res) || PQgetisnull(res, row, calg)
        || PQgetisnull(res, row, cval))
    {
        return NGX_OK;
    }

    alg = ngx_http_plinth_checksum_alg_name((u_char *) PQgetvalue(res, row,
                                                                  calg),
                                            PQgetlength(res, row, calg));
    if (alg == NGX_PLINTH_CKS_NONE
        || ngx_http_plinth_copy_value(r->pool, res, row, cval, &value)
           != NGX_OK)
    {
        return NGX_OK;
    }

    if (ngx_http_plinth_add_header(r, ngx_http_plinth_cks_headers[alg],
                                   &value)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_plinth_add_header(r, "x-amz-checksum-type", &type);
}


/* A PostgreSQL array's text of node ids ("1,2,3" inside the braces) into
 * nodes (at most NGX_PLINTH_MAX_RF); GET's and batch GET's placements. */
ngx_uint_t
ngx_http_plinth_parse_nodes(u_char *p, size_t len, uint32_t *nodes)
{
    u_char      *last, *start;
    ngx_int_t    n;
    ngx_uint_t   nnodes;

    last = p + len;
    nnodes = 0;

    while (p < last && nnodes < NGX_PLINTH_MAX_RF) {
        start = p;
        while (p < last && *p != ',') {
            p++;
        }
        n = ngx_atoi(start, p - start);
        if (n > 0) {
            nodes[nnodes++] = (uint32_t) n;
        }
        p++;
    }

    return nnodes;
}


/*
 * The object's bytes as segments: the version's blob for a single PUT,
 * or one row per segment of each part (columns found by name) for a
 * multipart object.
 */
static ngx_int_t
ngx_http_plinth_get_segments(ngx_http_request_t *r, PGresult *res,
    ngx_plinth_object_t *obj)
{
    int                    i, n, cparts, cpart, cblob, coff, csize, cnodes,
                           cboff;
    ngx_uint_t             parts;
    ngx_plinth_segment_t  *seg;

    cparts = PQfnumber(res, "mp_parts");
    cpart = PQfnumber(res, "seg_part");
    cblob = PQfnumber(res, "seg_blob");
    coff = PQfnumber(res, "seg_offset");
    csize = PQfnumber(res, "seg_size");
    cnodes = PQfnumber(res, "seg_nodes");
    cboff = PQfnumber(res, "seg_blob_offset");

    if (cparts < 0 || PQgetisnull(res, 0, cparts)) {
        obj->parts = 0;

        if (obj->size < 0 || (obj->size > 0 && obj->blob_id.len == 0)) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "plinth: version %V has no blob",
                          &obj->version_id);
            return NGX_ERROR;
        }

        obj->segs = ngx_pcalloc(r->pool, sizeof(ngx_plinth_segment_t));
        if (obj->segs == NULL) {
            return NGX_ERROR;
        }

        obj->nsegs = 1;
        seg = &obj->segs[0];
        seg->blob_id = obj->blob_id;
        seg->size = obj->size;
        seg->part_number = 1;
        ngx_memcpy(seg->nodes, obj->nodes, sizeof(obj->nodes));
        seg->nnodes = obj->nnodes;

        return NGX_OK;
    }

    n = PQntuples(res);
    obj->parts = ngx_atoi((u_char *) PQgetvalue(res, 0, cparts),
                          PQgetlength(res, 0, cparts));

    obj->segs = ngx_pcalloc(r->pool, n * sizeof(ngx_plinth_segment_t));
    if (obj->segs == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        seg = &obj->segs[i];

        if (PQgetisnull(res, i, cblob)
            || ngx_http_plinth_copy_value(r->pool, res, i, cblob,
                                          &seg->blob_id) != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "plinth: multipart version %V has no parts",
                          &obj->version_id);
            return NGX_ERROR;
        }

        seg->part_number = ngx_atoi((u_char *) PQgetvalue(res, i, cpart),
                                    PQgetlength(res, i, cpart));
        seg->offset = ngx_atoof((u_char *) PQgetvalue(res, i, coff),
                                PQgetlength(res, i, coff));
        seg->size = ngx_atoof((u_char *) PQgetvalue(res, i, csize),
                              PQgetlength(res, i, csize));
        seg->blob_offset = ngx_atoof((u_char *) PQgetvalue(res, i, cboff),
                                     PQgetlength(res, i, cboff));
        seg->nnodes = ngx_http_plinth_parse_nodes(
                          (u_char *) PQgetvalue(res, i, cnodes),
                          PQgetlength(res, i, cnodes), seg->nodes);
    }

    obj->nsegs = n;

    /* contiguous runs, as many distinct parts as the version says */
    parts = 0;
    for (i = 0; i < n; i++) {
        if (i == 0 || obj->segs[i].part_number != obj->segs[i - 1].part_number)
        {
            parts++;
        }
        if (obj->segs[i].size < 0 || obj->segs[i].blob_offset < 0
            || obj->segs[i].offset != (i ? obj->segs[i - 1].offset
                                           + obj->segs[i - 1].size
                                         : 0))
        {
            parts = 0;
            break;
        }
    }

    if (parts != obj->parts
        || obj->segs[n - 1].offset + obj->segs[n - 1].size != obj->size)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "plinth: the parts of version %V do not add up",
                      &obj->version_id);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * ?partNumber=N: the N-th part (in object order) as a range; a single-PUT
 * object is one part. Past the last part: 416 InvalidPartNumber.
 */
static ngx_int_t
ngx_http_plinth_part_range(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    ngx_uint_t             i, part, first;
    ngx_plinth_object_t   *obj;
    ngx_plinth_segment_t  *seg;

    obj = &ctx->obj;
    part = 0;
    first = 0;

    /* the N-th run of segments of one part number */
    for (i = 0; i < obj->nsegs; i++) {
        if (i == 0 || obj->segs[i].part_number != obj->segs[i - 1].part_number)
        {
            if (++part == ctx->part_number) {
                first = i;
            } else if (part > ctx->part_number) {
                break;
            }
        }
    }

    if (ctx->part_number > part) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_PART_NUMBER, NULL);
        return NGX_ERROR;
    }

    seg = &obj->segs[i - 1];
    obj->part_seg = first;

    ctx->start = obj->segs[first].offset;
    ctx->end = seg->offset + seg->size;
    ctx->ranged = 1;

    return NGX_OK;
}


/*
 * One byte range, as S3 serves it: "bytes=a-b", "bytes=a-", "bytes=-n".
 * A header that does not parse is ignored (the whole object is sent, as
 * RFC 9110 asks); a range that starts past the end is 416 InvalidRange.
 */
static ngx_int_t
ngx_http_plinth_parse_range(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    u_char     *p, *last;
    off_t       a, b, size;
    ngx_uint_t  suffix;

    size = ctx->obj.size;
    ctx->start = 0;
    ctx->end = size;
    ctx->ranged = 0;

    if (r->headers_in.range == NULL) {
        return NGX_OK;
    }

    p = r->headers_in.range->value.data;
    last = p + r->headers_in.range->value.len;

    if (last - p < 7 || ngx_strncasecmp(p, (u_char *) "bytes=", 6) != 0) {
        return NGX_OK;
    }

    p += 6;
    a = -1;
    b = -1;
    suffix = 0;

    while (p < last && *p == ' ') { p++; }

    if (p < last && *p == '-') {
        suffix = 1;
        p++;
    } else {
        for (a = 0; p < last && *p >= '0' && *p <= '9'; p++) {
            if (a >= (NGX_MAX_OFF_T_VALUE - 9) / 10) {
                return NGX_OK;
            }
            a = a * 10 + (*p - '0');
        }
        if (p == last || *p != '-') {
            return NGX_OK;
        }
        p++;
    }

    if (p < last && *p >= '0' && *p <= '9') {
        for (b = 0; p < last && *p >= '0' && *p <= '9'; p++) {
            if (b >= (NGX_MAX_OFF_T_VALUE - 9) / 10) {
                return NGX_OK;
            }
            b = b * 10 + (*p - '0');
        }
    }

    while (p < last && *p == ' ') { p++; }

    if (p != last) {
        /* several ranges, or garbage: S3 answers with the whole object */
        return NGX_OK;
    }

    if (suffix) {
        if (b < 0) {
            return NGX_OK;
        }
        if (b == 0 || size == 0) {
            goto unsatisfiable;
        }
        ctx->start = b >= size ? 0 : size - b;
        ctx->end = size;

    } else {
        if (b >= 0 && b < a) {
            return NGX_OK;
        }
        if (a >= size) {
            goto unsatisfiable;
        }
        ctx->start = a;
        ctx->end = (b < 0 || b >= size) ? size : b + 1;
    }

    ctx->ranged = 1;
    return NGX_OK;

unsatisfiable:

    /* the error answer carries Content-Range: bytes * /size */
    ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_RANGE, NULL);
    return NGX_ERROR;
}


static ngx_int_t
ngx_http_plinth_object_headers(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    u_char               *p, *last, *colon, *nl;
    ngx_str_t             v;
    ngx_table_elt_t      *h;
    ngx_plinth_object_t  *obj;

    obj = &ctx->obj;

    r->headers_out.status = ctx->ranged ? NGX_HTTP_PARTIAL_CONTENT
                                        : NGX_HTTP_OK;
    r->headers_out.content_length_n = ctx->end - ctx->start;
    r->headers_out.last_modified_time = obj->mtime;

    if (obj->content_type.len) {
        r->headers_out.content_type = obj->content_type;
    } else {
        ngx_str_set(&r->headers_out.content_type, "binary/octet-stream");
    }
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    v.len = obj->etag.len + 2;
    v.data = ngx_pnalloc(r->pool, v.len);
    if (v.data == NULL) {
        return NGX_ERROR;
    }
    v.data[0] = '"';
    ngx_memcpy(v.data + 1, obj->etag.data, obj->etag.len);
    v.data[v.len - 1] = '"';

    if (ngx_http_plinth_add_header(r, "ETag", &v) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_str_set(&v, "bytes");
    if (ngx_http_plinth_add_header(r, "Accept-Ranges", &v) != NGX_OK) {
        return NGX_ERROR;
    }

    /* as S3: only a class other than STANDARD is named */
    if (obj->storage_class.len
        && !(obj->storage_class.len == 8
             && ngx_strncmp(obj->storage_class.data, "STANDARD", 8) == 0)
        && ngx_http_plinth_add_header(r, "x-amz-storage-class",
                                      &obj->storage_class)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->part_number && obj->parts) {
        v.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (v.data == NULL) {
            return NGX_ERROR;
        }
        v.len = ngx_sprintf(v.data, "%ui", obj->parts) - v.data;

        if (ngx_http_plinth_add_header(r, "x-amz-mp-parts-count", &v)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ctx->ranged) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }
        h->hash = 1;
        ngx_str_set(&h->key, "Content-Range");
        h->value.data = ngx_pnalloc(r->pool, sizeof("bytes -/") - 1
                                             + 3 * NGX_OFF_T_LEN);
        if (h->value.data == NULL) {
            return NGX_ERROR;
        }
        h->value.len = ngx_sprintf(h->value.data, "bytes %O-%O/%O",
                                   ctx->start, ctx->end - 1, obj->size)
                       - h->value.data;
        r->headers_out.content_range = h;
    }

    /* user metadata: "x-amz-meta-name:value" lines */
    p = obj->meta.data;
    last = p ? p + obj->meta.len : NULL;

    while (p && p < last) {
        nl = ngx_strlchr(p, last, '\n');
        if (nl == NULL) {
            nl = last;
        }
        colon = ngx_strlchr(p, nl, ':');
        if (colon) {
            h = ngx_list_push(&r->headers_out.headers);
            if (h == NULL) {
                return NGX_ERROR;
            }
            h->hash = 1;
            h->key.data = p;
            h->key.len = colon - p;
            h->value.data = colon + 1;
            h->value.len = nl - (colon + 1);
        }
        p = nl + 1;
    }

    if (ngx_http_plinth_response_overrides(r) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_plinth_add_header(r, "x-amz-request-id", &ctx->request_id)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    r->allow_ranges = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_plinth_delete_object(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    const char  *params[5];

    if (ngx_http_plinth_version_arg(r, ctx) != NGX_OK) {
        return NGX_OK;
    }

    /* If-Match: delete only that ETag, decided under the key's lock */
    switch (ngx_http_plinth_put_conditions(r, ctx)) {
    case NGX_OK:
        break;
    case NGX_DECLINED:
        return NGX_OK;
    default:
        return NGX_ERROR;
    }

    if (ctx->if_none_match) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_NOT_IMPLEMENTED,
                              "If-None-Match is not supported on "
                              "DeleteObject.");
        return NGX_OK;
    }

    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    params[1] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->key);
    params[2] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);
    params[3] = ctx->vid.len ? (char *) ctx->vid.data : NULL;
    params[4] = ctx->if_match.len ? (char *) ctx->if_match.data : NULL;
    if (params[0] == NULL || params[1] == NULL || params[2] == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_plinth_pg(r, NGX_PLINTH_SQL_DELETE, 5, params,
                              ngx_http_plinth_delete_done);
}


/* A version id: "null" or an id Plinth made (32 lowercase hex digits). */
ngx_uint_t
ngx_http_plinth_vid_valid(const u_char *p, size_t len)
{
    size_t  i;

    if (len == 4 && ngx_strncmp(p, "null", 4) == 0) {
        return 1;
    }

    if (len != 32) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


/*
 * ?versionId=, kept in ctx->vid (NUL-terminated); anything but a valid id
 * is 400 InvalidArgument (answered here: NGX_DECLINED). Absent: ctx->vid
 * is empty.
 */
ngx_int_t
ngx_http_plinth_version_arg(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    ngx_str_t  v;

    if (ngx_http_plinth_arg(r, "versionId", &v) != NGX_OK) {
        return NGX_OK;
    }

    if (!ngx_http_plinth_vid_valid(v.data, v.len)) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                              "Invalid version id specified");
        return NGX_DECLINED;
    }

    ctx->vid.data = ngx_http_plinth_cstr(r->pool, &v);
    if (ctx->vid.data == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }
    ctx->vid.len = v.len;

    return NGX_OK;
}


/*
 * GET or HEAD of a delete marker: of the key (its current version) 404
 * NoSuchKey, of the marker by versionId 405 MethodNotAllowed; both with
 * x-amz-delete-marker in a versioned bucket.
 */
static void
ngx_http_plinth_delete_marker(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, PGresult *res)
{
    ngx_plinth_err_e  err;

    err = ctx->vid.len ? NGX_PLINTH_ERR_METHOD_NOT_ALLOWED
                       : NGX_PLINTH_ERR_NO_SUCH_KEY;

    if (!ctx->versioned) {
        ngx_http_plinth_error(r, err, NULL);
        return;
    }

    /* the error answer carries them (ngx_http_plinth_error()) */
    if (ngx_http_plinth_copy_value(r->pool, res, 0, PQfnumber(res, "vid"),
                                   &ctx->marker_vid)
        != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_plinth_error(r, err, NULL);
}


static void
ngx_http_plinth_delete_done(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_str_t  v;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    /* a versioned bucket: the marker written, or the version deleted */
    if (PQgetvalue(res, 0, 2)[0] == 't') {
        if (PQgetvalue(res, 0, 1)[0] == 't') {
            ngx_str_set(&v, "true");
            if (ngx_http_plinth_add_header(r, "x-amz-delete-marker", &v)
                != NGX_OK)
            {
                ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }
        }

        if (ngx_http_plinth_copy_value(r->pool, res, 0, 0, &v) != NGX_OK
            || ngx_http_plinth_add_header(r, "x-amz-version-id", &v)
               != NGX_OK)
        {
            ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    ngx_http_plinth_finalize(r, ngx_http_plinth_send_body(r,
                                    NGX_HTTP_NO_CONTENT, NULL, NULL));
}
