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
#include <libxml/parser.h>


#define NGX_PLINTH_DELETE_MAX_KEYS  1000
#define NGX_PLINTH_DELETE_MAX_XML   (2 * 1024 * 1024)


typedef struct {
    ngx_uint_t                    quiet;
} ngx_http_plinth_delete_t;


static void ngx_http_plinth_delete_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_plinth_delete_parse(ngx_http_request_t *r,
    u_char *xml, size_t len, ngx_http_plinth_delete_t *d, u_char **keys,
    u_char **vids);
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
    u_char                    *xml, *keys, *vids;
    size_t                     len;
    ngx_int_t                  rc;
    const char                *params[4];
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

    rc = ngx_http_plinth_delete_parse(r, xml, len, d, &keys, &vids);
    if (rc != NGX_OK) {
        if (rc == NGX_ERROR) {
            ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }
        return;
    }

    params[2] = (char *) keys;
    params[3] = (char *) vids;

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


/*
 * The keys and their version ids as two PostgreSQL text[] literals, in the
 * client's order (NULL where an Object names no VersionId).
 */
static ngx_int_t
ngx_http_plinth_delete_parse(ngx_http_request_t *r, u_char *xml, size_t len,
    ngx_http_plinth_delete_t *d, u_char **keys, u_char **vids)
{
    u_char      *p, *v;
    size_t       size, vsize;
    xmlChar     *text;
    ngx_int_t    rc;
    xmlDocPtr    doc;
    xmlNodePtr   root, obj, f, knode, vnode;
    ngx_uint_t   count;

    doc = ngx_http_plinth_xml_parse(r, xml, len);
    if (doc == NULL) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_MALFORMED_XML, NULL);
        return NGX_DECLINED;
    }

    rc = NGX_DECLINED;
    root = xmlDocGetRootElement(doc);

    if (root == NULL || !ngx_http_plinth_xml_is(root, "Delete")) {
        goto malformed;
    }

    count = 0;
    size = 3;
    vsize = 3;

    for (obj = root->children; obj; obj = obj->next) {
        if (obj->type != XML_ELEMENT_NODE) {
            continue;
        }

        if (ngx_http_plinth_xml_is(obj, "Quiet")) {
            text = xmlNodeGetContent(obj);
            d->quiet = (text && xmlStrcmp(text, (xmlChar *) "true") == 0);
            xmlFree(text);
            continue;
        }

        if (!ngx_http_plinth_xml_is(obj, "Object")) {
            goto malformed;
        }

        knode = NULL;
        vnode = NULL;
        for (f = obj->children; f; f = f->next) {
            if (ngx_http_plinth_xml_is(f, "Key")) {
                if (knode) {
                    goto malformed;
                }
                knode = f;

            } else if (ngx_http_plinth_xml_is(f, "VersionId")) {
                if (vnode) {
                    goto malformed;
                }
                vnode = f;
            }
        }

        if (knode == NULL) {
            goto malformed;
        }

        text = xmlNodeGetContent(knode);
        size += (text ? 2 * (size_t) xmlStrlen(text) : 0) + 3;
        xmlFree(text);

        text = vnode ? xmlNodeGetContent(vnode) : NULL;
        vsize += (text ? 2 * (size_t) xmlStrlen(text) : 4) + 3;
        xmlFree(text);

        count++;
    }

    if (count == 0 || count > NGX_PLINTH_DELETE_MAX_KEYS) {
        goto malformed;
    }

    *keys = ngx_pnalloc(r->pool, size + 1);
    *vids = ngx_pnalloc(r->pool, vsize + 1);
    if (*keys == NULL || *vids == NULL) {
        rc = NGX_ERROR;
        goto done;
    }

    p = *keys;
    *p++ = '{';
    v = *vids;
    *v++ = '{';

    for (obj = root->children; obj; obj = obj->next) {
        if (!ngx_http_plinth_xml_is(obj, "Object")) {
            continue;
        }

        knode = NULL;
        vnode = NULL;
        for (f = obj->children; f; f = f->next) {
            if (ngx_http_plinth_xml_is(f, "Key")) {
                knode = f;
            } else if (ngx_http_plinth_xml_is(f, "VersionId")) {
                vnode = f;
            }
        }

        if (p[-1] != '{') {
            *p++ = ',';
            *v++ = ',';
        }

        p = ngx_plinth_pg_array_node(p, knode);
        v = ngx_plinth_pg_array_node(v, vnode);
    }

    *p++ = '}';
    *p = '\0';
    *v++ = '}';
    *v = '\0';

    rc = NGX_OK;
    goto done;

malformed:

    ngx_http_plinth_error(r, NGX_PLINTH_ERR_MALFORMED_XML, NULL);

done:

    xmlFreeDoc(doc);

    return rc;
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
