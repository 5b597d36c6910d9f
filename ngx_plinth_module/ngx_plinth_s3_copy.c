/*
 * CopyObject: PUT /bucket/key with x-amz-copy-source: /srcbucket/srckey.
 *
 * The copy is made in the database alone (sql/006): a new version that
 * refers to the source's blobs, so a copy of any size moves no byte and is
 * one round trip. x-amz-metadata-directive COPY (the default) keeps the
 * source's Content-Type and user metadata, REPLACE takes the request's;
 * copying an object onto itself needs REPLACE, as in S3. The
 * x-amz-copy-source-if-* conditions are checked against the source by
 * the same statement.
 */

#include "ngx_plinth.h"


static ngx_int_t ngx_http_plinth_copy_source(ngx_http_request_t *r,
    ngx_str_t *value, ngx_str_t *bucket, ngx_str_t *key, ngx_str_t *vid);
static char *ngx_http_plinth_copy_etag(ngx_http_request_t *r,
    const char *name);
static char *ngx_http_plinth_copy_time(ngx_http_request_t *r,
    const char *name, ngx_int_t *bad);
static void ngx_http_plinth_copy_conditions(ngx_http_request_t *r,
    const char **params, ngx_int_t *bad);
static ngx_int_t ngx_http_plinth_copy_range(ngx_http_request_t *r,
    const char **first, const char **last);
static void ngx_http_plinth_copied(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_part_copied(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);


ngx_int_t
ngx_http_plinth_copy_object(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    ngx_table_elt_t *source)
{
    ngx_int_t         bad;
    ngx_str_t         sbucket, skey, svid, meta;
    ngx_uint_t        replace;
    const char       *params[15];
    ngx_table_elt_t  *h;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_plinth_copy_source(r, &source->value, &sbucket, &skey,
                                    &svid)
        != NGX_OK)
    {
        return NGX_OK;
    }

    replace = 0;
    h = ngx_http_plinth_header_in(r, "x-amz-metadata-directive");

    if (h) {
        if (h->value.len == 7
            && ngx_strncmp(h->value.data, "REPLACE", 7) == 0)
        {
            replace = 1;

        } else if (h->value.len != 4
                   || ngx_strncmp(h->value.data, "COPY", 4) != 0)
        {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                                  "Unknown metadata directive.");
            return NGX_OK;
        }
    }

    /* the copy's class: x-amz-storage-class, else the destination bucket's
     * default (S3: STANDARD); a copy onto itself may change only that */
    if (ngx_http_plinth_storage_class(r, &params[14]) != NGX_OK) {
        return NGX_OK;
    }

    if (!replace && svid.len == 0 && params[14] == NULL
        && sbucket.len == ctx->bucket.len && skey.len == ctx->key.len
        && ngx_strncmp(sbucket.data, ctx->bucket.data, sbucket.len) == 0
        && ngx_strncmp(skey.data, ctx->key.data, skey.len) == 0)
    {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_REQUEST,
                              "This copy request is illegal because it is "
                              "trying to copy an object to itself without "
                              "changing the object's metadata, storage "
                              "class, website redirect location or "
                              "encryption attributes.");
        return NGX_OK;
    }

    if (ngx_http_plinth_canned_acl(r, &ctx->acl) != NGX_OK) {
        return NGX_OK;
    }

    meta.len = 0;
    meta.data = NULL;

    if (replace) {
        switch (ngx_http_plinth_user_meta(r, &meta)) {
        case NGX_OK:
            break;
        case NGX_DECLINED:
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_METADATA_TOO_LARGE, NULL);
            return NGX_OK;
        default:
            return NGX_ERROR;
        }
    }

    bad = 0;

    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &sbucket);
    params[1] = (char *) ngx_http_plinth_cstr(r->pool, &skey);
    params[2] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    params[3] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->key);
    params[4] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);
    params[5] = replace ? "true" : "false";
    params[6] = (replace && r->headers_in.content_type)
                ? (char *) ngx_http_plinth_cstr(r->pool,
                                             &r->headers_in.content_type->value)
                : NULL;
    params[7] = meta.len ? (char *) meta.data : NULL;
    params[8] = ctx->acl;
    ngx_http_plinth_copy_conditions(r, &params[9], &bad);
    params[13] = svid.len ? (char *) svid.data : NULL;

    if (params[0] == NULL || params[1] == NULL || params[2] == NULL
        || params[3] == NULL || params[4] == NULL || bad == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    return ngx_http_plinth_pg(r, NGX_PLINTH_SQL_COPY_OBJECT, 15, params,
                              ngx_http_plinth_copied);
}


/*
 * UploadPartCopy: PUT /bucket/key?partNumber=N&uploadId=U with
 * x-amz-copy-source and optionally x-amz-copy-source-range: bytes=a-b.
 * Like CopyObject, made in the database alone: the part refers to the
 * source's blobs (sql/009), whatever its size.
 */
