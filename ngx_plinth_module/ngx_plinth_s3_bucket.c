/*
 * S3 bucket operations: ListBuckets, CreateBucket, DeleteBucket,
 * HeadBucket, GetBucketLocation, ListObjects (v1) and ListObjectsV2;
 * GetBucketVersioning, PutBucketVersioning and ListObjectVersions.
 * Each is one prepared statement and an XML answer; the database decides
 * the errors (SQLSTATE PLnnn, see sql/001_schema.sql).
 */

#include "ngx_plinth.h"




typedef struct {
    ngx_str_t                     prefix;
    ngx_str_t                     delimiter;
    ngx_str_t                     start_after;    /* v2 */
    ngx_str_t                     token;          /* v2, as sent */
    ngx_str_t                     marker;         /* v1 */
    ngx_int_t                     max_keys;
    ngx_uint_t                    url;            /* encoding-type=url */
    ngx_uint_t                    v2;
    ngx_uint_t                    fetch_owner;
} ngx_http_plinth_list_args_t;


static void ngx_http_plinth_list_buckets_done(ngx_http_request_t *r,
    void *data, PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_ok_done(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_head_bucket_done(ngx_http_request_t *r,
    void *data, PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_list_done(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static ngx_int_t ngx_http_plinth_list_args(ngx_http_request_t *r,
    ngx_int_t *max_keys, ngx_uint_t *url);
static void ngx_http_plinth_owner_xml(ngx_plinth_xml_t *x,
    ngx_http_plinth_ctx_t *ctx);
static ngx_uint_t ngx_http_plinth_prefix_bounded(ngx_str_t *prefix);


ngx_int_t
ngx_http_plinth_list_buckets(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    const char  *params[1];

    if (ctx->anonymous) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ACCESS_DENIED, NULL);
        return NGX_OK;
    }

    if (ngx_http_plinth_cstrs(r->pool, params, 1, &ctx->identity) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_plinth_pg(r, NGX_PLINTH_SQL_BUCKET_LIST, 1, params,
                              ngx_http_plinth_list_buckets_done);
}


static void
ngx_http_plinth_list_buckets_done(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    int                     i, n;
    ngx_plinth_xml_t        x;
    ngx_http_plinth_ctx_t  *ctx;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    ngx_plinth_xml_init(&x, r->pool);
    ngx_plinth_xml_lit(&x, NGX_PLINTH_XML_HEAD "<ListAllMyBucketsResult"
                           NGX_PLINTH_XMLNS ">");
    ngx_http_plinth_owner_xml(&x, ctx);
    ngx_plinth_xml_lit(&x, "<Buckets>");

    n = PQntuples(res);

    for (i = 0; i < n; i++) {
        ngx_plinth_xml_lit(&x, "<Bucket>");
        ngx_plinth_xml_elem(&x, "Name", (u_char *) PQgetvalue(res, i, 0),
                            PQgetlength(res, i, 0));
        ngx_plinth_xml_elem(&x, "CreationDate",
                            (u_char *) PQgetvalue(res, i, 1),
                            PQgetlength(res, i, 1));
        ngx_plinth_xml_lit(&x, "</Bucket>");
    }

    ngx_plinth_xml_lit(&x, "</Buckets></ListAllMyBucketsResult>");

    ngx_http_plinth_send_xml(r, &x);
}


static void
ngx_http_plinth_owner_xml(ngx_plinth_xml_t *x, ngx_http_plinth_ctx_t *ctx)
{
    ngx_str_t  *name;

    if (ctx->anonymous) {
        return;
    }

    name = ctx->display_name.len ? &ctx->display_name : &ctx->identity;

    ngx_plinth_xml_lit(x, "<Owner>");
    ngx_plinth_xml_elem(x, "ID", ctx->identity.data, ctx->identity.len);
    ngx_plinth_xml_elem(x, "DisplayName", name->data, name->len);
    ngx_plinth_xml_lit(x, "</Owner>");
}


ngx_int_t
ngx_http_plinth_create_bucket(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    const char  *params[4];

    if (ctx->anonymous) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ACCESS_DENIED, NULL);
        return NGX_OK;
    }

    if (ngx_http_plinth_canned_acl(r, &params[2]) != NGX_OK) {
        return NGX_OK;
    }

    /* the bucket's default class (Plinth's header; S3 has none): writes
     * that name no x-amz-storage-class get it. Same names and errors as
     * x-amz-storage-class; absent: STANDARD */
    if (ngx_http_plinth_storage_class_header(r, "x-plinth-storage-class",
                                             &params[3])
        != NGX_OK)
    {
        return NGX_OK;
    }

    if (ngx_http_plinth_cstrs(r->pool, params, 2, &ctx->bucket, &ctx->identity)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_plinth_pg(r, NGX_PLINTH_SQL_BUCKET_CREATE, 4, params,
                              ngx_http_plinth_ok_done);
}


ngx_int_t
ngx_http_plinth_delete_bucket(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    const char  *params[2];

    if (ngx_http_plinth_cstrs(r->pool, params, 2, &ctx->bucket, &ctx->identity)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_plinth_pg(r, NGX_PLINTH_SQL_BUCKET_DELETE, 2, params,
                              ngx_http_plinth_ok_done);
}


/* Answers an operation whose success has no body: 200, or 204 for
 * deletes; CreateBucket also names its Location. */
static void
ngx_http_plinth_ok_done(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_int_t               sent;
    ngx_str_t               loc;
    ngx_http_plinth_ctx_t  *ctx;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (ctx->route->op == NGX_PLINTH_OP_CREATE_BUCKET) {
        loc.len = ctx->bucket.len + 1;
        loc.data = ngx_pnalloc(r->pool, loc.len);
        if (loc.data == NULL) {
            ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
        loc.data[0] = '/';
        ngx_memcpy(loc.data + 1, ctx->bucket.data, ctx->bucket.len);

        if (ngx_http_plinth_add_header(r, "Location", &loc) != NGX_OK) {
            ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    sent = ngx_http_plinth_send_body(r,
                                     r->method == NGX_HTTP_DELETE
                                     ? NGX_HTTP_NO_CONTENT : NGX_HTTP_OK,
                                     NULL, NULL);
    ngx_http_plinth_finalize(r, sent);
}


ngx_int_t
ngx_http_plinth_head_bucket(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    const char  *params[1];

    if (ngx_http_plinth_cstrs(r->pool, params, 1, &ctx->bucket) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_plinth_pg(r, NGX_PLINTH_SQL_BUCKET_HEAD, 1, params,
                              ngx_http_plinth_head_bucket_done);
}


ngx_int_t
ngx_http_plinth_get_bucket_location(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    return ngx_http_plinth_head_bucket(r, ctx);
}


static void
ngx_http_plinth_head_bucket_done(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    ngx_int_t               sent;
    ngx_str_t               region = ngx_string("us-east-1");
    ngx_plinth_xml_t        x;
    ngx_http_plinth_ctx_t  *ctx;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (PQntuples(res) == 0) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_NO_SUCH_BUCKET, NULL);
        return;
    }

    /* anyone may HEAD a public-read bucket; only the owner asks where */
    if (!ngx_http_plinth_may_read(ctx, res, 0, 0,
                                  ctx->route->op == NGX_PLINTH_OP_HEAD_BUCKET
                                  ? PQgetvalue(res, 0, 1) : NULL, NULL))
    {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ACCESS_DENIED, NULL);
        return;
    }

    if (ngx_http_plinth_add_header(r, "x-amz-bucket-region", &region)
        != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->route->op == NGX_PLINTH_OP_HEAD_BUCKET) {
        sent = ngx_http_plinth_send_body(r, NGX_HTTP_OK, NULL, NULL);
        ngx_http_plinth_finalize(r, sent);
        return;
    }

    /* us-east-1 is an empty LocationConstraint, as S3 answers it */
    ngx_plinth_xml_init(&x, r->pool);
    ngx_plinth_xml_lit(&x, NGX_PLINTH_XML_HEAD "<LocationConstraint"
                           NGX_PLINTH_XMLNS "></LocationConstraint>");

    ngx_http_plinth_send_xml(r, &x);
}


/*
 * encoding-type=url and max-keys (at most 1,000), as every S3 listing
 * takes them. NGX_DECLINED after answering a bad value.
 */
static ngx_int_t
ngx_http_plinth_list_args(ngx_http_request_t *r, ngx_int_t *max_keys,
    ngx_uint_t *url)
{
    ngx_int_t  n;
    ngx_str_t  v;

    if (ngx_http_plinth_arg(r, "encoding-type", &v) == NGX_OK) {
        if (v.len != 3 || ngx_strncmp(v.data, "url", 3) != 0) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                                  "Invalid Encoding Method specified in "
                                  "Request");
            return NGX_DECLINED;
        }
        *url = 1;
    }

    if (ngx_http_plinth_arg(r, "max-keys", &v) == NGX_OK) {
        n = ngx_atoi(v.data, v.len);
        if (n < 0) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                                  "Provided max-keys not an integer or "
                                  "within integer range");
            return NGX_DECLINED;
        }
        *max_keys = n > 1000 ? 1000 : n;
    }

    return NGX_OK;
}


