/*
 * S3 front door: request ids, path-style addressing, the routing table,
 * validation of bucket names and keys, and S3 error documents.
 *
 * Every response of the module carries x-amz-request-id. Every error is an
 * S3 XML document (Code, Message, Resource, RequestId) with S3's status,
 * produced by ngx_http_plinth_error() from one table. SQL lives here too,
 * as the table of prepared statements every pool connection prepares.
 */

#include "ngx_plinth.h"


typedef struct {
    const char                   *code;
    ngx_uint_t                    status;
    const char                   *message;
} ngx_http_plinth_err_t;


static ngx_int_t ngx_http_plinth_parse_path(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
static const ngx_http_plinth_route_t *ngx_http_plinth_route(
    ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx);
static ngx_int_t ngx_http_plinth_valid_bucket(ngx_str_t *name);
static ngx_int_t ngx_http_plinth_virtual_host(ngx_http_request_t *r,
    ngx_str_t *bucket);
static ngx_int_t ngx_http_plinth_valid_utf8(ngx_str_t *s);
static ngx_uint_t ngx_http_plinth_pg_sqlstate(PGresult *res);


/* one row per ngx_plinth_err_e, by name: the order does not matter */
static ngx_http_plinth_err_t  ngx_http_plinth_errors[NGX_PLINTH_ERR_MAX] = {
    [NGX_PLINTH_ERR_ACCESS_DENIED] =
        { "AccessDenied", NGX_HTTP_FORBIDDEN, "Access Denied" },
    [NGX_PLINTH_ERR_BAD_DIGEST] =
        { "BadDigest", NGX_HTTP_BAD_REQUEST,
          "The Content-MD5 you specified did not match what we received." },
    [NGX_PLINTH_ERR_BUCKET_EXISTS] =
        { "BucketAlreadyExists", NGX_HTTP_CONFLICT,
          "The requested bucket name is not available." },
    [NGX_PLINTH_ERR_BUCKET_OWNED] =
        { "BucketAlreadyOwnedByYou", NGX_HTTP_CONFLICT,
          "Your previous request to create the named bucket succeeded and you "
          "already own it." },
    [NGX_PLINTH_ERR_BUCKET_NOT_EMPTY] =
        { "BucketNotEmpty", NGX_HTTP_CONFLICT,
          "The bucket you tried to delete is not empty" },
    [NGX_PLINTH_ERR_ENTITY_TOO_LARGE] =
        { "EntityTooLarge", NGX_HTTP_BAD_REQUEST,
          "Your proposed upload exceeds the maximum allowed object size." },
    [NGX_PLINTH_ERR_INTERNAL] =
        { "InternalError", NGX_HTTP_INTERNAL_SERVER_ERROR,
          "We encountered an internal error. Please try again." },
    [NGX_PLINTH_ERR_INVALID_ARGUMENT] =
        { "InvalidArgument", NGX_HTTP_BAD_REQUEST, "Invalid Argument" },
    [NGX_PLINTH_ERR_INVALID_BUCKET_NAME] =
        { "InvalidBucketName", NGX_HTTP_BAD_REQUEST,
          "The specified bucket is not valid." },
    [NGX_PLINTH_ERR_INVALID_DIGEST] =
        { "InvalidDigest", NGX_HTTP_BAD_REQUEST,
          "The Content-MD5 you specified is not valid." },
    [NGX_PLINTH_ERR_INVALID_RANGE] =
        { "InvalidRange", 416, "The requested range is not satisfiable" },
    [NGX_PLINTH_ERR_INVALID_REQUEST] =
        { "InvalidRequest", NGX_HTTP_BAD_REQUEST, "Invalid Request" },
    [NGX_PLINTH_ERR_KEY_TOO_LONG] =
        { "KeyTooLongError", NGX_HTTP_BAD_REQUEST, "Your key is too long" },
    [NGX_PLINTH_ERR_METADATA_TOO_LARGE] =
        { "MetadataTooLarge", NGX_HTTP_BAD_REQUEST,
          "Your metadata headers exceed the maximum allowed metadata size." },
    [NGX_PLINTH_ERR_METHOD_NOT_ALLOWED] =
        { "MethodNotAllowed", NGX_HTTP_NOT_ALLOWED,
          "The specified method is not allowed against this resource." },
    [NGX_PLINTH_ERR_MISSING_CONTENT_LENGTH] =
        { "MissingContentLength", 411,
          "You must provide the Content-Length HTTP header." },
    [NGX_PLINTH_ERR_NO_SUCH_BUCKET] =
        { "NoSuchBucket", NGX_HTTP_NOT_FOUND,
          "The specified bucket does not exist" },
    [NGX_PLINTH_ERR_NO_SUCH_KEY] =
        { "NoSuchKey", NGX_HTTP_NOT_FOUND, "The specified key does not exist." },
    [NGX_PLINTH_ERR_NOT_IMPLEMENTED] =
        { "NotImplemented", NGX_HTTP_NOT_IMPLEMENTED,
          "A header or query you provided implies functionality that is not "
          "implemented." },
    [NGX_PLINTH_ERR_SERVICE_UNAVAILABLE] =
        { "ServiceUnavailable", NGX_HTTP_SERVICE_UNAVAILABLE,
          "Service is unable to handle request." },
    [NGX_PLINTH_ERR_SLOW_DOWN] =
        { "SlowDown", NGX_HTTP_SERVICE_UNAVAILABLE,
          "Please reduce your request rate." },
    [NGX_PLINTH_ERR_SIGNATURE] =
        { "SignatureDoesNotMatch", NGX_HTTP_FORBIDDEN,
          "The request signature we calculated does not match the "
          "signature you provided." },
    [NGX_PLINTH_ERR_AUTH_MALFORMED] =
        { "AuthorizationHeaderMalformed", NGX_HTTP_BAD_REQUEST,
          "The authorization header is malformed." },
    [NGX_PLINTH_ERR_AUTH_QUERY] =
        { "AuthorizationQueryParametersError", NGX_HTTP_BAD_REQUEST,
          "Error parsing the X-Amz-Credential parameter." },
    [NGX_PLINTH_ERR_TIME_SKEWED] =
        { "RequestTimeTooSkewed", NGX_HTTP_FORBIDDEN,
          "The difference between the request time and the current time "
          "is too large." },
    [NGX_PLINTH_ERR_INVALID_URI] =
        { "InvalidURI", NGX_HTTP_BAD_REQUEST, "Couldn't parse the specified URI." },
    [NGX_PLINTH_ERR_INVALID_ACCESS_KEY] =
        { "InvalidAccessKeyId", NGX_HTTP_FORBIDDEN,
          "The AWS access key Id you provided does not exist in our "
          "records." },
    [NGX_PLINTH_ERR_NO_SUCH_UPLOAD] =
        { "NoSuchUpload", NGX_HTTP_NOT_FOUND,
          "The specified upload does not exist. The upload ID may be "
          "invalid, or the upload may have been aborted or completed." },
    [NGX_PLINTH_ERR_INVALID_PART] =
        { "InvalidPart", NGX_HTTP_BAD_REQUEST,
          "One or more of the specified parts could not be found. The part "
          "may not have been uploaded, or the specified entity tag may not "
          "match the part's entity tag." },
    [NGX_PLINTH_ERR_INVALID_PART_ORDER] =
        { "InvalidPartOrder", NGX_HTTP_BAD_REQUEST,
          "The list of parts was not in ascending order. Parts must be "
          "ordered by part number." },
    [NGX_PLINTH_ERR_ENTITY_TOO_SMALL] =
        { "EntityTooSmall", NGX_HTTP_BAD_REQUEST,
          "Your proposed upload is smaller than the minimum allowed object "
          "size." },
    [NGX_PLINTH_ERR_MALFORMED_XML] =
        { "MalformedXML", NGX_HTTP_BAD_REQUEST,
          "The XML you provided was not well-formed or did not validate "
          "against our published schema." },
    [NGX_PLINTH_ERR_INVALID_PART_NUMBER] =
        { "InvalidPartNumber", 416,
          "The requested partnumber is not satisfiable" },
    [NGX_PLINTH_ERR_NO_SUCH_VERSION] =
        { "NoSuchVersion", NGX_HTTP_NOT_FOUND,
          "The specified version does not exist." },
    [NGX_PLINTH_ERR_PRECONDITION_FAILED] =
        { "PreconditionFailed", NGX_HTTP_PRECONDITION_FAILED,
          "At least one of the pre-conditions you specified did not "
          "hold" },
    [NGX_PLINTH_ERR_INCOMPLETE_BODY] =
        { "IncompleteBody", NGX_HTTP_BAD_REQUEST,
          "You did not provide the number of bytes specified by the "
          "Content-Length HTTP header." },
    [NGX_PLINTH_ERR_INVALID_STORAGE_CLASS] =
        { "InvalidStorageClass", NGX_HTTP_BAD_REQUEST,
          "The storage class you specified is not valid" },
    [NGX_PLINTH_ERR_NO_SUCH_LIFECYCLE] =
        { "NoSuchLifecycleConfiguration", NGX_HTTP_NOT_FOUND,
          "The lifecycle configuration does not exist" },
    [NGX_PLINTH_ERR_SHA256_MISMATCH] =
        { "XAmzContentSHA256Mismatch", NGX_HTTP_BAD_REQUEST,
          "The provided 'x-amz-content-sha256' header does not match what "
          "was computed." },
};


/*
 * The routing table: the first row whose method, shape (bucket, key) and
 * subresource match wins, so rows with a subresource come before the plain
 * row of the same method and shape. A new operation is one row here and a
 * handler.
 */
static ngx_http_plinth_route_t  ngx_http_plinth_routes[] = {
    /* the admin API (ngx_plinth_admin.c): paths of their own, below */
    { NGX_PLINTH_OP_ADMIN_COST, "AdminGetCost", NGX_HTTP_GET, 0, 0, NULL,
      ngx_http_plinth_admin_cost },
    { NGX_PLINTH_OP_ADMIN_ACCESS, "AdminGetAccess", NGX_HTTP_GET, 0, 0, NULL,
      ngx_http_plinth_admin_access },
    { NGX_PLINTH_OP_GET_BUCKET_ACL, "GetBucketAcl", NGX_HTTP_GET, 1, 0,
      "acl", ngx_http_plinth_get_acl },
    { NGX_PLINTH_OP_PUT_BUCKET_ACL, "PutBucketAcl", NGX_HTTP_PUT, 1, 0,
      "acl", ngx_http_plinth_put_acl },
    { NGX_PLINTH_OP_GET_OBJECT_ACL, "GetObjectAcl", NGX_HTTP_GET, 1, 1,
      "acl", ngx_http_plinth_get_acl },
    { NGX_PLINTH_OP_PUT_OBJECT_ACL, "PutObjectAcl", NGX_HTTP_PUT, 1, 1,
      "acl", ngx_http_plinth_put_acl },
    { NGX_PLINTH_OP_GET_OBJECT_TAGGING, "GetObjectTagging", NGX_HTTP_GET,
      1, 1, "tagging", ngx_http_plinth_get_object_tagging },
    { NGX_PLINTH_OP_GET_BUCKET_VERSIONING, "GetBucketVersioning",
      NGX_HTTP_GET, 1, 0, "versioning",
      ngx_http_plinth_get_bucket_versioning },
    { NGX_PLINTH_OP_PUT_BUCKET_VERSIONING, "PutBucketVersioning",
      NGX_HTTP_PUT, 1, 0, "versioning",
      ngx_http_plinth_put_bucket_versioning },
    { NGX_PLINTH_OP_GET_BUCKET_LIFECYCLE,
      "GetBucketLifecycleConfiguration", NGX_HTTP_GET, 1, 0, "lifecycle",
      ngx_http_plinth_get_bucket_lifecycle },
    { NGX_PLINTH_OP_PUT_BUCKET_LIFECYCLE,
      "PutBucketLifecycleConfiguration", NGX_HTTP_PUT, 1, 0, "lifecycle",
      ngx_http_plinth_put_bucket_lifecycle },
    { NGX_PLINTH_OP_DELETE_BUCKET_LIFECYCLE, "DeleteBucketLifecycle",
      NGX_HTTP_DELETE, 1, 0, "lifecycle",
      ngx_http_plinth_delete_bucket_lifecycle },
    { NGX_PLINTH_OP_LIST_OBJECT_VERSIONS, "ListObjectVersions",
      NGX_HTTP_GET, 1, 0, "versions",
      ngx_http_plinth_list_object_versions },
    { NGX_PLINTH_OP_LIST_BUCKETS, "ListBuckets", NGX_HTTP_GET, 0, 0, NULL,
      ngx_http_plinth_list_buckets },
    { NGX_PLINTH_OP_GET_BUCKET_LOCATION, "GetBucketLocation", NGX_HTTP_GET,
      1, 0, "location", ngx_http_plinth_get_bucket_location },
    { NGX_PLINTH_OP_LIST_MULTIPART_UPLOADS, "ListMultipartUploads",
      NGX_HTTP_GET, 1, 0, "uploads", ngx_http_plinth_list_multipart_uploads },
    { NGX_PLINTH_OP_LIST_OBJECTS_V2, "ListObjectsV2", NGX_HTTP_GET, 1, 0,
      "list-type", ngx_http_plinth_list_objects },
    { NGX_PLINTH_OP_LIST_OBJECTS, "ListObjects", NGX_HTTP_GET, 1, 0, NULL,
      ngx_http_plinth_list_objects },
    { NGX_PLINTH_OP_CREATE_BUCKET, "CreateBucket", NGX_HTTP_PUT, 1, 0, NULL,
      ngx_http_plinth_create_bucket },
    { NGX_PLINTH_OP_DELETE_BUCKET, "DeleteBucket", NGX_HTTP_DELETE, 1, 0,
      NULL, ngx_http_plinth_delete_bucket },
    { NGX_PLINTH_OP_HEAD_BUCKET, "HeadBucket", NGX_HTTP_HEAD, 1, 0, NULL,
      ngx_http_plinth_head_bucket },
    { NGX_PLINTH_OP_DELETE_OBJECTS, "DeleteObjects", NGX_HTTP_POST, 1, 0,
      "delete", ngx_http_plinth_delete_objects },
    { NGX_PLINTH_OP_BATCH_GET, "GetBatch", NGX_HTTP_POST, 1, 0,
      "batch", ngx_http_plinth_batch_get },
    { NGX_PLINTH_OP_CREATE_MULTIPART_UPLOAD, "CreateMultipartUpload",
      NGX_HTTP_POST, 1, 1, "uploads",
      ngx_http_plinth_create_multipart_upload },
    { NGX_PLINTH_OP_COMPLETE_MULTIPART_UPLOAD, "CompleteMultipartUpload",
      NGX_HTTP_POST, 1, 1, "uploadId",
      ngx_http_plinth_complete_multipart_upload },
    { NGX_PLINTH_OP_UPLOAD_PART, "UploadPart", NGX_HTTP_PUT, 1, 1,
      "uploadId", ngx_http_plinth_upload_part },
    { NGX_PLINTH_OP_LIST_PARTS, "ListParts", NGX_HTTP_GET, 1, 1, "uploadId",
      ngx_http_plinth_list_parts },
    { NGX_PLINTH_OP_ABORT_MULTIPART_UPLOAD, "AbortMultipartUpload",
      NGX_HTTP_DELETE, 1, 1, "uploadId",
      ngx_http_plinth_abort_multipart_upload },
    { NGX_PLINTH_OP_PUT_OBJECT, "PutObject", NGX_HTTP_PUT, 1, 1, NULL,
      ngx_http_plinth_put_object },
    { NGX_PLINTH_OP_GET_OBJECT, "GetObject", NGX_HTTP_GET, 1, 1, NULL,
      ngx_http_plinth_get_object },
    { NGX_PLINTH_OP_HEAD_OBJECT, "HeadObject", NGX_HTTP_HEAD, 1, 1, NULL,
      ngx_http_plinth_get_object },
    { NGX_PLINTH_OP_DELETE_OBJECT, "DeleteObject", NGX_HTTP_DELETE, 1, 1,
      NULL, ngx_http_plinth_delete_object },
    { NGX_PLINTH_OP_NONE, NULL, 0, 0, 0, NULL, NULL }
};


/*
 * Routes addressed by a fixed path instead of bucket and key: the admin
 * API. Path-style requests only; every other key of a bucket named
 * "admin" is untouched (and these paths stay reachable virtual-hosted).
 */
static const struct {
    ngx_plinth_op_e              op;
    const char                  *path;
} ngx_http_plinth_admin_paths[] = {
    { NGX_PLINTH_OP_ADMIN_COST, "/admin/v1/cost" },
    { NGX_PLINTH_OP_ADMIN_ACCESS, "/admin/v1/access" },
    { NGX_PLINTH_OP_NONE, NULL }
};


static const char *
ngx_http_plinth_route_path(ngx_plinth_op_e op)
{
    ngx_uint_t  i;

    for (i = 0; ngx_http_plinth_admin_paths[i].path; i++) {
        if (ngx_http_plinth_admin_paths[i].op == op) {
            return ngx_http_plinth_admin_paths[i].path;
        }
    }

    return NULL;
}


/* The S3 name of an operation (metrics), from the routing table. */
const char *
ngx_http_plinth_op_name(ngx_uint_t op)
{
    ngx_http_plinth_route_t  *rt;

    for (rt = ngx_http_plinth_routes; rt->handler; rt++) {
        if ((ngx_uint_t) rt->op == op) {
            return rt->name;
        }
    }

    return "unknown";
}


/* Subresources this version does not serve: 501, never a wrong answer. */
static const char  *ngx_http_plinth_unsupported[] = {
    "tagging",
    "policy", "cors", "website", "logging", "notification",
    "replication", "encryption", "object-lock", "retention", "legal-hold",
    "torrent", "restore", "select", "accelerate", "analytics",
    "intelligent-tiering", "inventory", "metrics", "ownershipControls",
    "publicAccessBlock", "requestPayment", "attributes", "policyStatus",
    NULL
};


#define NGX_PLINTH_ISO8601                                                   \
    "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* one row per NGX_PLINTH_SQL_*, by name: the order does not matter */
/*
 * The columns both GET statements answer: the first nine by position (see
 * ngx_http_plinth_get_done), the rest by name. x-amz-checksum-mode reads
 * cks_*; versioning vid and versioned.
 */
#define NGX_PLINTH_SQL_GET_COLUMNS                                            \
    "SELECT o.deleted, v.version_id, replace(v.blob_id::text, '-', ''), "     \
    "v.size, v.etag, v.content_type, v.meta, "                                \
    "array_to_string(v.nodes, ','), extract(epoch FROM v.ts)::bigint, "       \
    "b.owner_id, b.acl AS bucket_acl, v.acl AS object_acl, "                  \
    "v.parts AS mp_parts, v.checksum_alg AS cks_alg, v.checksum AS cks, "     \
    "v.checksum_type AS cks_type, "                                           \
    "b.versioning <> 'Unversioned' AS versioned, "                            \
    "coalesce(v.vid, 'null') AS vid, v.storage_class AS sclass"


const ngx_plinth_pg_stmt_t  ngx_http_plinth_stmts[NGX_PLINTH_SQL_MAX] = {
    [NGX_PLINTH_SQL_BUCKET_CREATE] =
    { "plinth_bucket_create",
      "SELECT plinth_bucket_create_c($1, $2, $3, $4)", 4 },
    [NGX_PLINTH_SQL_BUCKET_DELETE] =
    { "plinth_bucket_delete", "SELECT plinth_bucket_delete($1, $2)", 2 },
    [NGX_PLINTH_SQL_BUCKET_HEAD] =
    { "plinth_bucket_head",
      "SELECT owner_id, acl FROM buckets WHERE name = $1", 1 },
    [NGX_PLINTH_SQL_BUCKET_LIST] =
    { "plinth_bucket_list",
      "SELECT name, to_char(created_at AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM buckets "
      "WHERE owner_id = $1 ORDER BY name", 1 },
    [NGX_PLINTH_SQL_PUT_BEGIN] =
    { "plinth_put_begin",
      "SELECT version_id, blob_id, vid, versioned, storage_class FROM "
      "plinth_put_begin_c($1, $2, $3, $4, $5, $6, $7, $8, $9)", 9 },
    [NGX_PLINTH_SQL_PUT_COMMIT] =
    { "plinth_put_commit",
      "SELECT plinth_put_commit($1, $2::integer[], $3::boolean, $4, $5, $6, "
      "$7::bigint[], $8::integer[])", 8 },
    [NGX_PLINTH_SQL_PUT_ABORT] =
    { "plinth_put_abort", "SELECT plinth_put_abort($1, $2::integer[])", 2 },
    [NGX_PLINTH_SQL_PUT_ADD_NODE] =
    { "plinth_put_add_node",
      "SELECT plinth_put_add_nodes($1::bigint[], $2::integer[], true)", 2 },
    [NGX_PLINTH_SQL_GET] =
    { "plinth_get",
      NGX_PLINTH_SQL_GET_COLUMNS ", "
      /* multipart: one row per segment of each part, found by name */
      "vp.part_number AS seg_part, "
      "replace(vp.blob_id::text, '-', '') AS seg_blob, "
      "vp.part_offset AS seg_offset, vp.size AS seg_size, "
      "vp.blob_offset AS seg_blob_offset, "
      "array_to_string(vp.nodes, ',') AS seg_nodes, "
      /* x-amz-checksum-mode with partNumber: the part's */
      "vp.checksum_alg AS seg_cks_alg, vp.checksum AS seg_cks "
      "FROM buckets b "
      /* versioning: the version served, by S3 id ($3: NULL, the current) */
      "LEFT JOIN LATERAL ("
      "(SELECT o.version_id, o.deleted FROM objects o "
      "WHERE $3::text IS NULL AND o.bucket_id = b.bucket_id AND o.key = $2) "
      "UNION ALL "
      "(SELECT x.version_id, x.delete_marker FROM versions x "
      "WHERE $3::text IS NOT NULL AND x.bucket_id = b.bucket_id "
      "AND x.key = $2 AND x.state = 'committed' "
      "AND CASE WHEN $3 = 'null' THEN x.vid IS NULL ELSE x.vid = $3 END "
      "AND NOT (x.delete_marker AND b.versioning = 'Unversioned') "
      "ORDER BY x.ts DESC, x.version_id DESC LIMIT 1)) o ON true "
      "LEFT JOIN versions v ON v.version_id = o.version_id "
      "LEFT JOIN version_parts vp ON vp.version_id = v.version_id "
      "WHERE b.name = $1 ORDER BY vp.part_number, vp.seg", 3 },
    /*
     * GET and HEAD without a version id, the common case, in the plan
     * PostgreSQL starts fastest: no version branch, no parts join and no
     * sort. NGX_PLINTH_SQL_GET's columns without the seg_* ones; a
     * multipart version (mp_parts not NULL) is asked again with
     * NGX_PLINTH_SQL_GET for its segments. Measured: executor start-up
     * was 35% of PostgreSQL's CPU per GET.
     */
    [NGX_PLINTH_SQL_GET_CURRENT] =
    { "plinth_get_current",
      NGX_PLINTH_SQL_GET_COLUMNS " "
      "FROM buckets b "
      "LEFT JOIN objects o ON o.bucket_id = b.bucket_id AND o.key = $2 "
      "LEFT JOIN versions v ON v.version_id = o.version_id "
      "WHERE b.name = $1", 2 },
    /*
     * Many GETs' and HEADs' lookups in one statement (ngx_plinth_getq.c):
     * NGX_PLINTH_SQL_GET_CURRENT's columns for each (bucket, key) of the
     * two arrays, one row each, idx its place in them (from 1); found is
     * false where the bucket does not exist (the one-key statement has no
     * row then). Each lookup is a lateral subquery (OFFSET 0: never
     * flattened), so every entry is three index lookups whatever the
     * statistics say: as plain joins, a plan made while the objects table
     * looked small scanned a bucket's objects for every key (PostgreSQL's
     * CPU per GET doubled), and one made with few buckets hashed the whole
     * buckets table. The arrays come through subqueries so that no plan
     * knows their length: with it, every execution was planned anew (a
     * custom plan for 2 rows looks cheaper than the generic one for 10),
     * about 1 ms each. pgbench, one client: 0.104 ms for the one-key
     * statement, 0.112 for this one with one key, 0.116 with two, 0.119
     * with four, 0.153 with eight.
     */
    [NGX_PLINTH_SQL_GET_CURRENT_N] =
    { "plinth_get_current_n",
      "SELECT ov.deleted, ov.version_id, replace(ov.blob_id::text, '-', ''), "
      "ov.size, ov.etag, ov.content_type, ov.meta, "
      "array_to_string(ov.nodes, ','), extract(epoch FROM ov.ts)::bigint, "
      "b.owner_id, b.acl AS bucket_acl, ov.acl AS object_acl, "
      "ov.parts AS mp_parts, ov.checksum_alg AS cks_alg, ov.checksum AS cks, "
      "ov.checksum_type AS cks_type, "
      "b.versioning <> 'Unversioned' AS versioned, "
      "coalesce(ov.vid, 'null') AS vid, ov.storage_class AS sclass, "
      "e.i AS idx, b.bucket_id IS NOT NULL AS found "
      "FROM unnest((SELECT $1::text[]), (SELECT $2::text[])) "
      "WITH ORDINALITY AS e(bucket, key, i) "
      "LEFT JOIN LATERAL (SELECT x.bucket_id, x.owner_id, x.acl, "
      "x.versioning FROM buckets x WHERE x.name = e.bucket OFFSET 0) b "
      "ON true "
      "LEFT JOIN LATERAL (SELECT x.deleted, y.* FROM objects x "
      "LEFT JOIN versions y ON y.version_id = x.version_id "
      "WHERE x.bucket_id = b.bucket_id AND x.key = e.key OFFSET 0) ov "
      "ON true", 2 },
    [NGX_PLINTH_SQL_BATCH_GET] =
    { "plinth_batch_get",
      "SELECT idx, code, vid, blob, size, etag, nodes, mtime, mp_parts, "
      "seg_part, seg_blob, seg_offset, seg_size, seg_blob_offset, seg_nodes "
      "FROM plinth_batch_get($1, $2::text[], $3::text[], $4::text[])", 4 },
    /* sql/026, 027: the same for a batch that names no version */
    [NGX_PLINTH_SQL_BATCH_GET_CURRENT] =
    { "plinth_batch_get_current",
      "SELECT idx, code, vid, blob, size, etag, nodes, mtime, mp_parts, "
      "seg_part, seg_blob, seg_offset, seg_size, seg_blob_offset, seg_nodes "
      "FROM plinth_batch_get_current($1, $2::text[], $3::text[])", 3 },
    [NGX_PLINTH_SQL_DELETE] =
    { "plinth_delete",
      "SELECT version_id, delete_marker, versioned "
      "FROM plinth_delete_version($1, $2, $3, $4, $5)", 5 },
    [NGX_PLINTH_SQL_LIST] =
    { "plinth_list",
      /* sql/022: one statement a page without a delimiter */
      "SELECT key, is_prefix, size, etag, last_modified, storage_class "
      "FROM plinth_list_page($1, $2, $3, $4, $5, $6, $7)", 7 },
    /*
     * sql/022: a page with neither delimiter nor a common prefix to step
     * past, as one plain statement (no PL/pgSQL call a page): the keys of
     * the prefix ($3) after $4 in one index range scan. key > $4 AND
     * key >= $3 is plinth_list's start; the prefix's successor ends the
     * scan where the prefix does. The bucket check runs first, in a
     * subquery of its own (OFFSET 0: not flattened), whatever plan the
     * page gets. _FROM: no prefix, no upper bound.
     */
    [NGX_PLINTH_SQL_LIST_RANGE] =
    { "plinth_list_range",
      "SELECT p.* FROM (SELECT plinth_bucket_readable($1, $2) AS bid "
      "OFFSET 0) b CROSS JOIN LATERAL ("
      "SELECT o.key, false AS is_prefix, o.size, o.etag, "
      "to_char(o.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
      "coalesce(v.storage_class, 'STANDARD') "
      "FROM objects o LEFT JOIN versions v ON v.version_id = o.version_id "
      "AND v.storage_class <> 'STANDARD' "
      "WHERE o.bucket_id = b.bid "
      "AND o.key > $4::text COLLATE \"C\" AND o.key >= $3::text COLLATE \"C\" "
      "AND o.key < plinth_prefix_successor($3) COLLATE \"C\" "
      "AND NOT o.deleted ORDER BY o.key LIMIT $5::integer + 1) p "
      "ORDER BY p.key", 5 },
    [NGX_PLINTH_SQL_LIST_FROM] =
    { "plinth_list_from",
      "SELECT p.* FROM (SELECT plinth_bucket_readable($1, $2) AS bid "
      "OFFSET 0) b CROSS JOIN LATERAL ("
      "SELECT o.key, false AS is_prefix, o.size, o.etag, "
      "to_char(o.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
      "coalesce(v.storage_class, 'STANDARD') "
      "FROM objects o LEFT JOIN versions v ON v.version_id = o.version_id "
      "AND v.storage_class <> 'STANDARD' "
      "WHERE o.bucket_id = b.bid AND o.key > $3::text COLLATE \"C\" "
      "AND NOT o.deleted ORDER BY o.key LIMIT $4::integer + 1) p "
      "ORDER BY p.key", 4 },
    [NGX_PLINTH_SQL_DELETE_OBJECTS] =
    { "plinth_delete_objects",
      "SELECT key, vid, code, message, delete_marker, marker_vid "
      "FROM plinth_delete_objects($1, $2, $3::text[], $4::text[])", 4 },
    [NGX_PLINTH_SQL_COPY_OBJECT] =
    { "plinth_copy_object",
      "SELECT etag, last_modified, vid, versioned, src_vid "
      "FROM plinth_copy_object_c($1, $2, $3, $4, "
      "$5, $6::boolean, $7, $8, $9, $10, $11, to_timestamp($12::bigint), "
      "to_timestamp($13::bigint), $14, $15)", 15 },
    [NGX_PLINTH_SQL_BUCKET_ACL] =
    { "plinth_bucket_acl",
      "SELECT owner_id, display_name, acl FROM plinth_bucket_acl($1, $2)",
      2 },
    [NGX_PLINTH_SQL_OBJECT_ACL] =
    { "plinth_object_acl",
      "SELECT owner_id, display_name, acl FROM plinth_object_acl($1, $2, $3)",
      3 },
    [NGX_PLINTH_SQL_SET_BUCKET_ACL] =
    { "plinth_set_bucket_acl", "SELECT plinth_set_bucket_acl($1, $2, $3)",
      3 },
    [NGX_PLINTH_SQL_SET_OBJECT_ACL] =
    { "plinth_set_object_acl",
      "SELECT plinth_set_object_acl($1, $2, $3, $4)", 4 },
    [NGX_PLINTH_SQL_BUCKET_VERSIONING] =
    { "plinth_bucket_versioning",
      "SELECT plinth_bucket_versioning($1, $2)", 2 },
    [NGX_PLINTH_SQL_SET_BUCKET_VERSIONING] =
    { "plinth_set_bucket_versioning",
      "SELECT plinth_set_bucket_versioning($1, $2, $3)", 3 },
    [NGX_PLINTH_SQL_LIST_VERSIONS] =
    { "plinth_list_versions",
      "SELECT key, version_id, is_prefix, is_latest, delete_marker, size, "
      "etag, to_char(last_modified AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), owner_id, "
      "CASE WHEN is_prefix OR delete_marker THEN NULL ELSE "
      "coalesce((SELECT x.storage_class FROM versions x "
      "JOIN buckets k ON k.bucket_id = x.bucket_id WHERE k.name = $1 "
      "AND x.key = l.key AND x.state = 'committed' "
      "AND coalesce(x.vid, 'null') = l.version_id "
      "ORDER BY x.ts DESC, x.version_id DESC LIMIT 1), 'STANDARD') END "
      "FROM plinth_list_versions($1, $2, $3, $4, $5, $6, $7::integer) l", 7 },
    [NGX_PLINTH_SQL_ACCESS_KEY] =
    { "plinth_access_key",
      "SELECT k.secret_key, k.user_id, u.display_name FROM access_keys k "
      "JOIN users u USING (user_id) "
      "WHERE k.access_key_id = $1 AND k.status = 'active'", 1 },
    [NGX_PLINTH_SQL_MPU_CREATE] =
    { "plinth_mpu_create",
      "SELECT plinth_mpu_create_c($1, $2, $3, $4, $5, $6, $7, $8)", 8 },
    [NGX_PLINTH_SQL_PART_BEGIN] =
    { "plinth_part_begin",
      "SELECT plinth_part_begin($1, $2, $3, $4), (SELECT u.storage_class "
      "FROM uploads u WHERE u.upload_id = $3)", 4 },
    [NGX_PLINTH_SQL_PART_COMMIT] =
    { "plinth_part_commit",
      "SELECT plinth_part_commit($1, $2::integer, $3::uuid, $4::bigint, $5, "
      "$6::integer[], $7, $8)", 8 },
    [NGX_PLINTH_SQL_PART_ABORT] =
    { "plinth_part_abort",
      "SELECT plinth_part_abort($1::uuid, $2::integer[])", 2 },
    [NGX_PLINTH_SQL_PART_ADD_NODE] =
    { "plinth_part_add_node",
      "SELECT plinth_part_add_node($1::uuid, $2::integer)", 2 },
    [NGX_PLINTH_SQL_MPU_COMPLETE] =
    { "plinth_mpu_complete",
      "SELECT etag, vid, versioned FROM plinth_mpu_complete_c($1, $2, $3, "
      "$4::integer[], $5::text[], $6, $7::boolean, $8, $9, $10, $11)", 11 },
    [NGX_PLINTH_SQL_MPU_ABORT] =
    { "plinth_mpu_abort", "SELECT plinth_mpu_abort($1, $2, $3, $4)", 4 },
    [NGX_PLINTH_SQL_LIST_PARTS] =
    { "plinth_list_parts",
      "SELECT part_number, etag, size, to_char(uploaded AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), owner_id, "
      "(SELECT u.storage_class FROM uploads u WHERE u.upload_id = $3) "
      "FROM plinth_list_parts($1, $2, $3, $4, $5::integer, $6::integer)", 6 },
    [NGX_PLINTH_SQL_LIST_UPLOADS] =
    { "plinth_list_uploads",
      "SELECT key, upload_id, is_prefix, to_char(initiated AT TIME ZONE "
      "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), owner_id, "
      "coalesce((SELECT u.storage_class FROM uploads u "
      "WHERE u.upload_id = l.upload_id), 'STANDARD') "
      "FROM plinth_list_uploads($1, $2, $3, $4, $5, $6, $7::integer) l", 7 },
    [NGX_PLINTH_SQL_MPU_PART_CHECKSUMS] =
    { "plinth_mpu_part_checksums",
      "SELECT alg, type, part_number, size, checksum "
      "FROM plinth_mpu_part_checksums($1, $2, $3, $4, $5::integer[], "
      "$6::text[])", 6 },
    [NGX_PLINTH_SQL_NODE_HEALTH] =
    { "plinth_node_health",
      "SELECT node_id, status, is_full, disk_total_bytes, disk_used_bytes, "
      "to_char(last_heartbeat AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM node_health "
      "ORDER BY node_id", 0 },
    [NGX_PLINTH_SQL_NODE_AVOID] =
    { "plinth_node_avoid",
      "SELECT node_id, readable FROM plinth_node_states WHERE NOT writable "
      "ORDER BY node_id", 0 },
    [NGX_PLINTH_SQL_REPORT_BAD] =
    { "plinth_report_bad",
      "SELECT plinth_report_bad_replica($1::uuid, $2::integer, $3)", 3 },
    [NGX_PLINTH_SQL_USAGE_FLUSH] =
    { "plinth_usage_flush",
      "SELECT plinth_usage_flush($1::integer, $2::text[], $3::text[], "
      "$4::bigint[], $5::bigint[], $6::bigint[])", 6 },
    [NGX_PLINTH_SQL_ADMIN_COST] =
    { "plinth_admin_cost",
      "SELECT plinth_admin_cost($1, $2, $3::integer)", 3 },
    [NGX_PLINTH_SQL_ADMIN_ACCESS] =
    { "plinth_admin_access",
      "SELECT plinth_admin_access($1, $2, $3, $4::integer)", 4 },
    [NGX_PLINTH_SQL_BUCKET_OWNED] =
    { "plinth_bucket_owned", "SELECT plinth_bucket_owned($1, $2)", 2 },
    [NGX_PLINTH_SQL_GET_LIFECYCLE] =
    { "plinth_get_lifecycle", "SELECT xml FROM plinth_get_lifecycle($1, $2)",
      2 },
    [NGX_PLINTH_SQL_SET_LIFECYCLE] =
    { "plinth_set_lifecycle",
      "SELECT plinth_set_lifecycle($1, $2, $3, $4::text[], $5::text[], "
      "$6::boolean[], $7::integer[], $8::integer[], $9::integer[], "
      "$10::integer[], $11::integer[])", 11 },
    [NGX_PLINTH_SQL_DELETE_LIFECYCLE] =
    { "plinth_delete_lifecycle", "SELECT plinth_delete_lifecycle($1, $2)",
      2 },
    [NGX_PLINTH_SQL_PART_COPY] =
    { "plinth_part_copy",
      "SELECT etag, last_modified, src_vid FROM plinth_part_copy($1, $2, $3, "
      "$4::integer, $5, $6, $7, $8, $9::bigint, $10::bigint, $11, $12, "
      "to_timestamp($13::bigint), to_timestamp($14::bigint))", 14 },
};

const ngx_uint_t  ngx_http_plinth_nstmts = NGX_PLINTH_SQL_MAX;


ngx_int_t
ngx_http_plinth_s3_handler(ngx_http_request_t *r)
{
    ngx_http_plinth_ctx_t        *ctx;
    const ngx_http_plinth_route_t *route;

    if (r != r->main) {
        ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);
        /* a batch GET's entry (ngx_plinth_s3_batch.c) or a striped GET's
         * stripe (ngx_plinth_stripe.c): its reader */
        if (ctx && (ctx->kind == NGX_PLINTH_CTX_BATCH_ENTRY
                    || ctx->kind == NGX_PLINTH_CTX_STRIPE))
        {
            return ngx_http_plinth_read_child(r, ctx);
        }
        return NGX_HTTP_NOT_FOUND;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_plinth_module);

    ctx->body_error = NGX_PLINTH_ERR_MAX;
    ngx_http_plinth_request_id(r, ctx);

    /* conditional headers are S3's to evaluate (ngx_plinth_conditional.c),
     * not nginx's not-modified filter's (it would answer a PUT with 304) */
    r->disable_not_modified = 1;

    /* the handler owns this reference until ngx_http_plinth_finalize() */
    r->main->count++;

    if (ngx_http_plinth_parse_path(r, ctx) != NGX_OK) {
        return NGX_DONE;
    }

    route = ngx_http_plinth_route(r, ctx);
    if (route == NULL) {
        return NGX_DONE;
    }

    ctx->route = route;

    if (route->bucket && ngx_http_plinth_valid_bucket(&ctx->bucket) != NGX_OK)
    {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_BUCKET_NAME, NULL);
        return NGX_DONE;
    }

    if (route->key) {
        if (ctx->key.len > NGX_PLINTH_MAX_KEY_LEN) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_KEY_TOO_LONG, NULL);
            return NGX_DONE;
        }

        if (ngx_http_plinth_valid_utf8(&ctx->key) != NGX_OK) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                                  "Object key must be valid UTF-8.");
            return NGX_DONE;
        }
    }

    if ((route->op == NGX_PLINTH_OP_PUT_OBJECT
         || route->op == NGX_PLINTH_OP_UPLOAD_PART)
        && r->headers_in.content_length_n < 0 && !r->headers_in.chunked)
    {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_MISSING_CONTENT_LENGTH, NULL);
        return NGX_DONE;
    }

    if (ngx_http_plinth_authenticate(r, ctx) != NGX_OK) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    return NGX_DONE;
}


