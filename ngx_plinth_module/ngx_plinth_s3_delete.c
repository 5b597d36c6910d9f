/*
 * DeleteObjects (POST /bucket?delete): the multi-delete XML body
 *
 *   <Delete><Quiet>true</Quiet>
 *     <Object><Key>k</Key><VersionId>v</VersionId></Object>...</Delete>
 *
 * parsed with libxml2 (no network, no entities), at most 1,000 keys, then
 * one statement deletes them all (sql/009), each as DeleteObject would,
 * with or without a version id. The answer lists each key as Deleted
 * (with VersionId, DeleteMarker, DeleteMarkerVersionId as S3 gives them)
 * or as an Error with its code; Quiet leaves out the successes.
 * S3 asked for Content-MD5 on this call; today's SDKs send a CRC checksum
 * or nothing, so neither is required (a Content-MD5 that is sent must
 * match, as everywhere).
 */

#include "ngx_plinth.h"
#include "ngx_plinth_s3_parse.h"


#define NGX_PLINTH_DELETE_MAX_XML   (2 * 1024 * 1024)


typedef struct {
    ngx_uint_t                    quiet;
} ngx_http_plinth_delete_t;


static void ngx_http_plinth_delete_body(ngx_http_request_t *r);
static void ngx_http_plinth_objects_deleted(ngx_http_request_t *r,
    void *data, PGresult *res, ngx_int_t rc);


ngx_int_t
ngx_http_plinth_delete_objects(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    if (ctx->anonymous) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ACCESS_DENIED, NULL);
        return NGX_OK;
    }

    ngx_http_plinth_read_xml_body(r, NGX_PLINTH_DELETE_MAX_XML,
                                  ngx_http_plinth_delete_body);

    return NGX_OK;
}


static void
ngx_http_plinth_delete_body(ngx_http_request_t *r)
{
    int                        dtd;
    u_char                    *xml;
    size_t                     len;
    const char                *params[4];
    plinth_parse_err_e         rc;
    plinth_delete_doc_t        doc;
    ngx_http_plinth_ctx_t     *ctx;
    ngx_http_plinth_delete_t  *d;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (ctx->finalized) {
        return;
    }

    xml = ngx_http_plinth_read_body(r, NGX_PLINTH_DELETE_MAX_XML, &len);
    if (xml == NULL) {
        if (len > NGX_PLINTH_DELETE_MAX_XML) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_MALFORMED_XML,
                                  "The XML you provided is too large.");
            return;
        }
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_MALFORMED_XML, NULL);
        return;
    }

    if (ngx_http_plinth_check_body_md5(r, xml, len) != NGX_OK) {
        return;
    }

    d = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_delete_t));
    if (d == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the keys and their version ids: two text[] literals */
    rc = plinth_delete_parse(xml, len, NGX_PLINTH_XML_PARSE_OPTIONS,
                             ngx_http_plinth_pool_alloc, r->pool, &doc, &dtd);
    if (rc != PLINTH_PARSE_OK) {
        ngx_http_plinth_parse_error(r, rc, NULL, dtd);
        return;
    }

    d->quiet = doc.quiet;
    params[2] = doc.keys;
    params[3] = doc.vids;

    if (ngx_http_plinth_cstrs(r->pool, params, 2, &ctx->bucket,
                              &ctx->identity)
           != NGX_OK
        || ngx_plinth_pg_query(r, NGX_PLINTH_SQL_DELETE_OBJECTS, 4, params,
                               ngx_http_plinth_objects_deleted, d)
           != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


static void
ngx_http_plinth_objects_deleted(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    ngx_http_plinth_delete_t *d = data;

    int                     i, n;
    ngx_plinth_xml_t        x;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ngx_plinth_xml_init(&x, r->pool);
    ngx_plinth_xml_lit(&x, NGX_PLINTH_XML_HEAD
                           "<DeleteResult" NGX_PLINTH_XMLNS ">");

    n = PQntuples(res);

    for (i = 0; i < n; i++) {
        if (PQgetisnull(res, i, 2)) {
            if (d->quiet) {
                continue;
            }
            ngx_plinth_xml_lit(&x, "<Deleted>");
            ngx_plinth_xml_elem(&x, "Key", (u_char *) PQgetvalue(res, i, 0),
                                PQgetlength(res, i, 0));
            if (!PQgetisnull(res, i, 1)) {
                ngx_plinth_xml_elem(&x, "VersionId",
                                    (u_char *) PQgetvalue(res, i, 1),
                                    PQgetlength(res, i, 1));
            }
            if (!PQgetisnull(res, i, 4)) {
                ngx_plinth_xml_lit(&x, "<DeleteMarker>true</DeleteMarker>");
                ngx_plinth_xml_elem(&x, "DeleteMarkerVersionId",
                                    (u_char *) PQgetvalue(res, i, 5),
                                    PQgetlength(res, i, 5));
            }
            ngx_plinth_xml_lit(&x, "</Deleted>");
            continue;
        }

        ngx_plinth_xml_lit(&x, "<Error>");
        ngx_plinth_xml_elem(&x, "Key", (u_char *) PQgetvalue(res, i, 0),
                            PQgetlength(res, i, 0));
        if (!PQgetisnull(res, i, 1)) {
            ngx_plinth_xml_elem(&x, "VersionId",
                                (u_char *) PQgetvalue(res, i, 1),
                                PQgetlength(res, i, 1));
        }
        ngx_plinth_xml_elem(&x, "Code", (u_char *) PQgetvalue(res, i, 2),
                            PQgetlength(res, i, 2));
        ngx_plinth_xml_elem(&x, "Message", (u_char *) PQgetvalue(res, i, 3),
                            PQgetlength(res, i, 3));
        ngx_plinth_xml_lit(&x, "</Error>");
    }

    ngx_plinth_xml_lit(&x, "</DeleteResult>");

    ngx_http_plinth_send_xml(r, &x);
}