ngx_int_t
ngx_http_plinth_upload_part_copy(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_table_elt_t *source)
{
    u_char      *pn;
    ngx_int_t    bad;
    ngx_str_t    sbucket, skey, svid;
    const char  *params[14];

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_plinth_copy_source(r, &source->value, &sbucket, &skey,
                                    &svid)
        != NGX_OK)
    {
        return NGX_OK;
    }

    if (ngx_http_plinth_copy_range(r, &params[8], &params[9]) != NGX_OK) {
        return NGX_OK;
    }

    pn = ngx_pnalloc(r->pool, NGX_INT_T_LEN + 1);
    if (pn == NULL) {
        return NGX_ERROR;
    }
    *ngx_sprintf(pn, "%ui", ctx->part_number) = '\0';

    bad = 0;

    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    params[1] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->key);
    params[2] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->upload_id);
    params[3] = (char *) pn;
    params[4] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);
    params[5] = (char *) ngx_http_plinth_cstr(r->pool, &sbucket);
    params[6] = (char *) ngx_http_plinth_cstr(r->pool, &skey);
    params[7] = svid.len ? (char *) svid.data : NULL;
    ngx_http_plinth_copy_conditions(r, &params[10], &bad);

    if (params[0] == NULL || params[1] == NULL || params[2] == NULL
        || params[4] == NULL || params[5] == NULL || params[6] == NULL
        || bad == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    return ngx_http_plinth_pg(r, NGX_PLINTH_SQL_PART_COPY, 14, params,
                              ngx_http_plinth_part_copied);
}


/* The x-amz-copy-source-if-* conditions: four statement parameters. */
static void
ngx_http_plinth_copy_conditions(ngx_http_request_t *r, const char **params,
    ngx_int_t *bad)
{
    params[0] = ngx_http_plinth_copy_etag(r, "x-amz-copy-source-if-match");
    params[1] = ngx_http_plinth_copy_etag(r,
                                          "x-amz-copy-source-if-none-match");
    params[2] = ngx_http_plinth_copy_time(r,
                    "x-amz-copy-source-if-modified-since", bad);
    params[3] = ngx_http_plinth_copy_time(r,
                    "x-amz-copy-source-if-unmodified-since", bad);
}


/*
 * x-amz-copy-source-range: "bytes=first-last", both given, as S3 wants
 * (400 InvalidArgument otherwise); absent: *first and *last are NULL.
 */
static ngx_int_t
ngx_http_plinth_copy_range(ngx_http_request_t *r, const char **first,
    const char **last)
{
    u_char           *p, *end, *dash, *a, *b;
    off_t             x, y;
    ngx_table_elt_t  *h;

    *first = NULL;
    *last = NULL;

    h = ngx_http_plinth_header_in(r, "x-amz-copy-source-range");
    if (h == NULL) {
        return NGX_OK;
    }

    p = h->value.data;
    end = p + h->value.len;

    if (end - p < 9 || ngx_strncmp(p, "bytes=", 6) != 0) {
        goto invalid;
    }

    p += 6;
    dash = ngx_strlchr(p, end, '-');
    if (dash == NULL || dash == p || dash + 1 == end) {
        goto invalid;
    }

    x = ngx_atoof(p, dash - p);
    y = ngx_atoof(dash + 1, end - dash - 1);
    if (x == NGX_ERROR || y == NGX_ERROR || x > y) {
        goto invalid;
    }

    a = ngx_pnalloc(r->pool, NGX_OFF_T_LEN + 1);
    b = ngx_pnalloc(r->pool, NGX_OFF_T_LEN + 1);
    if (a == NULL || b == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    *ngx_sprintf(a, "%O", x) = '\0';
    *ngx_sprintf(b, "%O", y) = '\0';
    *first = (char *) a;
    *last = (char *) b;

    return NGX_OK;

invalid:

    ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                          "The x-amz-copy-source-range value must be of the "
                          "form bytes=first-last where first and last are "
                          "the zero-based offsets of the first and last "
                          "bytes to copy");
    return NGX_DECLINED;
}


/*
 * "/bucket/key", "bucket/key", percent-encoded, optionally with
 * "?versionId=<id>" (*vid, NUL-terminated; empty when absent).
 */
static ngx_int_t
ngx_http_plinth_copy_source(ngx_http_request_t *r, ngx_str_t *value,
    ngx_str_t *bucket, ngx_str_t *key, ngx_str_t *vid)
{
    u_char  *src, *dst, *p, *end, *q;

    src = value->data;
    end = src + value->len;
    vid->len = 0;
    vid->data = NULL;

    q = ngx_strlchr(src, end, '?');
    if (q) {
        if (end - q <= (ssize_t) sizeof("?versionId=") - 1
            || ngx_strncmp(q, "?versionId=", sizeof("?versionId=") - 1) != 0
            || !ngx_http_plinth_vid_valid(q + sizeof("?versionId=") - 1,
                                          end - q - sizeof("?versionId=") + 1))
        {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                                  "Invalid version id specified in the "
                                  "copy source.");
            return NGX_DECLINED;
        }
        vid->len = end - q - (sizeof("?versionId=") - 1);
        vid->data = ngx_pnalloc(r->pool, vid->len + 1);
        if (vid->data == NULL) {
            ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_ERROR;
        }
        *ngx_cpymem(vid->data, q + sizeof("?versionId=") - 1, vid->len) =
            '\0';
        end = q;
    }

    if (src < end && *src == '/') {
        src++;
    }

    dst = ngx_pnalloc(r->pool, end - src + 1);
    if (dst == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    p = dst;
    ngx_unescape_uri(&p, &src, end - src, 0);

    bucket->data = dst;
    for (q = dst; q < p && *q != '/'; q++) { /* void */ }
    bucket->len = q - dst;

    if (q >= p - 1 || bucket->len == 0) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                              "Copy Source must mention the source bucket "
                              "and key: sourcebucket/sourcekey");
        return NGX_DECLINED;
    }

    key->data = q + 1;
    key->len = p - (q + 1);

    if (key->len > NGX_PLINTH_MAX_KEY_LEN
        || ngx_strlchr(key->data, key->data + key->len, '\0'))
    {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                              "Invalid copy source key.");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* An ETag condition without its quotes; NULL when the header is absent. */