/* The caller is known (ctx->identity, or ctx->anonymous): run the route. */
ngx_int_t
ngx_http_plinth_dispatch(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    const ngx_http_plinth_route_t  *route;

    route = ctx->route;

    if (!ngx_http_plinth_op_has_body(route->op)
        && ngx_http_discard_request_body(r) != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_ERROR);
        return NGX_OK;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "plinth %s bucket:\"%V\" key:\"%V\"", route->name,
                   &ctx->bucket, &ctx->key);

    return route->handler(r, ctx);
}


/*
 * Ends the request once: rc is an HTTP status, NGX_OK after a response was
 * sent, or NGX_ERROR to drop the connection. Balances the handler's
 * r->main->count++.
 */
void
ngx_http_plinth_finalize(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_http_plinth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (ctx) {
        if (ctx->finalized) {
            return;
        }
        ctx->finalized = 1;
    }

    ngx_http_finalize_request(r, rc);
}


/* An aws-chunked body: Content-Encoding or a STREAMING-* payload hash. */
ngx_uint_t
ngx_http_plinth_aws_chunked(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_http_plinth_header_in(r, "x-amz-content-sha256");
    if (h && h->value.len >= 10
        && ngx_strncasecmp(h->value.data, (u_char *) "STREAMING-", 10) == 0)
    {
        return 1;
    }

    h = ngx_http_plinth_header_in(r, "Content-Encoding");
    if (h && ngx_strlcasestrn(h->value.data, h->value.data + h->value.len,
                              (u_char *) "aws-chunked", 11 - 1)
             != NULL)
    {
        return 1;
    }

    return 0;
}


