/*
 * S3 multipart upload: CreateMultipartUpload, UploadPart,
 * CompleteMultipartUpload, AbortMultipartUpload, ListParts and
 * ListMultipartUploads.
 *
 * A part is written exactly as a PutObject body is (ngx_plinth_s3_object.c:
 * read and hashed, Content-MD5 checked, fanned out to RF nodes, answered
 * after W), as a blob of its own placed on the ring by its blob id, so the
 * parts of one object spread over the cluster. Completion never moves a
 * byte: the database turns the listed parts into one version whose
 * segments GET reads in order (ngx_plinth_fanout.c). Every check of the
 * part list (order, ETags, sizes) and the multipart ETag are decided by
 * plinth_mpu_complete() in one round trip (sql/003_multipart.sql).
 */

#include "ngx_plinth.h"
#include "ngx_plinth_s3_parse.h"


/* 10,000 parts of about 100 bytes of XML each, with room to spare */
#define NGX_PLINTH_MPU_MAX_XML   (4 * 1024 * 1024)
#define NGX_PLINTH_MPU_MAX_PARTS PLINTH_MPU_MAX_PARTS


typedef struct {
    ngx_str_t                     prefix;
    ngx_str_t                     delimiter;
    ngx_str_t                     key_marker;
    ngx_str_t                     upload_id_marker;
    ngx_int_t                     max;
    ngx_int_t                     marker;       /* part-number-marker */
    ngx_uint_t                    url;          /* encoding-type=url */
} ngx_http_plinth_mpu_list_t;


