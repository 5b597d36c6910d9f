/*
 * Bucket lifecycle configuration (?lifecycle): Put, Get and
 * DeleteBucketLifecycleConfiguration. The owner only. The document is
 * parsed with libxml2 and validated as S3 validates it (in pure C, without
 * nginx: ngx_plinth_lifecycle_parse.c, which fuzz/lifecycle.c runs); its
 * rules are stored one row each (sql/017: lifecycle_rules) for repaird, which
 * carries them out, and the document itself is what GET answers.
 *
 * Supported in a Rule: ID, Status, Filter with Prefix (or an empty
 * Filter), the legacy Rule-level Prefix, Transition (Days, StorageClass),
 * Expiration (Days), NoncurrentVersionExpiration (NoncurrentDays). What
 * S3 has and Plinth does not carry out (Date, tags, object sizes,
 * ExpiredObjectDeleteMarker, NoncurrentVersionTransition,
 * AbortIncompleteMultipartUpload, NewerNoncurrentVersions) is 501
 * NotImplemented, never accepted and ignored.
 */

#include "ngx_plinth.h"
#include <libxml/parser.h>
#include "ngx_plinth_lifecycle_parse.h"


#define NGX_PLINTH_LIFECYCLE_MAX_XML    (256 * 1024)


typedef struct {
    u_char       *xml;
    size_t        len;
} ngx_plinth_lc_body_t;


static void ngx_http_plinth_lifecycle_body(ngx_http_request_t *r);
static void ngx_http_plinth_lifecycle_owned(ngx_http_request_t *r,
    void *data, PGresult *res, ngx_int_t rc);
static ngx_int_t ngx_http_plinth_lifecycle_parse(ngx_http_request_t *r,
    u_char *xml, size_t len, const char **params);
static void ngx_http_plinth_lifecycle_got(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_lifecycle_done(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);


/* Get and Delete: (bucket, caller) to one statement, owner only */
static ngx_int_t
ngx_http_plinth_lifecycle_query(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_uint_t stmt, ngx_plinth_pg_handler_pt done)
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

    return ngx_http_plinth_pg(r, stmt, 2, params, done);
}


ngx_int_t
ngx_http_plinth_get_bucket_lifecycle(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    return ngx_http_plinth_lifecycle_query(r, ctx, NGX_PLINTH_SQL_GET_LIFECYCLE,
                                           ngx_http_plinth_lifecycle_got);
}


static void
ngx_http_plinth_lifecycle_got(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    ngx_plinth_xml_t  x;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    if (PQntuples(res) == 0) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_NO_SUCH_LIFECYCLE, NULL);
        return;
    }

    ngx_plinth_xml_init(&x, r->pool);
    ngx_plinth_xml_raw(&x, (u_char *) PQgetvalue(res, 0, 0),
                       PQgetlength(res, 0, 0));
    ngx_http_plinth_send_xml(r, &x);
}


ngx_int_t
ngx_http_plinth_delete_bucket_lifecycle(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    return ngx_http_plinth_lifecycle_query(r, ctx,
                                           NGX_PLINTH_SQL_DELETE_LIFECYCLE,
                                           ngx_http_plinth_lifecycle_done);
}


/* Put (200) and Delete (204) answer with no body. */
static void
ngx_http_plinth_lifecycle_done(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    ngx_int_t  sent;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    sent = ngx_http_plinth_send_body(r, r->method == NGX_HTTP_DELETE
                                        ? NGX_HTTP_NO_CONTENT : NGX_HTTP_OK,
                                     NULL, NULL);
    ngx_http_plinth_finalize(r, sent);
}


ngx_int_t
ngx_http_plinth_put_bucket_lifecycle(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    if (ctx->anonymous) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ACCESS_DENIED, NULL);
        return NGX_OK;
    }

    /* capped before it is read, as every XML body (ngx_plinth_s3.c) */
    ngx_http_plinth_read_xml_body(r, NGX_PLINTH_LIFECYCLE_MAX_XML,
                                  ngx_http_plinth_lifecycle_body);

    return NGX_OK;
}


/*
 * The body is read; Content-MD5 (when sent) checked; then ownership is
 * checked before the document is judged, so that a caller who may not
 * write the bucket learns nothing from its errors (AccessDenied first).
 */
static void
ngx_http_plinth_lifecycle_body(ngx_http_request_t *r)
{
    u_char                 *xml;
    size_t                  len;
    const char             *params[2];
    ngx_plinth_lc_body_t   *body;
    ngx_http_plinth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (ctx->finalized) {
        return;
    }

    xml = ngx_http_plinth_read_body(r, NGX_PLINTH_LIFECYCLE_MAX_XML, &len);
    if (xml == NULL) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_MALFORMED_XML, NULL);
        return;
    }

    if (ngx_http_plinth_check_body_md5(r, xml, len) != NGX_OK) {
        return;
    }

    body = ngx_palloc(r->pool, sizeof(ngx_plinth_lc_body_t));
    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    params[1] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);

    if (body == NULL || params[0] == NULL || params[1] == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    body->xml = xml;
    body->len = len;
    ctx->lifecycle = body;

    if (ngx_http_plinth_pg(r, NGX_PLINTH_SQL_BUCKET_OWNED, 2, params,
                           ngx_http_plinth_lifecycle_owned)
        != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


static void
ngx_http_plinth_lifecycle_owned(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    const char             *params[11];
    ngx_plinth_lc_body_t   *body;
    ngx_http_plinth_ctx_t  *ctx;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);
    body = ctx->lifecycle;

    if (ngx_http_plinth_lifecycle_parse(r, body->xml, body->len, params)
        != NGX_OK)
    {
        return;
    }

    params[2] = (char *) body->xml;

    if (ngx_http_plinth_cstrs(r->pool, params, 2, &ctx->bucket,
                              &ctx->identity)
           != NGX_OK
        || ngx_http_plinth_pg(r, NGX_PLINTH_SQL_SET_LIFECYCLE, 11, params,
                              ngx_http_plinth_lifecycle_done)
           != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


/*
 * Parses the document (ngx_plinth_lifecycle_parse.c) into the PostgreSQL
 * array literals params[3..10] of plinth_set_lifecycle. NGX_DECLINED once
 * the error was answered.
 */
static ngx_int_t
ngx_http_plinth_lifecycle_parse(ngx_http_request_t *r, u_char *xml,
    size_t len, const char **params)
{
    char               *arrays[PLINTH_LC_ARRAYS];
    ngx_uint_t          k;
    const char         *message;
    plinth_parse_err_e  rc;

    rc = plinth_lifecycle_parse(xml, len, NGX_PLINTH_XML_PARSE_OPTIONS,
                                ngx_http_plinth_pool_alloc, r->pool,
                                arrays, &message);

    if (rc != PLINTH_PARSE_OK) {
        ngx_http_plinth_parse_error(r, rc, message, 0);
        return NGX_DECLINED;
    }

    for (k = 0; k < PLINTH_LC_ARRAYS; k++) {
        params[3 + k] = arrays[k];
    }

    return NGX_OK;
}