/*
 * ListObjects and ListObjectsV2. The continuation token is opaque to
 * clients: "K" or "P" (the last entry was a key or a common prefix) and
 * the entry, base64url-encoded, so the next page starts right after it.
 */
ngx_int_t
ngx_http_plinth_list_objects(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    u_char                       *p;
    ngx_str_t                     v, after, dec;
    const char                   *params[7];
    ngx_uint_t                    after_prefix;
    ngx_http_plinth_list_args_t  *la;

    la = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_list_args_t));
    if (la == NULL) {
        return NGX_ERROR;
    }

    la->v2 = (ctx->route->op == NGX_PLINTH_OP_LIST_OBJECTS_V2);
    la->max_keys = 1000;

    (void) ngx_http_plinth_arg(r, "prefix", &la->prefix);
    (void) ngx_http_plinth_arg(r, "delimiter", &la->delimiter);

    if (ngx_http_plinth_list_args(r, &la->max_keys, &la->url) != NGX_OK) {
        return NGX_OK;
    }

    after.len = 0;
    after.data = (u_char *) "";
    after_prefix = 0;

    if (la->v2) {
        la->fetch_owner =
            (ngx_http_plinth_arg(r, "fetch-owner", &v) == NGX_OK
             && v.len == 4 && ngx_strncmp(v.data, "true", 4) == 0);

        if (ngx_http_plinth_arg(r, "start-after", &la->start_after)
            == NGX_OK)
        {
            after = la->start_after;
        }

        if (ngx_http_plinth_arg(r, "continuation-token", &la->token)
            == NGX_OK)
        {
            dec.data = ngx_pnalloc(r->pool,
                                   ngx_base64_decoded_length(la->token.len)
                                   + 1);
            if (dec.data == NULL) {
                return NGX_ERROR;
            }

            if (la->token.len == 0
                || ngx_decode_base64url(&dec, &la->token) != NGX_OK
                || dec.len == 0 || (dec.data[0] != 'K' && dec.data[0] != 'P'))
            {
                ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                                      "The continuation token provided is "
                                      "incorrect");
                return NGX_OK;
            }

            after_prefix = (dec.data[0] == 'P');
            after.data = dec.data + 1;
            after.len = dec.len - 1;
            after.data[after.len] = '\0';
        }

    } else if (ngx_http_plinth_arg(r, "marker", &la->marker) == NGX_OK) {
        after = la->marker;

        /* a NextMarker that is a common prefix: skip every key under it */
        after_prefix = (la->delimiter.len
                        && after.len > la->prefix.len
                        && after.len >= la->delimiter.len
                        && ngx_strncmp(after.data + after.len
                                       - la->delimiter.len,
                                       la->delimiter.data,
                                       la->delimiter.len) == 0);
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }
    *ngx_sprintf(p, "%i", la->max_keys) = '\0';

    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    params[1] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);
    params[2] = (char *) ngx_http_plinth_cstr(r->pool, &la->prefix);
    params[3] = (char *) ngx_http_plinth_cstr(r->pool, &la->delimiter);
    params[4] = (char *) ngx_http_plinth_cstr(r->pool, &after);
    params[5] = after_prefix ? "true" : "false";
    params[6] = (char *) p;

    if (params[0] == NULL || params[1] == NULL || params[2] == NULL
        || params[3] == NULL || params[4] == NULL)
    {
        return NGX_ERROR;
    }

    /*
     * No delimiter and nothing to step past: one plain range statement a
     * page (a data loader paging through a prefix), see sql/022
     */
    if (la->delimiter.len == 0 && !after_prefix) {
        if (la->prefix.len == 0) {
            params[2] = params[4];
            params[3] = params[6];
            return ngx_plinth_pg_query(r, NGX_PLINTH_SQL_LIST_FROM, 4,
                                       params, ngx_http_plinth_list_done,
                                       la);
        }

        if (ngx_http_plinth_prefix_bounded(&la->prefix)) {
            params[3] = params[4];
            params[4] = params[6];
            return ngx_plinth_pg_query(r, NGX_PLINTH_SQL_LIST_RANGE, 5,
                                       params, ngx_http_plinth_list_done,
                                       la);
        }
    }

    return ngx_plinth_pg_query(r, NGX_PLINTH_SQL_LIST, 7, params,
                               ngx_http_plinth_list_done, la);
}