static ngx_int_t ngx_http_plinth_mpu_upload_id(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
static void ngx_http_plinth_mpu_created(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_part_begin(ngx_http_request_t *r);
static void ngx_http_plinth_part_begun(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_part_decided(ngx_http_request_t *r);
static void ngx_http_plinth_part_committed(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_part_aborted(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static ngx_int_t ngx_http_plinth_mpu_checksum_args(ngx_http_request_t *r,
    const char **alg, const char **type);
static void ngx_http_plinth_complete_body(ngx_http_request_t *r);
static void ngx_http_plinth_complete_checksums(ngx_http_request_t *r,
    void *data, PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_completed(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_mpu_aborted(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static ngx_int_t ngx_http_plinth_mpu_int_arg(ngx_http_request_t *r,
    const char *name, ngx_int_t *value, ngx_int_t min, ngx_int_t max);
static ngx_int_t ngx_http_plinth_mpu_encoding(ngx_http_request_t *r,
    ngx_uint_t *url);
static void ngx_http_plinth_parts_listed(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_uploads_listed(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_mpu_owner(ngx_plinth_xml_t *x, const char *name,
    ngx_str_t *id);


/* ?uploadId=X into ctx->upload_id; NGX_DECLINED after an error answer. */
static ngx_int_t
ngx_http_plinth_mpu_upload_id(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    if (ngx_http_plinth_arg(r, "uploadId", &ctx->upload_id) != NGX_OK
        || ctx->upload_id.len == 0)
    {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_NO_SUCH_UPLOAD, NULL);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_plinth_create_multipart_upload(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    ngx_str_t    meta;
    const char  *params[8];

    if (ngx_http_plinth_mpu_checksum_args(r, &params[5], &params[6])
        != NGX_OK
        || ngx_http_plinth_storage_class(r, &params[7]) != NGX_OK)
    {
        return NGX_OK;
    }

    switch (ngx_http_plinth_user_meta(r, &meta)) {
    case NGX_OK:
        break;
    case NGX_DECLINED:
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_METADATA_TOO_LARGE, NULL);
        return NGX_OK;
    default:
        return NGX_ERROR;
    }

    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    params[1] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->key);
    params[2] = r->headers_in.content_type
                ? (char *) ngx_http_plinth_cstr(r->pool,
                                              &r->headers_in.content_type->value)
                : NULL;
    params[3] = meta.len ? (char *) meta.data : NULL;
    params[4] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);

    if (params[0] == NULL || params[1] == NULL || params[4] == NULL
        || (r->headers_in.content_type && params[2] == NULL))
    {
        return NGX_ERROR;
    }

    return ngx_http_plinth_pg(r, NGX_PLINTH_SQL_MPU_CREATE, 8, params,
                              ngx_http_plinth_mpu_created);
}


/*
 * CreateMultipartUpload's x-amz-checksum-algorithm and x-amz-checksum-type
 * as S3 takes them: COMPOSITE is the default but for CRC64NVME, which is
 * FULL_OBJECT only; FULL_OBJECT is for CRCs only. The stored names
 * (*alg lower case, *type), NULLs when no algorithm is asked for; NGX_ERROR
 * after an error answer.
 */
static ngx_int_t
ngx_http_plinth_mpu_checksum_args(ngx_http_request_t *r, const char **alg,
    const char **type)
{
    ngx_uint_t        a;
    ngx_table_elt_t  *ha, *ht;

    *alg = NULL;
    *type = NULL;

    ha = ngx_http_plinth_header_in(r, "x-amz-checksum-algorithm");
    ht = ngx_http_plinth_header_in(r, "x-amz-checksum-type");

    if (ha == NULL) {
        if (ht) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_REQUEST,
                                  "The x-amz-checksum-type header can only "
                                  "be used with the x-amz-checksum-algorithm "
                                  "header.");
            return NGX_ERROR;
        }
        return NGX_OK;
    }

    a = ngx_http_plinth_checksum_alg_name(ha->value.data, ha->value.len);
    if (a == NGX_PLINTH_CKS_NONE) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                              "Checksum algorithm provided is unsupported. "
                              "Please try again with any of the valid "
                              "types: [CRC32, CRC32C, CRC64NVME, SHA1, "
                              "SHA256]");
        return NGX_ERROR;
    }

    *alg = ngx_http_plinth_cks_names[a];
    *type = (a == NGX_PLINTH_CKS_CRC64NVME) ? "FULL_OBJECT" : "COMPOSITE";

    if (ht) {
        if (ht->value.len == 11
            && ngx_strncmp(ht->value.data, "FULL_OBJECT", 11) == 0)
        {
            *type = "FULL_OBJECT";

        } else if (ht->value.len == 9
                   && ngx_strncmp(ht->value.data, "COMPOSITE", 9) == 0)
        {
            *type = "COMPOSITE";

        } else {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                                  "Value for x-amz-checksum-type header is "
                                  "invalid.");
            return NGX_ERROR;
        }
    }

    if ((a == NGX_PLINTH_CKS_CRC64NVME && (*type)[0] == 'C')
        || ((a == NGX_PLINTH_CKS_SHA1 || a == NGX_PLINTH_CKS_SHA256)
            && (*type)[0] == 'F'))
    {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_REQUEST,
                              "The checksum type is not supported with this "
                              "checksum algorithm.");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_plinth_mpu_created(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_str_t               v, t;
    ngx_uint_t              a;
    const char             *alg, *type;
    ngx_plinth_xml_t        x;
    ngx_http_plinth_ctx_t  *ctx;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    /* the algorithm and type the upload will use, as S3 answers them */
    if (ngx_http_plinth_mpu_checksum_args(r, &alg, &type) == NGX_OK && alg) {
        a = ngx_http_plinth_checksum_alg_name((u_char *) alg,
                                              ngx_strlen(alg));
        v.data = (u_char *) plinth_cks_algorithms[a];
        v.len = ngx_strlen(v.data);
        t.data = (u_char *) type;
        t.len = ngx_strlen(type);
        if (ngx_http_plinth_add_header(r, "x-amz-checksum-algorithm", &v)
            != NGX_OK
            || ngx_http_plinth_add_header(r, "x-amz-checksum-type", &t)
               != NGX_OK)
        {
            ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    ngx_plinth_xml_init(&x, r->pool);
    ngx_plinth_xml_lit(&x, NGX_PLINTH_XML_HEAD
                           "<InitiateMultipartUploadResult"
                           NGX_PLINTH_XMLNS ">");
    ngx_plinth_xml_elem(&x, "Bucket", ctx->bucket.data, ctx->bucket.len);
    ngx_plinth_xml_elem(&x, "Key", ctx->key.data, ctx->key.len);
    ngx_plinth_xml_elem(&x, "UploadId", (u_char *) PQgetvalue(res, 0, 0),
                        PQgetlength(res, 0, 0));
    ngx_plinth_xml_lit(&x, "</InitiateMultipartUploadResult>");

    ngx_http_plinth_send_xml(r, &x);
}


/*
 * UploadPart: the PutObject body path; the part is recorded only after W
 * data nodes hold it, replacing a part of the same number. With
 * x-amz-copy-source, UploadPartCopy (ngx_plinth_s3_copy.c).
 */
ngx_int_t
ngx_http_plinth_upload_part(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    ngx_int_t         n;
    ngx_str_t         v;
    ngx_table_elt_t  *source;

    n = NGX_ERROR;
    if (ngx_http_plinth_arg(r, "partNumber", &v) == NGX_OK) {
        n = ngx_atoi(v.data, v.len);
    }

    if (n < 1 || n > NGX_PLINTH_MPU_MAX_PARTS) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                              "Part number must be an integer between 1 and "
                              "10000, inclusive");
        return NGX_OK;
    }

    ctx->part_number = n;

    if (ngx_http_plinth_mpu_upload_id(r, ctx) != NGX_OK) {
        return NGX_OK;
    }

    source = ngx_http_plinth_header_in(r, "x-amz-copy-source");
    if (source) {
        return ngx_http_plinth_upload_part_copy(r, ctx, source);
    }

    return ngx_http_plinth_put_body(r, ctx, ngx_http_plinth_part_begin);
}


static void
ngx_http_plinth_part_begin(ngx_http_request_t *r)
{
    const char             *params[4];
    ngx_http_plinth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    params[1] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->key);
    params[2] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->upload_id);
    params[3] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);

    if (params[0] == NULL || params[1] == NULL || params[2] == NULL
        || params[3] == NULL
        || ngx_http_plinth_pg(r, NGX_PLINTH_SQL_PART_BEGIN, 4, params,
                              ngx_http_plinth_part_begun)
           != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


static void
ngx_http_plinth_part_begun(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_http_plinth_ctx_t  *ctx;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (ngx_http_plinth_copy_value(r->pool, res, 0, 0, &ctx->blob_id)
        != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* placement: the ring's RF nodes for the part's own blob id, of the
     * upload's tier */
    ctx->tier = PQgetisnull(res, 0, 1)
                ? NULL
                : ngx_http_plinth_class_tier(PQgetvalue(res, 0, 1),
                                             PQgetlength(res, 0, 1));

    ngx_http_plinth_put_place(r, ctx, ctx->blob_id.data, ctx->blob_id.len,
                              ngx_http_plinth_part_decided);
}


static void
ngx_http_plinth_part_decided(ngx_http_request_t *r)
{
    u_char                 *pn, *size, *etag;
    const char             *params[8];
    ngx_uint_t              quorum;
    ngx_http_plinth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->upload_id);
    params[2] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->blob_id);
    params[5] = (char *) ngx_http_plinth_put_nodes(r, ctx, &quorum);

    if (params[0] == NULL || params[2] == NULL || params[5] == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (!quorum) {
        params[0] = params[2];
        params[1] = params[5];

        if (ngx_http_plinth_pg(r, NGX_PLINTH_SQL_PART_ABORT, 2, params,
                               ngx_http_plinth_part_aborted)
            != NGX_OK)
        {
            ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        return;
    }

    pn = ngx_pnalloc(r->pool, NGX_INT_T_LEN + 1);
    size = ngx_pnalloc(r->pool, NGX_OFF_T_LEN + 1);
    etag = ngx_pnalloc(r->pool, 33);
    if (pn == NULL || size == NULL || etag == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    *ngx_sprintf(pn, "%ui", ctx->part_number) = '\0';
    *ngx_sprintf(size, "%O", ctx->body_len) = '\0';
    ngx_memcpy(etag, ctx->etag, 32);
    etag[32] = '\0';

    params[1] = (char *) pn;
    params[3] = (char *) size;
    params[4] = (char *) etag;

    if (ngx_http_plinth_checksum_params(r, ctx, &params[6], &params[7])
        != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_plinth_pg(r, NGX_PLINTH_SQL_PART_COMMIT, 8, params,
                           ngx_http_plinth_part_committed)
        != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


static void
ngx_http_plinth_part_committed(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    ngx_http_plinth_ctx_t  *ctx;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    ngx_http_plinth_put_answer(r, ctx, NULL);
}


static void
ngx_http_plinth_part_aborted(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "plinth: could not record a failed part write; "
                      "garbage collection will find its blobs as orphans");
    }

    ngx_http_plinth_error(r, NGX_PLINTH_ERR_SERVICE_UNAVAILABLE,
                          "Not enough data nodes acknowledged the write.");
}


ngx_int_t
ngx_http_plinth_complete_multipart_upload(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    if (ngx_http_plinth_mpu_upload_id(r, ctx) != NGX_OK) {
        return NGX_OK;
    }

    /* If-None-Match: * and If-Match, decided atomically by the database */
    switch (ngx_http_plinth_put_conditions(r, ctx)) {
    case NGX_OK:
        break;
    case NGX_DECLINED:
        return NGX_OK;
    default:
        return NGX_ERROR;
    }

    ngx_http_plinth_read_xml_body(r, NGX_PLINTH_MPU_MAX_XML,
                                  ngx_http_plinth_complete_body);

    return NGX_OK;
}


/* CompleteMultipartUpload between its two statements */
typedef struct {
    const char                   *params[11];
    ngx_uint_t                    alg;        /* the object's checksum */
    ngx_str_t                     checksum;
    const char                   *type;
} ngx_http_plinth_complete_t;


static void
ngx_http_plinth_complete_body(ngx_http_request_t *r)
{
    int                          dtd;
    u_char                      *xml;
    size_t                       len;
    const char                  *q[6], *message;
    plinth_parse_err_e           rc;
    plinth_complete_doc_t        doc;
    ngx_http_plinth_ctx_t       *ctx;
    ngx_http_plinth_complete_t  *c;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (ctx->finalized) {
        return;
    }

    xml = ngx_http_plinth_read_body(r, NGX_PLINTH_MPU_MAX_XML, &len);
    if (xml == NULL) {
        if (len > NGX_PLINTH_MPU_MAX_XML) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_MALFORMED_XML,
                                  "The XML you provided is too large.");
            return;
        }
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the part numbers, ETags and checksums: three array literals */
    rc = plinth_complete_parse(xml, len, NGX_PLINTH_XML_PARSE_OPTIONS,
                               ngx_http_plinth_pool_alloc, r->pool, &doc,
                               &message, &dtd);
    if (rc != PLINTH_PARSE_OK) {
        ngx_http_plinth_parse_error(r, rc, message, dtd);
        return;
    }

    c = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_complete_t));
    if (c == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    c->params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    c->params[1] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->key);
    c->params[2] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->upload_id);
    c->params[3] = doc.parts;
    c->params[4] = doc.etags;
    c->params[5] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);
    c->params[6] = ctx->if_none_match ? "true" : "false";
    c->params[7] = ctx->if_match.len ? (char *) ctx->if_match.data : NULL;

    if (c->params[0] == NULL || c->params[1] == NULL || c->params[2] == NULL
        || c->params[5] == NULL)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* first the parts' checksums, to compute the object's */
    q[0] = c->params[0];
    q[1] = c->params[1];
    q[2] = c->params[2];
    q[3] = c->params[5];
    q[4] = c->params[3];
    q[5] = doc.cks;

    if (ngx_plinth_pg_query(r, NGX_PLINTH_SQL_MPU_PART_CHECKSUMS, 6, q,
                            ngx_http_plinth_complete_checksums, c)
        != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


/*
 * The upload's algorithm and its parts' checksums are in: the object's
 * checksum (none without an algorithm, or when a part is missing: then
 * Complete itself answers InvalidPart), checked against the one the
 * client may send (x-amz-checksum-<alg>: BadDigest), then Complete.
 */
static void
ngx_http_plinth_complete_checksums(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    ngx_http_plinth_complete_t *c = data;

    int               i, n;
    off_t            *sizes;
    ngx_str_t        *cks;
    ngx_uint_t        full;
    ngx_table_elt_t  *h;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    n = PQntuples(res);

    if (n > 0 && !PQgetisnull(res, 0, 0)) {
        c->alg = ngx_http_plinth_checksum_alg_name(
                     (u_char *) PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0));
        c->type = PQgetvalue(res, 0, 1)[0] == 'F' ? "FULL_OBJECT"
                                                  : "COMPOSITE";
        full = (c->type[0] == 'F');

        sizes = ngx_palloc(r->pool, n * sizeof(off_t));
        cks = ngx_palloc(r->pool, n * sizeof(ngx_str_t));
        if (sizes == NULL || cks == NULL) {
            ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        for (i = 0; i < n; i++) {
            if (PQgetisnull(res, i, 3) || PQgetisnull(res, i, 4)) {
                c->alg = NGX_PLINTH_CKS_NONE;   /* Complete will refuse */
                break;
            }
            sizes[i] = ngx_atoof((u_char *) PQgetvalue(res, i, 3),
                                 PQgetlength(res, i, 3));
            cks[i].data = (u_char *) PQgetvalue(res, i, 4);
            cks[i].len = PQgetlength(res, i, 4);
        }

        if (c->alg != NGX_PLINTH_CKS_NONE) {
            rc = ngx_http_plinth_checksum_parts(r->pool, c->alg, full, cks,
                                                sizes, n, &c->checksum);
            if (rc == NGX_ERROR) {
                ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }
            if (rc == NGX_DECLINED) {
                ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_PART,
                                      "A part's stored checksum is not "
                                      "valid for its algorithm.");
                return;
            }

            h = ngx_http_plinth_header_in(r,
                    ngx_http_plinth_cks_headers[c->alg]);
            if (h && (h->value.len != c->checksum.len
                      || ngx_strncmp(h->value.data, c->checksum.data,
                                     h->value.len) != 0))
            {
                ngx_http_plinth_error(r, NGX_PLINTH_ERR_BAD_DIGEST,
                                      "The checksum you specified did not "
                                      "match the calculated checksum.");
                return;
            }

            c->params[8] = ngx_http_plinth_cks_names[c->alg];
            c->params[9] = (char *) c->checksum.data;
            c->params[10] = c->type;
        }
    }

    if (ngx_plinth_pg_query(r, NGX_PLINTH_SQL_MPU_COMPLETE, 11, c->params,
                            ngx_http_plinth_completed, c)
        != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


static void
ngx_http_plinth_completed(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_http_plinth_complete_t *c = data;

    u_char                 *p, *q;
    ngx_str_t               path, host, loc;
    ngx_plinth_xml_t        x;
    ngx_http_plinth_ctx_t  *ctx;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (PQgetvalue(res, 0, 2)[0] == 't'
        && (ngx_http_plinth_copy_value(r->pool, res, 0, 1, &ctx->vid)
            != NGX_OK
            || ngx_http_plinth_add_header(r, "x-amz-version-id", &ctx->vid)
               != NGX_OK))
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* Location: the object's URL, as the client addressed it */
    path = r->unparsed_uri;
    q = ngx_strlchr(path.data, path.data + path.len, '?');
    if (q) {
        path.len = q - path.data;
    }

    if (r->headers_in.host) {
        host = r->headers_in.host->value;
    } else {
        ngx_str_set(&host, "localhost");
    }

    loc.data = ngx_pnalloc(r->pool, sizeof("https://") - 1 + host.len
                                    + path.len);
    if (loc.data == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = loc.data;
#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        p = ngx_cpymem(p, "https://", sizeof("https://") - 1);
    } else
#endif
    {
        p = ngx_cpymem(p, "http://", sizeof("http://") - 1);
    }
    p = ngx_cpymem(p, host.data, host.len);
    p = ngx_cpymem(p, path.data, path.len);
    loc.len = p - loc.data;

    ngx_plinth_xml_init(&x, r->pool);
    ngx_plinth_xml_lit(&x, NGX_PLINTH_XML_HEAD
                           "<CompleteMultipartUploadResult"
                           NGX_PLINTH_XMLNS ">");
    ngx_plinth_xml_elem(&x, "Location", loc.data, loc.len);
    ngx_plinth_xml_elem(&x, "Bucket", ctx->bucket.data, ctx->bucket.len);
    ngx_plinth_xml_elem(&x, "Key", ctx->key.data, ctx->key.len);
    ngx_plinth_xml_lit(&x, "<ETag>&quot;");
    ngx_plinth_xml_text(&x, (u_char *) PQgetvalue(res, 0, 0),
                        PQgetlength(res, 0, 0));
    ngx_plinth_xml_lit(&x, "&quot;</ETag>");

    if (c && c->alg != NGX_PLINTH_CKS_NONE) {
        ngx_plinth_xml_lit(&x, "<Checksum");
        ngx_plinth_xml_lit(&x, plinth_cks_algorithms[c->alg]);
        ngx_plinth_xml_lit(&x, ">");
        ngx_plinth_xml_text(&x, c->checksum.data, c->checksum.len);
        ngx_plinth_xml_lit(&x, "</Checksum");
        ngx_plinth_xml_lit(&x, plinth_cks_algorithms[c->alg]);
        ngx_plinth_xml_lit(&x, "><ChecksumType>");
        ngx_plinth_xml_lit(&x, c->type);
        ngx_plinth_xml_lit(&x, "</ChecksumType>");
    }

    ngx_plinth_xml_lit(&x, "</CompleteMultipartUploadResult>");

    ngx_http_plinth_send_xml(r, &x);
}


ngx_int_t
ngx_http_plinth_abort_multipart_upload(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    const char  *params[4];

    if (ngx_http_plinth_mpu_upload_id(r, ctx) != NGX_OK) {
        return NGX_OK;
    }

    if (ngx_http_plinth_cstrs(r->pool, params, 4, &ctx->bucket, &ctx->key,
                              &ctx->upload_id, &ctx->identity)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_plinth_pg(r, NGX_PLINTH_SQL_MPU_ABORT, 4, params,
                              ngx_http_plinth_mpu_aborted);
}


static void
ngx_http_plinth_mpu_aborted(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ngx_http_plinth_finalize(r, ngx_http_plinth_send_body(r,
                                    NGX_HTTP_NO_CONTENT, NULL, NULL));
}


/* An integer query argument in [min, max], or the default left in *value;
 * NGX_DECLINED after a 400 InvalidArgument answer. */
static ngx_int_t
ngx_http_plinth_mpu_int_arg(ngx_http_request_t *r, const char *name,
    ngx_int_t *value, ngx_int_t min, ngx_int_t max)
{
    ngx_int_t  n;
    ngx_str_t  v;
    u_char     msg[128];

    if (ngx_http_plinth_arg(r, name, &v) != NGX_OK) {
        return NGX_OK;
    }

    n = ngx_atoi(v.data, v.len);

    if (n == NGX_ERROR || n < min) {
        *ngx_snprintf(msg, sizeof(msg) - 1,
                      "Provided %s not an integer or within integer range",
                      name) = '\0';
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                              (char *) msg);
        return NGX_DECLINED;
    }

    *value = n > max ? max : n;

    return NGX_OK;
}


static ngx_int_t
ngx_http_plinth_mpu_encoding(ngx_http_request_t *r, ngx_uint_t *url)
{
    ngx_str_t  v;

    *url = 0;

    if (ngx_http_plinth_arg(r, "encoding-type", &v) != NGX_OK) {
        return NGX_OK;
    }

    if (v.len != 3 || ngx_strncmp(v.data, "url", 3) != 0) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                              "Invalid Encoding Method specified in Request");
        return NGX_DECLINED;
    }

    *url = 1;

    return NGX_OK;
}


ngx_int_t
ngx_http_plinth_list_parts(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    u_char                      *marker, *max;
    const char                  *params[6];
    ngx_http_plinth_mpu_list_t  *ml;

    ml = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_mpu_list_t));
    if (ml == NULL) {
        return NGX_ERROR;
    }

    ml->max = 1000;

    if (ngx_http_plinth_mpu_upload_id(r, ctx) != NGX_OK
        || ngx_http_plinth_mpu_int_arg(r, "max-parts", &ml->max, 0, 1000)
           != NGX_OK
        || ngx_http_plinth_mpu_int_arg(r, "part-number-marker", &ml->marker,
                                       0, NGX_PLINTH_MPU_MAX_PARTS)
           != NGX_OK
        || ngx_http_plinth_mpu_encoding(r, &ml->url) != NGX_OK)
    {
        return NGX_OK;
    }

    marker = ngx_pnalloc(r->pool, NGX_INT_T_LEN + 1);
    max = ngx_pnalloc(r->pool, NGX_INT_T_LEN + 1);
    if (marker == NULL || max == NULL) {
        return NGX_ERROR;
    }
    *ngx_sprintf(marker, "%i", ml->marker) = '\0';
    *ngx_sprintf(max, "%i", ml->max) = '\0';

    params[4] = (char *) marker;
    params[5] = (char *) max;

    if (ngx_http_plinth_cstrs(r->pool, params, 4, &ctx->bucket, &ctx->key,
                              &ctx->upload_id, &ctx->identity)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_plinth_pg_query(r, NGX_PLINTH_SQL_LIST_PARTS, 6, params,
                               ngx_http_plinth_parts_listed, ml);
}