/*
 * Virtual-hosted style: with plinth_virtual_host_suffix s3.example.com, a
 * request for Host "photos.s3.example.com" addresses bucket "photos"
 * (the port, if any, is ignored). NGX_DECLINED: path style.
 */
static ngx_int_t
ngx_http_plinth_virtual_host(ngx_http_request_t *r, ngx_str_t *bucket)
{
    u_char                       *host, *colon;
    size_t                        len;
    ngx_str_t                    *suffix;
    ngx_http_plinth_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);
    suffix = &pmcf->vhost_suffix;

    if (suffix->len == 0 || r->headers_in.host == NULL) {
        return NGX_DECLINED;
    }

    host = r->headers_in.host->value.data;
    len = r->headers_in.host->value.len;

    colon = ngx_strlchr(host, host + len, ':');
    if (colon) {
        len = colon - host;
    }

    if (len <= suffix->len + 1
        || host[len - suffix->len - 1] != '.'
        || ngx_strncasecmp(host + len - suffix->len, suffix->data,
                           suffix->len) != 0)
    {
        return NGX_DECLINED;
    }

    bucket->len = len - suffix->len - 1;
    bucket->data = ngx_pnalloc(r->pool, bucket->len);
    if (bucket->data == NULL) {
        return NGX_DECLINED;
    }

    ngx_strlow(bucket->data, host, bucket->len);

    return NGX_OK;
}