/*
 * Whether a prefix has a successor (plinth_prefix_successor is not NULL):
 * every prefix but one made only of U+10FFFF (F4 8F BF BF)
 */
static ngx_uint_t
ngx_http_plinth_prefix_bounded(ngx_str_t *prefix)
{
    size_t  i;

    if (prefix->len % 4) {
        return 1;
    }

    for (i = 0; i < prefix->len; i += 4) {
        if (ngx_memcmp(prefix->data + i, "\xF4\x8F\xBF\xBF", 4) != 0) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_http_plinth_list_done(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_http_plinth_list_args_t  *la = data;

    int                     i, n, shown, nkeys;
    u_char                 *kind;
    ngx_str_t               last, raw, tok;
    ngx_uint_t              truncated;
    ngx_plinth_xml_t        x;
    ngx_http_plinth_ctx_t  *ctx;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    n = PQntuples(res);
    truncated = (la->max_keys > 0 && n > la->max_keys);
    shown = n > la->max_keys ? (int) la->max_keys : n;

    ngx_plinth_xml_init(&x, r->pool);
    ngx_plinth_xml_lit(&x, NGX_PLINTH_XML_HEAD "<ListBucketResult"
                           NGX_PLINTH_XMLNS ">");
    ngx_plinth_xml_elem(&x, "Name", ctx->bucket.data, ctx->bucket.len);
    ngx_plinth_xml_elem_url(&x, "Prefix", la->prefix.data, la->prefix.len,
                            la->url);
    if (la->delimiter.len) {
        ngx_plinth_xml_elem_url(&x, "Delimiter", la->delimiter.data,
                                la->delimiter.len, la->url);
    }
    ngx_plinth_xml_elem_int(&x, "MaxKeys", la->max_keys);
    if (la->url) {
        ngx_plinth_xml_lit(&x, "<EncodingType>url</EncodingType>");
    }
    ngx_plinth_xml_lit(&x, truncated ? "<IsTruncated>true</IsTruncated>"
                                     : "<IsTruncated>false</IsTruncated>");

    if (la->v2) {
        if (la->token.data) {
            ngx_plinth_xml_elem(&x, "ContinuationToken", la->token.data,
                                la->token.len);
        }
        if (la->start_after.data) {
            ngx_plinth_xml_elem_url(&x, "StartAfter", la->start_after.data,
                                    la->start_after.len, la->url);
        }

    } else {
        ngx_plinth_xml_elem_url(&x, "Marker", la->marker.data,
                                la->marker.len, la->url);
    }

    nkeys = 0;

    for (i = 0; i < shown; i++) {
        if (PQgetvalue(res, i, 1)[0] == 't') {
            continue;
        }

        nkeys++;
        ngx_plinth_xml_lit(&x, "<Contents>");
        ngx_plinth_xml_elem_url(&x, "Key", (u_char *) PQgetvalue(res, i, 0),
                                PQgetlength(res, i, 0), la->url);
        ngx_plinth_xml_elem(&x, "LastModified",
                            (u_char *) PQgetvalue(res, i, 4),
                            PQgetlength(res, i, 4));
        ngx_plinth_xml_lit(&x, "<ETag>&quot;");
        ngx_plinth_xml_text(&x, (u_char *) PQgetvalue(res, i, 3),
                            PQgetlength(res, i, 3));
        ngx_plinth_xml_lit(&x, "&quot;</ETag>");
        ngx_plinth_xml_elem(&x, "Size", (u_char *) PQgetvalue(res, i, 2),
                            PQgetlength(res, i, 2));
        if (!la->v2 || la->fetch_owner) {
            ngx_http_plinth_owner_xml(&x, ctx);
        }
        ngx_plinth_xml_elem(&x, "StorageClass",
                            (u_char *) PQgetvalue(res, i, 5),
                            PQgetlength(res, i, 5));
        ngx_plinth_xml_lit(&x, "</Contents>");
    }

    for (i = 0; i < shown; i++) {
        if (PQgetvalue(res, i, 1)[0] != 't') {
            continue;
        }

        ngx_plinth_xml_lit(&x, "<CommonPrefixes>");
        ngx_plinth_xml_elem_url(&x, "Prefix",
                                (u_char *) PQgetvalue(res, i, 0),
                                PQgetlength(res, i, 0), la->url);
        ngx_plinth_xml_lit(&x, "</CommonPrefixes>");
    }

    if (la->v2) {
        ngx_plinth_xml_elem_int(&x, "KeyCount", shown);
    }

    if (truncated && shown > 0) {
        last.data = (u_char *) PQgetvalue(res, shown - 1, 0);
        last.len = PQgetlength(res, shown - 1, 0);

        if (la->v2) {
            raw.len = last.len + 1;
            raw.data = ngx_pnalloc(r->pool, raw.len);
            tok.data = ngx_pnalloc(r->pool, ngx_base64_encoded_length(raw.len));
            if (raw.data == NULL || tok.data == NULL) {
                ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            kind = raw.data;
            *kind = (PQgetvalue(res, shown - 1, 1)[0] == 't') ? 'P' : 'K';
            ngx_memcpy(raw.data + 1, last.data, last.len);
            ngx_encode_base64url(&tok, &raw);
            ngx_plinth_xml_elem(&x, "NextContinuationToken", tok.data,
                                tok.len);

        } else if (la->delimiter.len) {
            /* v1 gives NextMarker only with a delimiter */
            ngx_plinth_xml_elem_url(&x, "NextMarker", last.data, last.len,
                                    la->url);
        }
    }

    ngx_plinth_xml_lit(&x, "</ListBucketResult>");

    (void) nkeys;

    ngx_http_plinth_send_xml(r, &x);
}


/* ------------------------------------------------------------ versioning */

#define NGX_PLINTH_VERSIONING_MAX_XML  (64 * 1024)


typedef struct {
    ngx_str_t                     prefix;
    ngx_str_t                     delimiter;
    ngx_str_t                     key_marker;
    ngx_str_t                     vid_marker;
    ngx_int_t                     max_keys;
    ngx_uint_t                    url;
} ngx_http_plinth_versions_args_t;


static void ngx_http_plinth_versioning_got(ngx_http_request_t *r,
    void *data, PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_versioning_body(ngx_http_request_t *r);
static void ngx_http_plinth_versions_done(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);


ngx_int_t
ngx_http_plinth_get_bucket_versioning(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    const char  *params[2];

    if (ctx->anonymous) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ACCESS_DENIED, NULL);
        return NGX_OK;
    }

    if (ngx_http_plinth_cstrs(r->pool, params, 2, &ctx->bucket, &ctx->identity)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_plinth_pg(r, NGX_PLINTH_SQL_BUCKET_VERSIONING, 2, params,
                              ngx_http_plinth_versioning_got);
}


static void
ngx_http_plinth_versioning_got(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    char              *status;
    ngx_plinth_xml_t   x;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    status = PQgetvalue(res, 0, 0);

    ngx_plinth_xml_init(&x, r->pool);

    /* never versioned: an empty configuration, as S3 answers */
    if (ngx_strcmp(status, "Enabled") != 0
        && ngx_strcmp(status, "Suspended") != 0)
    {
        ngx_plinth_xml_lit(&x, NGX_PLINTH_XML_HEAD "<VersioningConfiguration"
                               NGX_PLINTH_XMLNS "/>");

    } else {
        ngx_plinth_xml_lit(&x, NGX_PLINTH_XML_HEAD "<VersioningConfiguration"
                               NGX_PLINTH_XMLNS ">");
        ngx_plinth_xml_elem(&x, "Status", (u_char *) status,
                            ngx_strlen(status));
        ngx_plinth_xml_lit(&x, "</VersioningConfiguration>");
    }

    ngx_http_plinth_send_xml(r, &x);
}


ngx_int_t
ngx_http_plinth_put_bucket_versioning(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    if (ctx->anonymous) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ACCESS_DENIED, NULL);
        return NGX_OK;
    }

    ngx_http_plinth_read_xml_body(r, NGX_PLINTH_VERSIONING_MAX_XML,
                                  ngx_http_plinth_versioning_body);

    return NGX_OK;
}


static void
ngx_http_plinth_versioning_body(ngx_http_request_t *r)
{
    int                     dtd;
    u_char                 *xml;
    size_t                  len;
    const char             *params[3], *message;
    plinth_parse_err_e      rc;
    ngx_http_plinth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (ctx->finalized) {
        return;
    }

    xml = ngx_http_plinth_read_body(r, NGX_PLINTH_VERSIONING_MAX_XML, &len);
    if (xml == NULL) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_MALFORMED_XML,
                              len > NGX_PLINTH_VERSIONING_MAX_XML
                              ? "The XML you provided is too large." : NULL);
        return;
    }

    if (ngx_http_plinth_check_body_md5(r, xml, len) != NGX_OK) {
        return;
    }

    /* the status, Enabled or Suspended */
    rc = plinth_versioning_parse(xml, len, NGX_PLINTH_XML_PARSE_OPTIONS,
                                 &params[2], &message, &dtd);
    if (rc != PLINTH_PARSE_OK) {
        ngx_http_plinth_parse_error(r, rc, message, dtd);
        return;
    }

    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    params[1] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);

    if (params[0] == NULL || params[1] == NULL
        || ngx_http_plinth_pg(r, NGX_PLINTH_SQL_SET_BUCKET_VERSIONING, 3,
                              params, ngx_http_plinth_ok_done)
           != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


/*
 * ListObjectVersions: one statement per page (sql/008's
 * plinth_list_versions), entries in key order, newest first within a
 * key; a page ends after max-keys entries (versions, delete markers and
 * common prefixes alike) and names where the next begins.
 */
ngx_int_t
ngx_http_plinth_list_object_versions(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    u_char                           *p;
    ngx_uint_t                        i, ok;
    const char                       *params[7];
    ngx_http_plinth_versions_args_t  *va;

    va = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_versions_args_t));
    if (va == NULL) {
        return NGX_ERROR;
    }

    va->max_keys = 1000;

    (void) ngx_http_plinth_arg(r, "prefix", &va->prefix);
    (void) ngx_http_plinth_arg(r, "delimiter", &va->delimiter);
    (void) ngx_http_plinth_arg(r, "key-marker", &va->key_marker);
    (void) ngx_http_plinth_arg(r, "version-id-marker", &va->vid_marker);

    if (ngx_http_plinth_list_args(r, &va->max_keys, &va->url) != NGX_OK) {
        return NGX_OK;
    }

    if (va->vid_marker.len) {
        if (va->key_marker.len == 0) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                                  "A version-id marker cannot be specified "
                                  "without a key marker.");
            return NGX_OK;
        }

        ok = (va->vid_marker.len == 4
              && ngx_strncmp(va->vid_marker.data, "null", 4) == 0);

        if (!ok && va->vid_marker.len == 32) {
            ok = 1;
            for (i = 0; i < 32; i++) {
                if (!((va->vid_marker.data[i] >= '0'
                       && va->vid_marker.data[i] <= '9')
                      || (va->vid_marker.data[i] >= 'a'
                          && va->vid_marker.data[i] <= 'f')))
                {
                    ok = 0;
                }
            }
        }

        if (!ok) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                                  "Invalid version id specified");
            return NGX_OK;
        }
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }
    *ngx_sprintf(p, "%i", va->max_keys) = '\0';

    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    params[1] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);
    params[2] = (char *) ngx_http_plinth_cstr(r->pool, &va->prefix);
    params[3] = (char *) ngx_http_plinth_cstr(r->pool, &va->delimiter);
    params[4] = (char *) ngx_http_plinth_cstr(r->pool, &va->key_marker);
    params[5] = va->vid_marker.len
                ? (char *) ngx_http_plinth_cstr(r->pool, &va->vid_marker)
                : NULL;
    params[6] = (char *) p;

    if (params[0] == NULL || params[1] == NULL || params[2] == NULL
        || params[3] == NULL || params[4] == NULL
        || (va->vid_marker.len && params[5] == NULL))
    {
        return NGX_ERROR;
    }

    return ngx_plinth_pg_query(r, NGX_PLINTH_SQL_LIST_VERSIONS, 7, params,
                               ngx_http_plinth_versions_done, va);
}