static void
ngx_http_plinth_parts_listed(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    ngx_http_plinth_mpu_list_t  *ml = data;

    int                     i, n, shown;
    ngx_uint_t              truncated;
    ngx_plinth_xml_t        x;
    ngx_http_plinth_ctx_t  *ctx;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    n = PQntuples(res);
    truncated = (ml->max > 0 && n > ml->max);
    shown = n > ml->max ? (int) ml->max : n;

    ngx_plinth_xml_init(&x, r->pool);
    ngx_plinth_xml_lit(&x, NGX_PLINTH_XML_HEAD "<ListPartsResult"
                           NGX_PLINTH_XMLNS ">");
    ngx_plinth_xml_elem(&x, "Bucket", ctx->bucket.data, ctx->bucket.len);
    ngx_plinth_xml_elem_url(&x, "Key", ctx->key.data, ctx->key.len, ml->url);
    ngx_plinth_xml_elem(&x, "UploadId", ctx->upload_id.data,
                        ctx->upload_id.len);
    if (ml->url) {
        ngx_plinth_xml_lit(&x, "<EncodingType>url</EncodingType>");
    }
    ngx_http_plinth_mpu_owner(&x, "Initiator", &ctx->identity);
    ngx_http_plinth_mpu_owner(&x, "Owner", &ctx->identity);
    /* the upload's class (known from its parts; none listed: STANDARD) */
    if (n > 0) {
        ngx_plinth_xml_elem(&x, "StorageClass",
                            (u_char *) PQgetvalue(res, 0, 5),
                            PQgetlength(res, 0, 5));
    } else {
        ngx_plinth_xml_lit(&x, "<StorageClass>STANDARD</StorageClass>");
    }
    ngx_plinth_xml_elem_int(&x, "PartNumberMarker", ml->marker);
    if (shown > 0) {
        ngx_plinth_xml_elem(&x, "NextPartNumberMarker",
                            (u_char *) PQgetvalue(res, shown - 1, 0),
                            PQgetlength(res, shown - 1, 0));
    }
    ngx_plinth_xml_elem_int(&x, "MaxParts", ml->max);
    ngx_plinth_xml_lit(&x, truncated ? "<IsTruncated>true</IsTruncated>"
                                     : "<IsTruncated>false</IsTruncated>");

    for (i = 0; i < shown; i++) {
        ngx_plinth_xml_lit(&x, "<Part>");
        ngx_plinth_xml_elem(&x, "PartNumber", (u_char *) PQgetvalue(res, i, 0),
                            PQgetlength(res, i, 0));
        ngx_plinth_xml_elem(&x, "LastModified",
                            (u_char *) PQgetvalue(res, i, 3),
                            PQgetlength(res, i, 3));
        ngx_plinth_xml_lit(&x, "<ETag>&quot;");
        ngx_plinth_xml_text(&x, (u_char *) PQgetvalue(res, i, 1),
                            PQgetlength(res, i, 1));
        ngx_plinth_xml_lit(&x, "&quot;</ETag>");
        ngx_plinth_xml_elem(&x, "Size", (u_char *) PQgetvalue(res, i, 2),
                            PQgetlength(res, i, 2));
        ngx_plinth_xml_lit(&x, "</Part>");
    }

    ngx_plinth_xml_lit(&x, "</ListPartsResult>");

    ngx_http_plinth_send_xml(r, &x);
}