/*
 * Path-style addressing: /bucket/key. The key is taken from the raw URI
 * (percent-decoded here) so nginx's slash merging and dot-segment
 * normalization never change it: "a//b" and "a/./b" are distinct keys.
 */
static ngx_int_t
ngx_http_plinth_parse_path(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    u_char  *p, *end, *dst, *start;

    p = r->unparsed_uri.data;
    end = p + r->unparsed_uri.len;

    for (start = p; p < end && *p != '?'; p++) { /* void */ }

    end = p;
    p = start;

    if (p == end || *p != '/') {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_REQUEST,
                              "The request URI must start with a slash.");
        return NGX_ERROR;
    }

    dst = ngx_pnalloc(r->pool, end - p);
    if (dst == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    p++;
    start = dst;
    ngx_unescape_uri(&dst, &p, end - p, 0);

    /* the decoded path without its leading slash (admin API rows) */
    ctx->path.data = start;
    ctx->path.len = dst - start;

    if (ngx_http_plinth_virtual_host(r, &ctx->bucket) == NGX_OK) {
        /* virtual-hosted style: the whole path is the key */
        ctx->vhost = 1;
        ctx->key.data = start;
        ctx->key.len = dst - start;

    } else {
        ctx->bucket.data = start;

        for (p = start; p < dst && *p != '/'; p++) { /* void */ }

        ctx->bucket.len = p - start;

        if (p < dst) {
            ctx->key.data = p + 1;
            ctx->key.len = dst - (p + 1);
        }
    }

    if (ctx->key.len
        && ngx_strlchr(ctx->key.data, ctx->key.data + ctx->key.len, '\0'))
    {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                              "Object key must not hold a NUL byte.");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static const ngx_http_plinth_route_t *
ngx_http_plinth_route(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    ngx_str_t                 v;
    ngx_uint_t                i, shape_ok, unsupported;
    const char               *path;
    ngx_http_plinth_route_t  *rt;

    unsupported = 0;
    for (i = 0; ngx_http_plinth_unsupported[i]; i++) {
        if (ngx_http_plinth_arg(r, ngx_http_plinth_unsupported[i], &v)
            == NGX_OK)
        {
            unsupported = 1;
            break;
        }
    }

    /* tags are not kept: a write asking for some is refused, not ignored */
    if (ngx_http_plinth_header_in(r, "x-amz-tagging")) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_NOT_IMPLEMENTED,
                              "Object tagging is not supported.");
        return NULL;
    }

    shape_ok = 0;

    for (rt = ngx_http_plinth_routes; rt->handler; rt++) {

        path = ngx_http_plinth_route_path(rt->op);

        if (path) {
            /* the admin API: its exact path, path-style */
            if (ctx->vhost || ctx->path.len != ngx_strlen(path) - 1
                || ngx_strncmp(ctx->path.data, path + 1, ctx->path.len) != 0)
            {
                continue;
            }

            if (rt->method != r->method) {
                ngx_http_plinth_error(r, NGX_PLINTH_ERR_METHOD_NOT_ALLOWED,
                                      NULL);
                return NULL;
            }

            ctx->bucket.len = 0;
            ctx->key.len = 0;
            return rt;
        }

        if ((rt->bucket != (ctx->bucket.len != 0))
            || (rt->key != (ctx->key.len != 0)))
        {
            continue;
        }

        shape_ok = 1;

        if (rt->method != r->method) {
            continue;
        }

        if (rt->subresource
            && ngx_http_plinth_arg(r, rt->subresource, &v) != NGX_OK)
        {
            continue;
        }

        /* the rows of served subresources come first: past them, one
         * that is not served is 501, never the plain operation */
        if (rt->subresource == NULL && unsupported) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_NOT_IMPLEMENTED, NULL);
            return NULL;
        }

        if (rt->op == NGX_PLINTH_OP_LIST_OBJECTS_V2
            && (v.len != 1 || v.data[0] != '2'))
        {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                                  "Invalid list-type.");
            return NULL;
        }

        return rt;
    }

    if (shape_ok) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_METHOD_NOT_ALLOWED, NULL);
    } else {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_REQUEST,
                              "The request does not name a bucket.");
    }

    return NULL;
}