static char *
ngx_http_plinth_copy_etag(ngx_http_request_t *r, const char *name)
{
    u_char           *p, *last, *s;
    ngx_table_elt_t  *h;

    h = ngx_http_plinth_header_in(r, name);
    if (h == NULL) {
        return NULL;
    }

    p = h->value.data;
    last = p + h->value.len;

    if (last - p >= 2 && *p == '"' && last[-1] == '"') {
        p++;
        last--;
    }

    s = ngx_pnalloc(r->pool, last - p + 1);
    if (s == NULL) {
        return NULL;
    }

    *ngx_cpymem(s, p, last - p) = '\0';

    return (char *) s;
}


/* An HTTP-date condition as epoch seconds; a bad date is ignored, as S3. */
static char *
ngx_http_plinth_copy_time(ngx_http_request_t *r, const char *name,
    ngx_int_t *bad)
{
    u_char           *s;
    time_t            t;
    ngx_table_elt_t  *h;

    h = ngx_http_plinth_header_in(r, name);
    if (h == NULL) {
        return NULL;
    }

    t = ngx_parse_http_time(h->value.data, h->value.len);
    if (t == NGX_ERROR) {
        return NULL;
    }

    s = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 1);
    if (s == NULL) {
        *bad = NGX_ERROR;
        return NULL;
    }

    *ngx_sprintf(s, "%T", t) = '\0';

    return (char *) s;
}


static void
ngx_http_plinth_copied(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_str_t          vid;
    ngx_plinth_xml_t   x;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    /* the new version's id in a versioned bucket; the source's, if any */
    if ((PQgetvalue(res, 0, 3)[0] == 't'
         && (ngx_http_plinth_copy_value(r->pool, res, 0, 2, &vid) != NGX_OK
             || ngx_http_plinth_add_header(r, "x-amz-version-id", &vid)
                != NGX_OK))
        || (!PQgetisnull(res, 0, 4)
            && (ngx_http_plinth_copy_value(r->pool, res, 0, 4, &vid)
                != NGX_OK
                || ngx_http_plinth_add_header(r,
                       "x-amz-copy-source-version-id", &vid)
                   != NGX_OK)))
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_plinth_xml_init(&x, r->pool);
    ngx_plinth_xml_lit(&x, NGX_PLINTH_XML_HEAD
                           "<CopyObjectResult" NGX_PLINTH_XMLNS ">");
    ngx_plinth_xml_elem(&x, "LastModified", (u_char *) PQgetvalue(res, 0, 1),
                        PQgetlength(res, 0, 1));
    ngx_plinth_xml_lit(&x, "<ETag>&quot;");
    ngx_plinth_xml_text(&x, (u_char *) PQgetvalue(res, 0, 0),
                        PQgetlength(res, 0, 0));
    ngx_plinth_xml_lit(&x, "&quot;</ETag></CopyObjectResult>");

    ngx_http_plinth_send_xml(r, &x);
}


static void
ngx_http_plinth_part_copied(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_str_t          vid;
    ngx_plinth_xml_t   x;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    if (!PQgetisnull(res, 0, 2)
        && (ngx_http_plinth_copy_value(r->pool, res, 0, 2, &vid) != NGX_OK
            || ngx_http_plinth_add_header(r, "x-amz-copy-source-version-id",
                                          &vid)
               != NGX_OK))
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_plinth_xml_init(&x, r->pool);
    ngx_plinth_xml_lit(&x, NGX_PLINTH_XML_HEAD
                           "<CopyPartResult" NGX_PLINTH_XMLNS ">");
    ngx_plinth_xml_elem(&x, "LastModified", (u_char *) PQgetvalue(res, 0, 1),
                        PQgetlength(res, 0, 1));
    ngx_plinth_xml_lit(&x, "<ETag>&quot;");
    ngx_plinth_xml_text(&x, (u_char *) PQgetvalue(res, 0, 0),
                        PQgetlength(res, 0, 0));
    ngx_plinth_xml_lit(&x, "&quot;</ETag></CopyPartResult>");

    ngx_http_plinth_send_xml(r, &x);
}