ngx_int_t
ngx_http_plinth_list_multipart_uploads(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    u_char                      *max;
    const char                  *params[7];
    ngx_http_plinth_mpu_list_t  *ml;

    ml = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_mpu_list_t));
    if (ml == NULL) {
        return NGX_ERROR;
    }

    ml->max = 1000;

    if (ngx_http_plinth_mpu_int_arg(r, "max-uploads", &ml->max, 0, 1000)
        != NGX_OK
        || ngx_http_plinth_mpu_encoding(r, &ml->url) != NGX_OK)
    {
        return NGX_OK;
    }

    (void) ngx_http_plinth_arg(r, "prefix", &ml->prefix);
    (void) ngx_http_plinth_arg(r, "delimiter", &ml->delimiter);
    (void) ngx_http_plinth_arg(r, "key-marker", &ml->key_marker);
    (void) ngx_http_plinth_arg(r, "upload-id-marker", &ml->upload_id_marker);

    max = ngx_pnalloc(r->pool, NGX_INT_T_LEN + 1);
    if (max == NULL) {
        return NGX_ERROR;
    }
    *ngx_sprintf(max, "%i", ml->max) = '\0';

    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    params[1] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);
    params[2] = (char *) ngx_http_plinth_cstr(r->pool, &ml->prefix);
    params[3] = (char *) ngx_http_plinth_cstr(r->pool, &ml->delimiter);
    params[4] = (char *) ngx_http_plinth_cstr(r->pool, &ml->key_marker);
    params[5] = (char *) ngx_http_plinth_cstr(r->pool, &ml->upload_id_marker);
    params[6] = (char *) max;

    if (params[0] == NULL || params[1] == NULL || params[2] == NULL
        || params[3] == NULL || params[4] == NULL || params[5] == NULL)
    {
        return NGX_ERROR;
    }

    return ngx_plinth_pg_query(r, NGX_PLINTH_SQL_LIST_UPLOADS, 7, params,
                               ngx_http_plinth_uploads_listed, ml);
}