/* S3's bucket naming rules (general purpose buckets). */
static ngx_int_t
ngx_http_plinth_valid_bucket(ngx_str_t *name)
{
    u_char      c, prev;
    ngx_uint_t  i, dots, digits_only;

    if (name->len < 3 || name->len > 63) {
        return NGX_ERROR;
    }

    prev = '.';
    dots = 0;
    digits_only = 1;

    for (i = 0; i < name->len; i++) {
        c = name->data[i];

        if (c == '.') {
            if (prev == '.' || prev == '-') {
                return NGX_ERROR;
            }
            dots++;

        } else if (c == '-') {
            if (prev == '.') {
                return NGX_ERROR;
            }

        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (c >= 'a') {
                digits_only = 0;
            }

        } else {
            return NGX_ERROR;
        }

        prev = c;
    }

    c = name->data[0];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
        return NGX_ERROR;
    }

    if (!((prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9'))) {
        return NGX_ERROR;
    }

    /* formatted as an IP address, e.g. 192.168.5.4 */
    if (dots == 3 && digits_only) {
        return NGX_ERROR;
    }

    if (ngx_strncmp(name->data, "xn--", 4) == 0
        || ngx_strncmp(name->data, "sthree-", 7) == 0)
    {
        return NGX_ERROR;
    }

    if ((name->len > 8
         && ngx_strncmp(name->data + name->len - 8, "-s3alias", 8) == 0)
        || (name->len > 7
            && ngx_strncmp(name->data + name->len - 7, "--ol-s3", 7) == 0))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_plinth_valid_utf8(ngx_str_t *s)
{
    u_char    *p, *end;
    uint32_t   c;

    p = s->data;
    end = p + s->len;

    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }

        c = ngx_utf8_decode(&p, end - p);

        /* UTF-16 surrogates are not characters: PostgreSQL refuses them */
        if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* 16 upper-case hex digits: 24 bits of pid, 40 of a per-worker sequence
 * seeded from the clock and ngx_random: unique across workers and time. */
void
ngx_http_plinth_request_id(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    static uint64_t  seq;

    if (seq == 0) {
        seq = ((uint64_t) ngx_time() << 20) ^ (uint64_t) ngx_random();
    }

    seq++;

    ctx->request_id.data = ngx_pnalloc(r->pool, NGX_PLINTH_REQUEST_ID_LEN);
    if (ctx->request_id.data == NULL) {
        return;
    }

    ngx_sprintf(ctx->request_id.data, "%06XD%010XL",
                (uint32_t) (ngx_pid & 0xffffff),
                (uint64_t) (seq & 0xffffffffffULL));
    ctx->request_id.len = NGX_PLINTH_REQUEST_ID_LEN;
}


/* Query argument by exact name; a bare "?acl" has an empty value. */
ngx_int_t
ngx_http_plinth_arg(ngx_http_request_t *r, const char *name, ngx_str_t *value)
{
    size_t   len, nlen;
    u_char  *p, *end, *amp, *eq, *dst, *src, *raw;

    if (r->args.len == 0) {
        return NGX_DECLINED;
    }

    nlen = ngx_strlen(name);
    p = r->args.data;
    end = p + r->args.len;

    while (p < end) {
        amp = ngx_strlchr(p, end, '&');
        if (amp == NULL) {
            amp = end;
        }

        eq = ngx_strlchr(p, amp, '=');

        if ((size_t) ((eq ? eq : amp) - p) == nlen
            && ngx_strncmp(p, name, nlen) == 0)
        {
            if (eq == NULL) {
                value->data = (u_char *) "";
                value->len = 0;
                return NGX_OK;
            }

            /*
             * form encoding: a raw '+' is a space, then %XX is decoded
             * (so "%2B", as the SDKs send a plus, stays a '+')
             */
            len = amp - (eq + 1);
            raw = ngx_pnalloc(r->pool, 2 * len + 1);
            if (raw == NULL) {
                return NGX_ERROR;
            }

            for (p = eq + 1, src = raw; p < amp; p++) {
                *src++ = (*p == '+') ? ' ' : *p;
            }

            src = raw;
            dst = raw + len;
            value->data = dst;
            ngx_unescape_uri(&dst, &src, len, NGX_UNESCAPE_URI);
            value->len = dst - value->data;

            return NGX_OK;
        }

        p = amp + 1;
    }

    return NGX_DECLINED;
}


ngx_table_elt_t *
ngx_http_plinth_header_in(ngx_http_request_t *r, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


ngx_int_t
ngx_http_plinth_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;

    return NGX_OK;
}


/* Sends a complete response: status, optional body chain, request id. */
ngx_int_t
ngx_http_plinth_send_body(ngx_http_request_t *r, ngx_uint_t status,
    ngx_chain_t *body, const char *content_type)
{
    off_t                   len;
    ngx_int_t               rc;
    ngx_chain_t            *cl;
    ngx_http_plinth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    len = 0;
    for (cl = body; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
        if (cl->next == NULL) {
            cl->buf->last_buf = 1;
            cl->buf->last_in_chain = 1;
        }
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;

    if (content_type) {
        r->headers_out.content_type.data = (u_char *) content_type;
        r->headers_out.content_type.len = ngx_strlen(content_type);
        r->headers_out.content_type_len = r->headers_out.content_type.len;
    }

    if (ctx && ctx->request_id.len
        && ngx_http_plinth_add_header(r, "x-amz-request-id", &ctx->request_id)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (body == NULL || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, body);
}


/* Answers 200 with an XML document built by ngx_plinth_xml_*, and ends. */
void
ngx_http_plinth_send_xml(ngx_http_request_t *r, ngx_plinth_xml_t *x)
{
    if (x->error) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_plinth_finalize(r, ngx_http_plinth_send_body(r, NGX_HTTP_OK,
                                                          x->first,
                                                          "application/xml"));
}


/* An error's S3 code, status and standard message (batch GET's entries). */
const char *
ngx_http_plinth_err_code(ngx_plinth_err_e err, ngx_uint_t *status,
    const char **message)
{
    *status = ngx_http_plinth_errors[err].status;
    *message = ngx_http_plinth_errors[err].message;

    return ngx_http_plinth_errors[err].code;
}


void
ngx_http_plinth_error(ngx_http_request_t *r, ngx_plinth_err_e err,
    const char *message)
{
    ngx_int_t                rc;
    ngx_str_t                resource;
    ngx_plinth_xml_t         x;
    ngx_http_plinth_ctx_t   *ctx;
    ngx_http_plinth_err_t   *e;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);
    e = &ngx_http_plinth_errors[err];

    if (ctx && ctx->finalized) {
        return;
    }

    if (r->header_sent) {
        /* mid-body: nothing but a cut connection tells the client */
        ngx_http_plinth_finalize(r, NGX_ERROR);
        return;
    }

    ngx_http_clean_header(r);

    resource.data = r->unparsed_uri.data;
    resource.len = r->unparsed_uri.len;
    if (ngx_strlchr(resource.data, resource.data + resource.len, '?')) {
        resource.len = ngx_strlchr(resource.data, resource.data + resource.len,
                                   '?') - resource.data;
    }

    ngx_plinth_xml_init(&x, r->pool);
    ngx_plinth_xml_lit(&x, NGX_PLINTH_XML_HEAD
                           "<Error>");
    ngx_plinth_xml_elem(&x, "Code", (u_char *) e->code, ngx_strlen(e->code));
    message = message ? message : e->message;
    ngx_plinth_xml_elem(&x, "Message", (u_char *) message,
                        ngx_strlen(message));
    if (ctx && ctx->bucket.len && err == NGX_PLINTH_ERR_NO_SUCH_BUCKET) {
        ngx_plinth_xml_elem(&x, "BucketName", ctx->bucket.data,
                            ctx->bucket.len);
    }
    if (ctx && ctx->key.len && err == NGX_PLINTH_ERR_NO_SUCH_KEY) {
        ngx_plinth_xml_elem(&x, "Key", ctx->key.data, ctx->key.len);
    }
    ngx_plinth_xml_elem(&x, "Resource", resource.data, resource.len);
    if (ctx) {
        ngx_plinth_xml_elem(&x, "RequestId", ctx->request_id.data,
                            ctx->request_id.len);
    }
    ngx_plinth_xml_lit(&x, "</Error>");

    if (x.error) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (err == NGX_PLINTH_ERR_INVALID_RANGE && ctx) {
        r->headers_out.content_range = ngx_list_push(&r->headers_out.headers);
        if (r->headers_out.content_range == NULL) {
            ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
        r->headers_out.content_range->hash = 1;
        ngx_str_set(&r->headers_out.content_range->key, "Content-Range");
        r->headers_out.content_range->value.data =
            ngx_pnalloc(r->pool, sizeof("bytes */") - 1 + NGX_OFF_T_LEN);
        if (r->headers_out.content_range->value.data == NULL) {
            ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
        r->headers_out.content_range->value.len =
            ngx_sprintf(r->headers_out.content_range->value.data,
                        "bytes */%O", ctx->obj.size)
            - r->headers_out.content_range->value.data;
    }

    if (ctx && ctx->marker_vid.len) {
        ngx_str_t  t = ngx_string("true");

        if (ngx_http_plinth_add_header(r, "x-amz-delete-marker", &t)
               != NGX_OK
            || ngx_http_plinth_add_header(r, "x-amz-version-id",
                                          &ctx->marker_vid)
               != NGX_OK)
        {
            ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    if (e->status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        ngx_str_t  retry = ngx_string("1");
        (void) ngx_http_plinth_add_header(r, "Retry-After", &retry);
    }

    /* a body never read must not be parsed as the next request */
    if (r == r->main && r->request_body == NULL
        && ngx_http_discard_request_body(r) != NGX_OK)
    {
        r->keepalive = 0;
    }

    rc = ngx_http_plinth_send_body(r, e->status, x.first, "application/xml");

    ngx_http_plinth_finalize(r, rc == NGX_ERROR ? NGX_ERROR : NGX_OK);
}


/* Maps a failed query to an S3 error: PLnnn SQLSTATEs are S3 errors the
 * database decided; anything else is logged and is an internal error. */
void
ngx_http_plinth_pg_error(ngx_http_request_t *r, PGresult *res, ngx_int_t rc)
{
    ngx_uint_t  e;

    if (rc == NGX_BUSY) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_SLOW_DOWN, NULL);
        return;
    }

    if (rc != NGX_OK || res == NULL) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_SERVICE_UNAVAILABLE,
                              "The metadata store is unavailable.");
        return;
    }

    e = ngx_http_plinth_pg_sqlstate(res);

    if (e == NGX_PLINTH_ERR_INTERNAL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "plinth: query failed, sqlstate \"%s\": %s",
                      PQresultErrorField(res, PG_DIAG_SQLSTATE)
                      ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : "",
                      PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                      ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : "");
    }

    ngx_http_plinth_error(r, e, NULL);
}


/* Plinth's SQLSTATEs (class PL, see sql/) and the S3 errors they are. */
static struct {
    const char        *state;
    ngx_plinth_err_e   err;
} ngx_http_plinth_sqlstates[] = {
    { "PL001", NGX_PLINTH_ERR_NO_SUCH_BUCKET },
    { "PL002", NGX_PLINTH_ERR_NO_SUCH_KEY },
    { "PL003", NGX_PLINTH_ERR_BUCKET_NOT_EMPTY },
    { "PL004", NGX_PLINTH_ERR_BUCKET_OWNED },
    { "PL005", NGX_PLINTH_ERR_BUCKET_EXISTS },
    { "PL006", NGX_PLINTH_ERR_SERVICE_UNAVAILABLE },
    { "PL007", NGX_PLINTH_ERR_NO_SUCH_UPLOAD },
    { "PL008", NGX_PLINTH_ERR_INVALID_PART },
    { "PL009", NGX_PLINTH_ERR_INVALID_PART_ORDER },
    { "PL010", NGX_PLINTH_ERR_ENTITY_TOO_SMALL },
    { "PL011", NGX_PLINTH_ERR_ACCESS_DENIED },
    { "PL013", NGX_PLINTH_ERR_PRECONDITION_FAILED },
    { "PL012", NGX_PLINTH_ERR_MALFORMED_XML },
    { "PL014", NGX_PLINTH_ERR_NO_SUCH_VERSION },
    { "PL015", NGX_PLINTH_ERR_INVALID_ARGUMENT },
    { "PL016", NGX_PLINTH_ERR_INVALID_REQUEST },
    { NULL, NGX_PLINTH_ERR_INTERNAL }
};


static ngx_uint_t
ngx_http_plinth_pg_sqlstate(PGresult *res)
{
    char        *state;
    ngx_uint_t   i;

    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    if (state == NULL) {
        return NGX_PLINTH_ERR_INTERNAL;
    }

    for (i = 0; ngx_http_plinth_sqlstates[i].state; i++) {
        if (ngx_strcmp(state, ngx_http_plinth_sqlstates[i].state) == 0) {
            return ngx_http_plinth_sqlstates[i].err;
        }
    }

    return NGX_PLINTH_ERR_INTERNAL;
}


/* Runs a statement for the request; on failure to queue, answers 500. */
ngx_int_t
ngx_http_plinth_pg(ngx_http_request_t *r, ngx_uint_t stmt, ngx_uint_t nparams,
    const char *const *values, ngx_plinth_pg_handler_pt handler)
{
    return ngx_plinth_pg_query(r, stmt, nparams, values, handler, NULL);
}


/*
 * The canned ACL of x-amz-acl: "private" (also when absent) or
 * "public-read". Others are answered (501 or 400) and NGX_DECLINED
 * returned.
 */
/*
 * x-amz-storage-class of a write. Plinth's classes are STANDARD (hot
 * nodes), STANDARD_IA (warm), GLACIER and DEEP_ARCHIVE (cold); three other
 * S3 names mean the same tier and are stored as Plinth's name for it
 * (REDUCED_REDUNDANCY -> STANDARD, ONEZONE_IA -> STANDARD_IA, GLACIER_IR
 * -> GLACIER); every other value (INTELLIGENT_TIERING, EXPRESS_ONEZONE,
 * OUTPOSTS, SNOW, lower case, garbage) is 400 InvalidStorageClass.
 * *cls = NULL when the header is absent (the bucket's default applies).
 * NGX_DECLINED: the error was answered.
 */
ngx_int_t
ngx_http_plinth_storage_class(ngx_http_request_t *r, const char **cls)
{
    return ngx_http_plinth_storage_class_header(r, "x-amz-storage-class",
                                                cls);
}


ngx_int_t
ngx_http_plinth_storage_class_header(ngx_http_request_t *r,
    const char *name, const char **cls)
{
    ngx_uint_t        i;
    ngx_table_elt_t  *h;

    static const char  *names[][2] = {
        { "STANDARD", "STANDARD" },
        { "STANDARD_IA", "STANDARD_IA" },
        { "GLACIER", "GLACIER" },
        { "DEEP_ARCHIVE", "DEEP_ARCHIVE" },
        { "REDUCED_REDUNDANCY", "STANDARD" },
        { "ONEZONE_IA", "STANDARD_IA" },
        { "GLACIER_IR", "GLACIER" },
        { NULL, NULL }
    };

    *cls = NULL;

    h = ngx_http_plinth_header_in(r, name);
    if (h == NULL) {
        return NGX_OK;
    }

    for (i = 0; names[i][0]; i++) {
        if (h->value.len == ngx_strlen(names[i][0])
            && ngx_strncmp(h->value.data, names[i][0], h->value.len) == 0)
        {
            *cls = names[i][1];
            return NGX_OK;
        }
    }

    ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_STORAGE_CLASS, NULL);
    return NGX_DECLINED;
}


/* A stored class's node tier (sql/015's plinth_storage_class_tier). */
const char *
ngx_http_plinth_class_tier(const char *cls, size_t len)
{
    if (len == 11 && ngx_strncmp(cls, "STANDARD_IA", 11) == 0) {
        return "warm";
    }

    if ((len == 7 && ngx_strncmp(cls, "GLACIER", 7) == 0)
        || (len == 12 && ngx_strncmp(cls, "DEEP_ARCHIVE", 12) == 0))
    {
        return "cold";
    }

    return "hot";
}


ngx_int_t
ngx_http_plinth_canned_acl(ngx_http_request_t *r, const char **acl)
{
    ngx_uint_t        i;
    ngx_table_elt_t  *h;

    static const char  *later[] = {
        "public-read-write", "authenticated-read", "aws-exec-read",
        "bucket-owner-read", "bucket-owner-full-control",
        "log-delivery-write", NULL
    };

    *acl = "private";

    h = ngx_http_plinth_header_in(r, "x-amz-acl");
    if (h == NULL) {
        return NGX_OK;
    }

    if (h->value.len == 7 && ngx_strncmp(h->value.data, "private", 7) == 0) {
        return NGX_OK;
    }

    if (h->value.len == 11
        && ngx_strncmp(h->value.data, "public-read", 11) == 0)
    {
        *acl = "public-read";
        return NGX_OK;
    }

    for (i = 0; later[i]; i++) {
        if (h->value.len == ngx_strlen(later[i])
            && ngx_strncmp(h->value.data, later[i], h->value.len) == 0)
        {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_NOT_IMPLEMENTED,
                                  "Only the canned ACLs private and "
                                  "public-read are supported.");
            return NGX_DECLINED;
        }
    }

    ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                          "Invalid canned ACL.");
    return NGX_DECLINED;
}