static void
ngx_http_plinth_versions_done(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    ngx_http_plinth_versions_args_t  *va = data;

    int                     i, n, shown;
    ngx_uint_t              truncated, marker;
    ngx_plinth_xml_t        x;
    ngx_http_plinth_ctx_t  *ctx;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    n = PQntuples(res);
    truncated = (va->max_keys > 0 && n > va->max_keys);
    shown = n > va->max_keys ? (int) va->max_keys : n;

    ngx_plinth_xml_init(&x, r->pool);
    ngx_plinth_xml_lit(&x, NGX_PLINTH_XML_HEAD "<ListVersionsResult"
                           NGX_PLINTH_XMLNS ">");
    ngx_plinth_xml_elem(&x, "Name", ctx->bucket.data, ctx->bucket.len);
    ngx_plinth_xml_elem_url(&x, "Prefix", va->prefix.data, va->prefix.len,
                            va->url);
    ngx_plinth_xml_elem_url(&x, "KeyMarker", va->key_marker.data,
                            va->key_marker.len, va->url);
    ngx_plinth_xml_elem(&x, "VersionIdMarker", va->vid_marker.data,
                        va->vid_marker.len);

    if (truncated && shown > 0) {
        ngx_plinth_xml_elem_url(&x, "NextKeyMarker",
                                (u_char *) PQgetvalue(res, shown - 1, 0),
                                PQgetlength(res, shown - 1, 0), va->url);
        if (PQgetvalue(res, shown - 1, 2)[0] != 't') {
            ngx_plinth_xml_elem(&x, "NextVersionIdMarker",
                                (u_char *) PQgetvalue(res, shown - 1, 1),
                                PQgetlength(res, shown - 1, 1));
        }
    }

    ngx_plinth_xml_elem_int(&x, "MaxKeys", va->max_keys);
    if (va->delimiter.len) {
        ngx_plinth_xml_elem_url(&x, "Delimiter", va->delimiter.data,
                                va->delimiter.len, va->url);
    }
    if (va->url) {
        ngx_plinth_xml_lit(&x, "<EncodingType>url</EncodingType>");
    }
    ngx_plinth_xml_lit(&x, truncated ? "<IsTruncated>true</IsTruncated>"
                                     : "<IsTruncated>false</IsTruncated>");

    for (i = 0; i < shown; i++) {
        if (PQgetvalue(res, i, 2)[0] == 't') {
            continue;
        }

        marker = (PQgetvalue(res, i, 4)[0] == 't');

        ngx_plinth_xml_lit(&x, marker ? "<DeleteMarker>" : "<Version>");
        ngx_plinth_xml_elem_url(&x, "Key", (u_char *) PQgetvalue(res, i, 0),
                                PQgetlength(res, i, 0), va->url);
        ngx_plinth_xml_elem(&x, "VersionId", (u_char *) PQgetvalue(res, i, 1),
                            PQgetlength(res, i, 1));
        ngx_plinth_xml_lit(&x, PQgetvalue(res, i, 3)[0] == 't'
                               ? "<IsLatest>true</IsLatest>"
                               : "<IsLatest>false</IsLatest>");
        ngx_plinth_xml_elem(&x, "LastModified",
                            (u_char *) PQgetvalue(res, i, 7),
                            PQgetlength(res, i, 7));

        if (marker) {
            ngx_http_plinth_owner_xml(&x, ctx);
            ngx_plinth_xml_lit(&x, "</DeleteMarker>");
            continue;
        }

        ngx_plinth_xml_lit(&x, "<ETag>&quot;");
        ngx_plinth_xml_text(&x, (u_char *) PQgetvalue(res, i, 6),
                            PQgetlength(res, i, 6));
        ngx_plinth_xml_lit(&x, "&quot;</ETag>");
        ngx_plinth_xml_elem(&x, "Size", (u_char *) PQgetvalue(res, i, 5),
                            PQgetlength(res, i, 5));
        ngx_http_plinth_owner_xml(&x, ctx);
        ngx_plinth_xml_elem(&x, "StorageClass",
                            (u_char *) PQgetvalue(res, i, 9),
                            PQgetlength(res, i, 9));
        ngx_plinth_xml_lit(&x, "</Version>");
    }

    for (i = 0; i < shown; i++) {
        if (PQgetvalue(res, i, 2)[0] != 't') {
            continue;
        }

        ngx_plinth_xml_lit(&x, "<CommonPrefixes>");
        ngx_plinth_xml_elem_url(&x, "Prefix",
                                (u_char *) PQgetvalue(res, i, 0),
                                PQgetlength(res, i, 0), va->url);
        ngx_plinth_xml_lit(&x, "</CommonPrefixes>");
    }

    ngx_plinth_xml_lit(&x, "</ListVersionsResult>");

    ngx_http_plinth_send_xml(r, &x);
}