static void
ngx_http_plinth_uploads_listed(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    ngx_http_plinth_mpu_list_t  *ml = data;

    int                     i, n, shown;
    ngx_str_t               owner;
    ngx_uint_t              truncated;
    ngx_plinth_xml_t        x;
    ngx_http_plinth_ctx_t  *ctx;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    n = PQntuples(res);
    truncated = (ml->max > 0 && n > ml->max);
    shown = n > ml->max ? (int) ml->max : n;

    ngx_plinth_xml_init(&x, r->pool);
    ngx_plinth_xml_lit(&x, NGX_PLINTH_XML_HEAD
                           "<ListMultipartUploadsResult"
                           NGX_PLINTH_XMLNS ">");
    ngx_plinth_xml_elem(&x, "Bucket", ctx->bucket.data, ctx->bucket.len);
    ngx_plinth_xml_elem_url(&x, "KeyMarker", ml->key_marker.data,
                            ml->key_marker.len, ml->url);
    ngx_plinth_xml_elem(&x, "UploadIdMarker", ml->upload_id_marker.data,
                        ml->upload_id_marker.len);

    if (truncated && shown > 0) {
        ngx_plinth_xml_elem_url(&x, "NextKeyMarker",
                                (u_char *) PQgetvalue(res, shown - 1, 0),
                                PQgetlength(res, shown - 1, 0), ml->url);
        ngx_plinth_xml_elem(&x, "NextUploadIdMarker",
                            (u_char *) PQgetvalue(res, shown - 1, 1),
                            PQgetlength(res, shown - 1, 1));
    }

    if (ml->delimiter.len) {
        ngx_plinth_xml_elem_url(&x, "Delimiter", ml->delimiter.data,
                                ml->delimiter.len, ml->url);
    }
    ngx_plinth_xml_elem_url(&x, "Prefix", ml->prefix.data, ml->prefix.len,
                            ml->url);
    if (ml->url) {
        ngx_plinth_xml_lit(&x, "<EncodingType>url</EncodingType>");
    }
    ngx_plinth_xml_elem_int(&x, "MaxUploads", ml->max);
    ngx_plinth_xml_lit(&x, truncated ? "<IsTruncated>true</IsTruncated>"
                                     : "<IsTruncated>false</IsTruncated>");

    for (i = 0; i < shown; i++) {
        if (PQgetvalue(res, i, 2)[0] == 't') {
            continue;
        }

        owner.data = (u_char *) PQgetvalue(res, i, 4);
        owner.len = PQgetlength(res, i, 4);

        ngx_plinth_xml_lit(&x, "<Upload>");
        ngx_plinth_xml_elem_url(&x, "Key", (u_char *) PQgetvalue(res, i, 0),
                                PQgetlength(res, i, 0), ml->url);
        ngx_plinth_xml_elem(&x, "UploadId", (u_char *) PQgetvalue(res, i, 1),
                            PQgetlength(res, i, 1));
        ngx_http_plinth_mpu_owner(&x, "Initiator", &owner);
        ngx_http_plinth_mpu_owner(&x, "Owner", &owner);
        ngx_plinth_xml_elem(&x, "StorageClass",
                            (u_char *) PQgetvalue(res, i, 5),
                            PQgetlength(res, i, 5));
        ngx_plinth_xml_elem(&x, "Initiated", (u_char *) PQgetvalue(res, i, 3),
                            PQgetlength(res, i, 3));
        ngx_plinth_xml_lit(&x, "</Upload>");
    }

    for (i = 0; i < shown; i++) {
        if (PQgetvalue(res, i, 2)[0] != 't') {
            continue;
        }

        ngx_plinth_xml_lit(&x, "<CommonPrefixes>");
        ngx_plinth_xml_elem_url(&x, "Prefix",
                                (u_char *) PQgetvalue(res, i, 0),
                                PQgetlength(res, i, 0), ml->url);
        ngx_plinth_xml_lit(&x, "</CommonPrefixes>");
    }

    ngx_plinth_xml_lit(&x, "</ListMultipartUploadsResult>");

    ngx_http_plinth_send_xml(r, &x);
}


static void
ngx_http_plinth_mpu_owner(ngx_plinth_xml_t *x, const char *name,
    ngx_str_t *id)
{
    ngx_plinth_xml_lit(x, "<");
    ngx_plinth_xml_lit(x, name);
    ngx_plinth_xml_lit(x, ">");
    ngx_plinth_xml_elem(x, "ID", id->data, id->len);
    ngx_plinth_xml_elem(x, "DisplayName", id->data, id->len);
    ngx_plinth_xml_lit(x, "</");
    ngx_plinth_xml_lit(x, name);
    ngx_plinth_xml_lit(x, ">");
}