/* The caller owns it (owner column), or it is public-read. */
ngx_uint_t
ngx_http_plinth_may_read(ngx_http_plinth_ctx_t *ctx, PGresult *res, int row,
    int owner_col, const char *acl1, const char *acl2)
{
    if (!ctx->anonymous
        && (size_t) PQgetlength(res, row, owner_col) == ctx->identity.len
        && ngx_strncmp(PQgetvalue(res, row, owner_col), ctx->identity.data,
                       ctx->identity.len) == 0)
    {
        return 1;
    }

    return (acl1 && ngx_strcmp(acl1, "public-read") == 0)
           || (acl2 && ngx_strcmp(acl2, "public-read") == 0);
}


/*
 * Reads the request body, then calls done (at once when it is already in).
 * The body reader takes a reference of its own; it is given back the way
 * a content handler's NGX_DONE would, which also ends the request if done
 * has already answered: this runs after the content handler returned (once
 * authentication is done), where count-- would leak the request.
 */
void
ngx_http_plinth_read_request_body(ngx_http_request_t *r,
    ngx_http_client_body_handler_pt done)
{
    ngx_int_t  rc;

    rc = ngx_http_read_client_request_body(r, done);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        /* nginx gave the body's reference back already */
        ngx_http_plinth_error(r, rc == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
                                 ? NGX_PLINTH_ERR_ENTITY_TOO_LARGE
                                 : NGX_PLINTH_ERR_INVALID_REQUEST,
                              NULL);
        return;
    }

    ngx_http_finalize_request(r, NGX_DONE);
}


