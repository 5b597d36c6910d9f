/*
 * GetBucketAcl, PutBucketAcl, GetObjectAcl, PutObjectAcl with canned ACLs,
 * and GetObjectTagging.
 *
 * Plinth keeps one canned ACL per bucket and per object version: private
 * (the owner has FULL_CONTROL) or public-read (and AllUsers may READ).
 * GET answers the AccessControlPolicy document many tools ask for; PUT
 * takes the ACL from x-amz-acl. A full ACL document in the body is not
 * supported (501), nor are grants other than these.
 */

#include "ngx_plinth.h"


static ngx_int_t ngx_http_plinth_acl_query(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_plinth_pg_handler_pt handler);
static void ngx_http_plinth_acl_got(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_acl_set(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_tagging_got(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);


ngx_int_t
ngx_http_plinth_get_acl(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    return ngx_http_plinth_acl_query(r, ctx, ngx_http_plinth_acl_got);
}


/*
 * GetObjectTagging: Plinth keeps no tags (a write that sets some is 501),
 * so an object's tag set is empty. Tools that copy objects ask for it
 * (aws s3 cp between buckets); the object must exist and be the caller's,
 * as for GetObjectAcl, whose statement answers that.
 */
ngx_int_t
ngx_http_plinth_get_object_tagging(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    return ngx_http_plinth_acl_query(r, ctx, ngx_http_plinth_tagging_got);
}


static void
ngx_http_plinth_tagging_got(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_plinth_xml_t   x;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ngx_plinth_xml_init(&x, r->pool);
    ngx_plinth_xml_lit(&x, NGX_PLINTH_XML_HEAD
                           "<Tagging" NGX_PLINTH_XMLNS "><TagSet></TagSet>"
                           "</Tagging>");

    ngx_http_plinth_send_xml(r, &x);
}


/* The ACL of the bucket or object, for the caller; handler gets the row. */
static ngx_int_t
ngx_http_plinth_acl_query(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    ngx_plinth_pg_handler_pt handler)
{
    ngx_uint_t   object, n;
    const char  *params[3];

    if (ctx->anonymous) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ACCESS_DENIED, NULL);
        return NGX_OK;
    }

    object = (ctx->key.len != 0);
    n = 0;

    params[n++] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    if (object) {
        params[n++] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->key);
    }
    params[n++] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);

    if (params[0] == NULL || params[1] == NULL
        || (object && params[2] == NULL))
    {
        return NGX_ERROR;
    }

    return ngx_http_plinth_pg(r, object ? NGX_PLINTH_SQL_OBJECT_ACL
                                        : NGX_PLINTH_SQL_BUCKET_ACL,
                              n, params, handler);
}


static void
ngx_http_plinth_acl_got(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_plinth_xml_t   x;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ngx_plinth_xml_init(&x, r->pool);
    ngx_plinth_xml_lit(&x, NGX_PLINTH_XML_HEAD
                           "<AccessControlPolicy" NGX_PLINTH_XMLNS "><Owner>");
    ngx_plinth_xml_elem(&x, "ID", (u_char *) PQgetvalue(res, 0, 0),
                        PQgetlength(res, 0, 0));
    ngx_plinth_xml_elem(&x, "DisplayName", (u_char *) PQgetvalue(res, 0, 1),
                        PQgetlength(res, 0, 1));
    ngx_plinth_xml_lit(&x, "</Owner><AccessControlList><Grant><Grantee "
                           "xmlns:xsi=\"http://www.w3.org/2001/"
                           "XMLSchema-instance\" xsi:type=\"CanonicalUser\">");
    ngx_plinth_xml_elem(&x, "ID", (u_char *) PQgetvalue(res, 0, 0),
                        PQgetlength(res, 0, 0));
    ngx_plinth_xml_elem(&x, "DisplayName", (u_char *) PQgetvalue(res, 0, 1),
                        PQgetlength(res, 0, 1));
    ngx_plinth_xml_lit(&x, "</Grantee><Permission>FULL_CONTROL</Permission>"
                           "</Grant>");

    if (ngx_strcmp(PQgetvalue(res, 0, 2), "public-read") == 0) {
        ngx_plinth_xml_lit(&x, "<Grant><Grantee xmlns:xsi=\"http://www.w3."
                               "org/2001/XMLSchema-instance\" xsi:type=\""
                               "Group\"><URI>http://acs.amazonaws.com/"
                               "groups/global/AllUsers</URI></Grantee>"
                               "<Permission>READ</Permission></Grant>");
    }

    ngx_plinth_xml_lit(&x, "</AccessControlList></AccessControlPolicy>");

    ngx_http_plinth_send_xml(r, &x);
}


ngx_int_t
ngx_http_plinth_put_acl(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    ngx_uint_t   object, n;
    const char  *params[4], *acl;

    if (ctx->anonymous) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ACCESS_DENIED, NULL);
        return NGX_OK;
    }

    if (ngx_http_plinth_header_in(r, "x-amz-acl") == NULL) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_NOT_IMPLEMENTED,
                              "Only canned ACLs (x-amz-acl) are supported.");
        return NGX_OK;
    }

    if (ngx_http_plinth_canned_acl(r, &acl) != NGX_OK) {
        return NGX_OK;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_ERROR;
    }

    object = (ctx->key.len != 0);
    n = 0;

    params[n++] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    if (object) {
        params[n++] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->key);
    }
    params[n++] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);
    params[n++] = acl;

    if (params[0] == NULL || params[1] == NULL
        || (object && params[2] == NULL))
    {
        return NGX_ERROR;
    }

    return ngx_http_plinth_pg(r, object ? NGX_PLINTH_SQL_SET_OBJECT_ACL
                                        : NGX_PLINTH_SQL_SET_BUCKET_ACL,
                              n, params, ngx_http_plinth_acl_set);
}


static void
ngx_http_plinth_acl_set(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ngx_http_plinth_finalize(r, ngx_http_plinth_send_body(r, NGX_HTTP_OK,
                                                          NULL, NULL));
}