/*
 * Reads an XML request body of at most max bytes, then calls done. A
 * Content-Length over max is refused before a byte of the body is read; a
 * chunked body is cut off by the request body filter (xml_max): the bytes
 * over max are dropped as they arrive, never held or spooled, and
 * ngx_http_plinth_read_body() then reports it too large.
 */
void
ngx_http_plinth_read_xml_body(ngx_http_request_t *r, size_t max,
    ngx_http_client_body_handler_pt done)
{
    ngx_http_plinth_ctx_t  *ctx;

    if (r->headers_in.content_length_n > (off_t) max) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_MALFORMED_XML,
                              "The XML you provided is too large.");
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);
    ctx->xml_max = max;
    ctx->xml_seen = 0;

    ngx_http_plinth_read_request_body(r, done);
}


u_char *
ngx_http_plinth_cstr(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char  *p;

    p = ngx_pnalloc(pool, s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    if (s->len) {
        ngx_memcpy(p, s->data, s->len);
    }

    p[s->len] = '\0';

    return p;
}


/*
 * Statement parameters: params[0 .. n-1] = NUL-terminated copies of the n
 * ngx_str_t * that follow. NGX_ERROR if memory ran out.
 */
ngx_int_t
ngx_http_plinth_cstrs(ngx_pool_t *pool, const char **params, ngx_uint_t n,
    ...)
{
    va_list      args;
    ngx_uint_t   i;
    ngx_int_t    rc;

    rc = NGX_OK;
    va_start(args, n);

    for (i = 0; i < n; i++) {
        params[i] = (char *) ngx_http_plinth_cstr(pool,
                                                  va_arg(args, ngx_str_t *));
        if (params[i] == NULL) {
            rc = NGX_ERROR;
            break;
        }
    }

    va_end(args);

    return rc;
}


ngx_int_t
ngx_http_plinth_copy_value(ngx_pool_t *pool, PGresult *res, int row, int col,
    ngx_str_t *out)
{
    int  len;

    if (PQgetisnull(res, row, col)) {
        out->len = 0;
        out->data = NULL;
        return NGX_DECLINED;
    }

    len = PQgetlength(res, row, col);
    out->data = ngx_pnalloc(pool, len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, PQgetvalue(res, row, col), len);
    out->data[len] = '\0';
    out->len = len;

    return NGX_OK;
}
