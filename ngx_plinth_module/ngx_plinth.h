/*
 * Plinth gateway module: shared types.
 *
 * The module serves the S3 API inside nginx. Metadata lives in PostgreSQL
 * (ngx_plinth_pg.c, a non-blocking libpq pool); object bodies live on data
 * nodes reached through an nginx upstream whose balancer is ours
 * (ngx_plinth_upstream.c) so that every subrequest goes to the replicas
 * chosen for it, in order. Writes fan out to RF nodes and answer after W
 * (ngx_plinth_fanout.c); reads stream from one replica at a time and resume
 * at the exact byte on another when one fails mid-body. A GET's lookup of
 * the current version may go to PostgreSQL together with other requests'
 * (ngx_plinth_getq.c).
 *
 * Dependencies point down: ring, cluster and XML are pure helpers; the PG
 * pool and fan-out know nothing of S3; the S3 files use both; only
 * ngx_plinth_module.c sees every configuration structure.
 */

#ifndef NGX_PLINTH_H
#define NGX_PLINTH_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_md5.h>
#include <openssl/evp.h>
#include <libxml/parser.h>

#include "ngx_plinth_pg.h"
#include "ngx_plinth_ring.h"
#include "ngx_plinth_cluster.h"
#include "ngx_plinth_pgarray.h"
#include "ngx_plinth_s3_parse.h"


#define NGX_PLINTH_MAX_RF            7
/* the nodes one write may try: RF, then a replacement for each that
 * fails (ngx_plinth_fanout.c) */
#define NGX_PLINTH_MAX_TARGETS       (2 * NGX_PLINTH_MAX_RF)
#define NGX_PLINTH_BLOB_ID_LEN       32
#define NGX_PLINTH_REQUEST_ID_LEN    16
#define NGX_PLINTH_MAX_KEY_LEN       1024

/* libxml2 options for request bodies: no entity substitution, no DTD
 * loading, no network, no XML_PARSE_HUGE (fuzz/xml.c uses the same) */
#define NGX_PLINTH_XML_PARSE_OPTIONS                                         \
    (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)
#define NGX_PLINTH_MAX_META_SIZE     2048
#define NGX_PLINTH_ANONYMOUS         "anonymous"

/* the start of every S3 XML document the gateway writes */
#define NGX_PLINTH_XML_HEAD  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define NGX_PLINTH_XMLNS     " xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

#define NGX_PLINTH_AUTH_OFF          0
#define NGX_PLINTH_AUTH_SIGV4        1


typedef struct {
    ngx_plinth_pg_conf_t          pg;
    ngx_uint_t                    rf;
    ngx_uint_t                    w;
    off_t                         max_object_size;
    ngx_msec_t                    straggler_timeout;
    ngx_msec_t                    put_linger;    /* wait for all RF after W */
    ngx_int_t                     batch_window;  /* entries read at once */
    size_t                        stripe_size;   /* striped GET; 0: off */
    ngx_int_t                     stripe_window; /* stripes read at once */
    size_t                        batch_multi_max;  /* batch entries up to
                                                 this read many per data-node
                                                 request; 0: off */
    ngx_msec_t                    health_refresh;  /* 0: not read */
    ngx_msec_t                    key_cache;  /* 0: keys not cached */
    ngx_uint_t                    get_coalesce;  /* GET lookup statements
                                                 a worker runs at once; 0:
                                                 one per lookup, no limit */
    ngx_uint_t                    auth;       /* NGX_PLINTH_AUTH_* */
    ngx_flag_t                    api_keys;   /* X-Plinth-Api-Key */
    ngx_str_t                     region;
    ngx_str_t                     vhost_suffix;
    ngx_str_t                     blob_location;   /* "/_plinth/blobs/" */
    ngx_msec_t                    usage_flush;     /* 0: usage not flushed */
    ngx_uint_t                    usage_entries;   /* keys in the zone */
    struct plinth_hop_key_s      *hop_key;   /* plinth_cluster_secret_file */

    /* from plinth_cluster in the data-node upstream block */
    ngx_array_t                  *nodes;     /* ngx_plinth_cluster_node_t */
    plinth_ring_t                *ring;
    ngx_http_upstream_srv_conf_t *upstream;
} ngx_http_plinth_main_conf_t;


typedef struct {
    ngx_flag_t                    enable;     /* plinth_s3 */
} ngx_http_plinth_loc_conf_t;


/* S3 errors: one row each in ngx_plinth_s3.c's table (code, status). */
typedef enum {
    NGX_PLINTH_ERR_ACCESS_DENIED = 0,
    NGX_PLINTH_ERR_BAD_DIGEST,
    NGX_PLINTH_ERR_BUCKET_EXISTS,
    NGX_PLINTH_ERR_BUCKET_OWNED,
    NGX_PLINTH_ERR_BUCKET_NOT_EMPTY,
    NGX_PLINTH_ERR_ENTITY_TOO_LARGE,
    NGX_PLINTH_ERR_INTERNAL,
    NGX_PLINTH_ERR_INVALID_ARGUMENT,
    NGX_PLINTH_ERR_INVALID_BUCKET_NAME,
    NGX_PLINTH_ERR_INVALID_DIGEST,
    NGX_PLINTH_ERR_INVALID_RANGE,
    NGX_PLINTH_ERR_INVALID_REQUEST,
    NGX_PLINTH_ERR_KEY_TOO_LONG,
    NGX_PLINTH_ERR_METADATA_TOO_LARGE,
    NGX_PLINTH_ERR_METHOD_NOT_ALLOWED,
    NGX_PLINTH_ERR_MISSING_CONTENT_LENGTH,
    NGX_PLINTH_ERR_NO_SUCH_BUCKET,
    NGX_PLINTH_ERR_NO_SUCH_KEY,
    NGX_PLINTH_ERR_NOT_IMPLEMENTED,
    NGX_PLINTH_ERR_SERVICE_UNAVAILABLE,
    NGX_PLINTH_ERR_SLOW_DOWN,
    NGX_PLINTH_ERR_SIGNATURE,
    NGX_PLINTH_ERR_AUTH_MALFORMED,
    NGX_PLINTH_ERR_AUTH_QUERY,
    NGX_PLINTH_ERR_TIME_SKEWED,
    NGX_PLINTH_ERR_INVALID_URI,
    NGX_PLINTH_ERR_INVALID_ACCESS_KEY,
    NGX_PLINTH_ERR_SHA256_MISMATCH,
    NGX_PLINTH_ERR_INCOMPLETE_BODY,
    NGX_PLINTH_ERR_PRECONDITION_FAILED,
    NGX_PLINTH_ERR_NO_SUCH_UPLOAD,          /* multipart */
    NGX_PLINTH_ERR_INVALID_PART,
    NGX_PLINTH_ERR_INVALID_PART_ORDER,
    NGX_PLINTH_ERR_ENTITY_TOO_SMALL,
    NGX_PLINTH_ERR_MALFORMED_XML,
    NGX_PLINTH_ERR_INVALID_PART_NUMBER,
    NGX_PLINTH_ERR_NO_SUCH_VERSION,         /* versioning */
    NGX_PLINTH_ERR_INVALID_STORAGE_CLASS,   /* tiers */
    NGX_PLINTH_ERR_NO_SUCH_LIFECYCLE,
    NGX_PLINTH_ERR_MAX
} ngx_plinth_err_e;


typedef enum {
    NGX_PLINTH_OP_NONE = 0,
    NGX_PLINTH_OP_LIST_BUCKETS,
    NGX_PLINTH_OP_CREATE_BUCKET,
    NGX_PLINTH_OP_DELETE_BUCKET,
    NGX_PLINTH_OP_HEAD_BUCKET,
    NGX_PLINTH_OP_GET_BUCKET_LOCATION,
    NGX_PLINTH_OP_LIST_OBJECTS,
    NGX_PLINTH_OP_LIST_OBJECTS_V2,
    NGX_PLINTH_OP_PUT_OBJECT,
    NGX_PLINTH_OP_GET_OBJECT,
    NGX_PLINTH_OP_HEAD_OBJECT,
    NGX_PLINTH_OP_DELETE_OBJECT,
    NGX_PLINTH_OP_CREATE_MULTIPART_UPLOAD,
    NGX_PLINTH_OP_UPLOAD_PART,
    NGX_PLINTH_OP_COMPLETE_MULTIPART_UPLOAD,
    NGX_PLINTH_OP_ABORT_MULTIPART_UPLOAD,
    NGX_PLINTH_OP_LIST_PARTS,
    NGX_PLINTH_OP_LIST_MULTIPART_UPLOADS,
    NGX_PLINTH_OP_DELETE_OBJECTS,
    NGX_PLINTH_OP_GET_BUCKET_ACL,
    NGX_PLINTH_OP_PUT_BUCKET_ACL,
    NGX_PLINTH_OP_GET_OBJECT_ACL,
    NGX_PLINTH_OP_GET_OBJECT_TAGGING,
    NGX_PLINTH_OP_PUT_OBJECT_ACL,
    NGX_PLINTH_OP_GET_BUCKET_VERSIONING,
    NGX_PLINTH_OP_PUT_BUCKET_VERSIONING,
    NGX_PLINTH_OP_LIST_OBJECT_VERSIONS,
    NGX_PLINTH_OP_ADMIN_COST,               /* admin API */
    NGX_PLINTH_OP_ADMIN_ACCESS,
    NGX_PLINTH_OP_GET_BUCKET_LIFECYCLE,
    NGX_PLINTH_OP_PUT_BUCKET_LIFECYCLE,
    NGX_PLINTH_OP_DELETE_BUCKET_LIFECYCLE,
    NGX_PLINTH_OP_BATCH_GET,
    NGX_PLINTH_OP_MAX
} ngx_plinth_op_e;


/* operations whose request body is read (and hashed), never discarded */
#define ngx_http_plinth_op_has_body(op)                                      \
    ((op) == NGX_PLINTH_OP_PUT_OBJECT || (op) == NGX_PLINTH_OP_UPLOAD_PART    \
     || (op) == NGX_PLINTH_OP_COMPLETE_MULTIPART_UPLOAD                    \
     || (op) == NGX_PLINTH_OP_DELETE_OBJECTS                               \
     || (op) == NGX_PLINTH_OP_PUT_BUCKET_VERSIONING                        \
     || (op) == NGX_PLINTH_OP_PUT_BUCKET_LIFECYCLE                         \
     || (op) == NGX_PLINTH_OP_BATCH_GET)


typedef struct ngx_http_plinth_ctx_s  ngx_http_plinth_ctx_t;
typedef struct ngx_http_plinth_body_s  ngx_http_plinth_body_t;

typedef ngx_int_t (*ngx_http_plinth_op_pt)(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);

typedef struct {
    ngx_plinth_op_e               op;
    const char                   *name;       /* S3 operation name */
    ngx_uint_t                    method;     /* NGX_HTTP_GET, ... */
    unsigned                      bucket:1;   /* needs a bucket */
    unsigned                      key:1;      /* needs a key */
    const char                   *subresource;  /* query arg or NULL */
    ngx_http_plinth_op_pt         handler;
} ngx_http_plinth_route_t;


/*
 * A run of the object's bytes stored in one blob from blob_offset: a
 * single PUT is one segment, a multipart object one or more per part (a
 * copied part refers to its source's blobs), in order.
 */
typedef struct {
    ngx_str_t                     blob_id;
    off_t                         offset;     /* of its first byte */
    off_t                         blob_offset;
    off_t                         size;
    ngx_uint_t                    part_number;
    uint32_t                      nodes[NGX_PLINTH_MAX_RF];
    ngx_uint_t                    nnodes;
} ngx_plinth_segment_t;


/* The current version of an object, as PostgreSQL returned it. */
typedef struct {
    ngx_str_t                     version_id;
    ngx_str_t                     blob_id;
    off_t                         size;
    ngx_str_t                     etag;
    ngx_str_t                     content_type;
    ngx_str_t                     meta;
    ngx_str_t                     storage_class;
    time_t                        mtime;
    uint32_t                      nodes[NGX_PLINTH_MAX_RF];
    ngx_uint_t                    nnodes;
    ngx_uint_t                    parts;      /* multipart: parts count */
    ngx_plinth_segment_t         *segs;
    ngx_uint_t                    nsegs;
    ngx_uint_t                    part_seg;   /* partNumber: its first */
} ngx_plinth_object_t;


/* One body-carrying subrequest to the data nodes. */
typedef struct {
    ngx_uint_t                    kind;       /* 0; first, as in ctx */
    ngx_http_plinth_ctx_t        *parent;
    ngx_http_request_t           *sr;
    uint32_t                      nodes[NGX_PLINTH_MAX_RF];  /* try order */
    ngx_uint_t                    nnodes;
    ngx_uint_t                    index;      /* replica slot (PUT) */
    uint32_t                      node;       /* node last picked */
    ngx_str_t                     range;      /* $plinth_range */
    off_t                         expect;     /* body bytes wanted (GET) */
    off_t                         received;   /* body bytes passed on */
    ngx_msec_t                    started;    /* GET: when it was asked */
    size_t                        bufsize;    /* GET: its upstream buffer
                                                 (0: proxy_buffer_size) */
    u_char                       *buf;        /* ... given (bufsize bytes),
                                                 else allocated */
    ngx_uint_t                    status;
    unsigned                      get:1;
    unsigned                      accepted:1; /* GET: 2xx of the right size */
    unsigned                      complete:1; /* saw last_in_chain */
    unsigned                      finished:1; /* post_subrequest ran */
    void                         *multi;      /* batch GET's multi-read
                                                 (ngx_plinth_s3_batch.c) */
} ngx_http_plinth_sr_ctx_t;


/* the first field of both module ctx types, read by the filters */
#define NGX_PLINTH_CTX_REQUEST        0   /* ctx, or a data subrequest's */
#define NGX_PLINTH_CTX_BATCH_ENTRY    1   /* ctx of a batch entry's reader */
#define NGX_PLINTH_CTX_STRIPE         2   /* ctx of a striped GET's reader */

struct ngx_http_plinth_ctx_s {
    ngx_uint_t                    kind;       /* NGX_PLINTH_CTX_* */
    ngx_str_t                     request_id;
    const ngx_http_plinth_route_t *route;
    ngx_str_t                     bucket;
    ngx_str_t                     key;
    ngx_str_t                     identity;   /* caller; owner of new buckets */
    void                         *auth;       /* ngx_plinth_auth.c's state */
    ngx_str_t                     display_name;
    const char                   *acl;        /* x-amz-acl of a write */
    const char                   *storage_class;  /* x-amz-storage-class
                                                 of a write; NULL: none */
    const char                   *tier;       /* placement tier of a write */
    void                         *lifecycle;  /* PutBucketLifecycle's body */
    ngx_str_t                     if_match;   /* conditional write */
    unsigned                      if_none_match:1;
    ngx_str_t                     vid;        /* S3 version id: ?versionId=,
                                                 or the version written */
    unsigned                      versioned:1;  /* bucket ever versioned */
    ngx_str_t                     marker_vid; /* an error about a delete
                                                 marker names it */
    ngx_str_t                     want_sha256;  /* x-amz-content-sha256 */
    EVP_MD_CTX                   *sha256;
    ngx_http_plinth_body_t       *body;       /* aws-chunked decoding */
    ngx_plinth_err_e              body_error; /* NGX_PLINTH_ERR_MAX: none */
    const char                   *body_message;
    ngx_uint_t                    cks_alg;    /* x-amz-checksum-<alg> */
    ngx_str_t                     cks_want;   /* its header value */
    ngx_str_t                     cks_got;    /* ... or its trailer's */
    uint64_t                      cks_crc;    /* CRC state */
    EVP_MD_CTX                   *cks_md;     /* SHA-1, SHA-256 state */
    unsigned                      anonymous:1;  /* no signature */

    /* request body (PUT): hashed by the request body filter */
    ngx_md5_t                     md5;
    off_t                         body_len;
    u_char                        etag[32];
    unsigned                      hash_body:1;

    /* an XML request body: at most xml_max bytes are kept; the rest of a
     * longer (chunked) one is counted and dropped as it arrives */
    off_t                         xml_max;
    off_t                         xml_seen;
    unsigned                      xml_over:1;

    /* PUT fan-out */
    ngx_str_t                     version_id;
    ngx_str_t                     blob_id;
    uint32_t                      targets[NGX_PLINTH_MAX_TARGETS];
    ngx_uint_t                    ntargets;
    u_char                       *place_key;  /* ring key of the write */
    size_t                        place_key_len;
    uint32_t                      acked_nodes[NGX_PLINTH_MAX_TARGETS];
    ngx_uint_t                    acked;
    ngx_uint_t                    failed;
    uint32_t                      late_nodes[NGX_PLINTH_MAX_TARGETS];
    ngx_uint_t                    nlate;      /* acknowledged after commit */
    unsigned                      committed:1;
    unsigned                      put_open:1; /* commit not sent yet */
    unsigned                      lingered:1; /* plinth_put_linger is over */
    /* other versions' late replicas carried by this PUT's commit */
    void                         *late_carried;
    ngx_uint_t                    nlate_carried;
    ngx_http_plinth_sr_ctx_t     *puts[NGX_PLINTH_MAX_TARGETS];
    ngx_event_t                   straggler_ev;
    ngx_uint_t                    state;
    void                        (*fanout_done)(ngx_http_request_t *r);
    void                        (*put_begin)(ngx_http_request_t *r);

    /* multipart: UploadPart, CompleteMultipartUpload, GET ?partNumber */
    ngx_str_t                     upload_id;
    ngx_uint_t                    part_number;

    /* GET streaming */
    ngx_plinth_object_t           obj;
    off_t                         start;      /* first byte wanted */
    off_t                         end;        /* last byte wanted + 1 */
    off_t                         delivered;  /* bytes sent to the client */
    uint32_t                      bad_nodes[NGX_PLINTH_MAX_RF];
    ngx_uint_t                    nbad;
    uint32_t                      served[NGX_PLINTH_MAX_RF];  /* $plinth_nodes */
    ngx_uint_t                    nserved;
    ngx_uint_t                    attempts;
    ngx_http_plinth_sr_ctx_t     *part;       /* the subrequest in flight */
    unsigned                      ranged:1;
    unsigned                      headers_sent:1;
    unsigned                      part_done:1;
    ngx_uint_t                    seg;        /* segment being read */
    uint32_t                      prefer;     /* replica asked first (0:
                                                 placement order) */
    size_t                        read_buf;   /* upstream buffer of each
                                                 read (0: the location's) */

    /* striped GET (ngx_plinth_stripe.c): the main request's stripes, or
     * the stripe a reader serves */
    void                         *stripes;

    /* batch GET (ngx_plinth_s3_batch.c): the request's state, or the
     * entry a batch entry's reader serves; the data buffers of finished
     * reads, freed once sent */
    void                         *batch;
    ngx_array_t                  *spent_bufs;

    unsigned                      waiting:1;  /* a PG query is pending */
    unsigned                      finalized:1;
    unsigned                      vhost:1;    /* virtual-hosted style */
    ngx_str_t                     path;       /* decoded path, no '/' first */
};


extern ngx_module_t  ngx_http_plinth_module;


/* ngx_plinth_s3.c */
ngx_int_t ngx_http_plinth_s3_handler(ngx_http_request_t *r);
void ngx_http_plinth_error(ngx_http_request_t *r, ngx_plinth_err_e err,
    const char *message);
const char *ngx_http_plinth_err_code(ngx_plinth_err_e err,
    ngx_uint_t *status, const char **message);
void ngx_http_plinth_pg_error(ngx_http_request_t *r, PGresult *res,
    ngx_int_t rc);
ngx_int_t ngx_http_plinth_send_body(ngx_http_request_t *r, ngx_uint_t status,
    ngx_chain_t *body, const char *content_type);
void ngx_http_plinth_finalize(ngx_http_request_t *r, ngx_int_t rc);
ngx_int_t ngx_http_plinth_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
ngx_table_elt_t *ngx_http_plinth_header_in(ngx_http_request_t *r,
    const char *name);
ngx_int_t ngx_http_plinth_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
ngx_int_t ngx_http_plinth_pg(ngx_http_request_t *r, ngx_uint_t stmt,
    ngx_uint_t nparams, const char *const *values,
    ngx_plinth_pg_handler_pt handler);
u_char *ngx_http_plinth_cstr(ngx_pool_t *pool, ngx_str_t *s);
ngx_int_t ngx_http_plinth_cstrs(ngx_pool_t *pool, const char **params,
    ngx_uint_t n, ...);
ngx_uint_t ngx_http_plinth_parse_nodes(u_char *p, size_t len,
    uint32_t *nodes);
void ngx_http_plinth_read_request_body(ngx_http_request_t *r,
    ngx_http_client_body_handler_pt done);
ngx_int_t ngx_http_plinth_canned_acl(ngx_http_request_t *r, const char **acl);
ngx_int_t ngx_http_plinth_storage_class(ngx_http_request_t *r,
    const char **cls);
ngx_int_t ngx_http_plinth_storage_class_header(ngx_http_request_t *r,
    const char *name, const char **cls);
const char *ngx_http_plinth_class_tier(const char *cls, size_t len);
ngx_uint_t ngx_http_plinth_may_read(ngx_http_plinth_ctx_t *ctx, PGresult *res,
    int row, int owner_col, const char *acl1, const char *acl2);
ngx_int_t ngx_http_plinth_copy_value(ngx_pool_t *pool, PGresult *res,
    int row, int col, ngx_str_t *out);

extern const ngx_plinth_pg_stmt_t  ngx_http_plinth_stmts[];
extern const ngx_uint_t            ngx_http_plinth_nstmts;

/* statement indexes into ngx_http_plinth_stmts */
enum {
    NGX_PLINTH_SQL_BUCKET_CREATE = 0,
    NGX_PLINTH_SQL_BUCKET_DELETE,
    NGX_PLINTH_SQL_BUCKET_HEAD,
    NGX_PLINTH_SQL_BUCKET_LIST,
    NGX_PLINTH_SQL_PUT_BEGIN,
    NGX_PLINTH_SQL_PUT_COMMIT,
    NGX_PLINTH_SQL_PUT_ABORT,
    NGX_PLINTH_SQL_PUT_ADD_NODE,
    NGX_PLINTH_SQL_GET,
    NGX_PLINTH_SQL_GET_CURRENT,
    NGX_PLINTH_SQL_GET_CURRENT_N,
    NGX_PLINTH_SQL_DELETE,
    NGX_PLINTH_SQL_LIST,
    NGX_PLINTH_SQL_LIST_RANGE,
    NGX_PLINTH_SQL_LIST_FROM,
    NGX_PLINTH_SQL_ACCESS_KEY,
    NGX_PLINTH_SQL_DELETE_OBJECTS,
    NGX_PLINTH_SQL_COPY_OBJECT,
    NGX_PLINTH_SQL_BUCKET_ACL,
    NGX_PLINTH_SQL_OBJECT_ACL,
    NGX_PLINTH_SQL_SET_BUCKET_ACL,
    NGX_PLINTH_SQL_SET_OBJECT_ACL,
    NGX_PLINTH_SQL_BUCKET_VERSIONING,
    NGX_PLINTH_SQL_SET_BUCKET_VERSIONING,
    NGX_PLINTH_SQL_LIST_VERSIONS,
    /* multipart: designated rows in ngx_plinth_s3.c's table */
    NGX_PLINTH_SQL_MPU_CREATE,
    NGX_PLINTH_SQL_PART_BEGIN,
    NGX_PLINTH_SQL_PART_COMMIT,
    NGX_PLINTH_SQL_PART_ABORT,
    NGX_PLINTH_SQL_PART_ADD_NODE,
    NGX_PLINTH_SQL_MPU_COMPLETE,
    NGX_PLINTH_SQL_MPU_ABORT,
    NGX_PLINTH_SQL_LIST_PARTS,
    NGX_PLINTH_SQL_LIST_UPLOADS,
    NGX_PLINTH_SQL_PART_COPY,
    NGX_PLINTH_SQL_MPU_PART_CHECKSUMS,
    NGX_PLINTH_SQL_NODE_AVOID,
    NGX_PLINTH_SQL_NODE_HEALTH,
    NGX_PLINTH_SQL_REPORT_BAD,
    NGX_PLINTH_SQL_USAGE_FLUSH,             /* cost and access patterns */
    NGX_PLINTH_SQL_ADMIN_COST,
    NGX_PLINTH_SQL_ADMIN_ACCESS,
    NGX_PLINTH_SQL_BUCKET_OWNED,
    NGX_PLINTH_SQL_GET_LIFECYCLE,
    NGX_PLINTH_SQL_SET_LIFECYCLE,
    NGX_PLINTH_SQL_DELETE_LIFECYCLE,
    NGX_PLINTH_SQL_BATCH_GET,
    NGX_PLINTH_SQL_BATCH_GET_CURRENT,
    NGX_PLINTH_SQL_MAX
};

/* ngx_plinth_auth.c */
ngx_int_t ngx_http_plinth_authenticate(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
void ngx_http_plinth_request_id(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_dispatch(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_sha256_start(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
void ngx_http_plinth_sha256_update(ngx_http_plinth_ctx_t *ctx, u_char *p,
    size_t len);
ngx_int_t ngx_http_plinth_sha256_check(ngx_http_plinth_ctx_t *ctx);

/* ngx_plinth_conditional.c */
ngx_int_t ngx_http_plinth_get_conditions(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_put_conditions(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);

/* ngx_plinth_metrics.c */
ngx_int_t ngx_http_plinth_metrics_conf(ngx_conf_t *cf);
ngx_int_t ngx_http_plinth_metrics_log(ngx_http_request_t *r);
ngx_int_t ngx_http_plinth_metrics_handler(ngx_http_request_t *r);
void ngx_http_plinth_metrics_node_error(uint32_t node);
void ngx_http_plinth_metrics_get_lookups(ngx_uint_t n);
ngx_int_t ngx_http_plinth_get_lookup(ngx_http_request_t *r,
    ngx_plinth_pg_handler_pt handler);
const char *ngx_http_plinth_op_name(ngx_uint_t op);

/* ngx_plinth_usage.c: egress and reads per object, batched */
ngx_int_t ngx_http_plinth_usage_conf(ngx_conf_t *cf,
    ngx_http_plinth_main_conf_t *pmcf);
ngx_int_t ngx_http_plinth_usage_init(ngx_cycle_t *cycle,
    ngx_http_plinth_main_conf_t *pmcf);
void ngx_http_plinth_usage_exit(void);
void ngx_http_plinth_usage_record_read(ngx_http_request_t *r,
    ngx_str_t *bucket, ngx_str_t *key, off_t bytes);
ngx_int_t ngx_http_plinth_usage_log_phase(ngx_http_request_t *r);
u_char *ngx_http_plinth_usage_metrics(u_char *p, u_char *end);

/* ngx_plinth_admin.c: the admin API */
ngx_int_t ngx_http_plinth_admin_cost(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_admin_access(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);

/* ngx_plinth_health.c */
ngx_int_t ngx_http_plinth_health_init(ngx_cycle_t *cycle,
    ngx_http_plinth_main_conf_t *pmcf);
void ngx_http_plinth_health_exit(void);
size_t ngx_http_plinth_health_avoid(const uint32_t **nodes);
ngx_uint_t ngx_http_plinth_health_offline(uint32_t node);
ngx_int_t ngx_http_plinth_health_handler(ngx_http_request_t *r);
void ngx_http_plinth_report_bad_replica(ngx_log_t *log, ngx_str_t *blob,
    uint32_t node, const char *reason);

/* ngx_plinth_body.c: the flexible checksums, in this order */
enum {
    NGX_PLINTH_CKS_NONE = 0,
    NGX_PLINTH_CKS_CRC32,
    NGX_PLINTH_CKS_CRC32C,
    NGX_PLINTH_CKS_SHA1,
    NGX_PLINTH_CKS_SHA256,
    NGX_PLINTH_CKS_CRC64NVME
};

extern const char  *ngx_http_plinth_cks_names[];
extern const char  *ngx_http_plinth_cks_headers[];

ngx_uint_t ngx_http_plinth_checksum_alg(const u_char *name, size_t len);
ngx_uint_t ngx_http_plinth_checksum_alg_name(const u_char *name, size_t len);
ngx_int_t ngx_http_plinth_checksum_params(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, const char **alg, const char **value);
void ngx_http_plinth_crc_bytes(uint64_t crc, u_char *md, ngx_uint_t n);
ngx_int_t ngx_http_plinth_checksum_parts(ngx_pool_t *pool, ngx_uint_t alg,
    ngx_uint_t full, ngx_str_t *parts, off_t *sizes, ngx_uint_t n,
    ngx_str_t *out);
ngx_int_t ngx_http_plinth_body_chunked(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_uint_t payload, const u_char key[32],
    ngx_str_t *amz_date, ngx_str_t *scope, const u_char seed[64]);
ngx_int_t ngx_http_plinth_request_body(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_chain_t *in, ngx_chain_t **out);
ngx_int_t ngx_http_plinth_checksum_trailer(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_str_t *name, const u_char *value,
    size_t len);
ngx_int_t ngx_http_plinth_checksum_header(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
void ngx_http_plinth_checksum_update(ngx_http_plinth_ctx_t *ctx, u_char *p,
    size_t len);
ngx_int_t ngx_http_plinth_body_prepare(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, off_t *length);
ngx_uint_t ngx_http_plinth_aws_chunked(ngx_http_request_t *r);
ngx_int_t ngx_http_plinth_body_check(ngx_http_plinth_ctx_t *ctx,
    ngx_plinth_err_e *err, const char **message);

/* ngx_plinth_s3_bucket.c */
ngx_int_t ngx_http_plinth_list_buckets(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_create_bucket(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_delete_bucket(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_head_bucket(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_get_bucket_location(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_list_objects(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_get_bucket_versioning(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
/* ngx_plinth_s3_lifecycle.c */
ngx_int_t ngx_http_plinth_get_bucket_lifecycle(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_put_bucket_lifecycle(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_delete_bucket_lifecycle(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_put_bucket_versioning(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_list_object_versions(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);

/* ngx_plinth_s3_acl.c */
ngx_int_t ngx_http_plinth_get_object_tagging(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_get_acl(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_put_acl(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);

/* ngx_plinth_s3_copy.c */
ngx_int_t ngx_http_plinth_upload_part_copy(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_table_elt_t *source);
ngx_int_t ngx_http_plinth_copy_object(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_table_elt_t *source);

/* ngx_plinth_s3_batch.c */
ngx_int_t ngx_http_plinth_batch_get(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_batch_multi_header(ngx_http_request_t *r,
    ngx_http_plinth_sr_ctx_t *sctx);
ngx_int_t ngx_http_plinth_batch_multi_body(ngx_http_request_t *r,
    ngx_http_plinth_sr_ctx_t *sctx, ngx_chain_t *in);

/* ngx_plinth_stripe.c */
ngx_uint_t ngx_http_plinth_stripe_wanted(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_stripe_start(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
void ngx_http_plinth_stripe_sample(ngx_http_plinth_ctx_t *rctx,
    ngx_http_plinth_sr_ctx_t *sctx);

/* ngx_plinth_s3_delete.c */
ngx_int_t ngx_http_plinth_delete_objects(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);

/* ngx_plinth_s3_object.c */
ngx_int_t ngx_http_plinth_put_object(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_get_object(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_delete_object(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);

void ngx_http_plinth_put_add_node(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, uint32_t node);
ngx_int_t ngx_http_plinth_put_body(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, void (*begin)(ngx_http_request_t *r));
void ngx_http_plinth_put_place(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, u_char *hkey, size_t len,
    void (*decided)(ngx_http_request_t *r));
u_char *ngx_http_plinth_put_nodes(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_uint_t *quorum);
void ngx_http_plinth_put_answer(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_str_t *etag);
ngx_int_t ngx_http_plinth_user_meta(ngx_http_request_t *r,
    ngx_str_t *meta);
ngx_uint_t ngx_http_plinth_vid_valid(const u_char *p, size_t len);
ngx_int_t ngx_http_plinth_version_arg(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);

/* ngx_plinth_s3_multipart.c */
ngx_int_t ngx_http_plinth_create_multipart_upload(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_upload_part(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_complete_multipart_upload(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_abort_multipart_upload(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_list_parts(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_list_multipart_uploads(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);

/* ngx_plinth_fanout.c */
ngx_int_t ngx_http_plinth_fanout_put(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, void (*done)(ngx_http_request_t *r));
ngx_int_t ngx_http_plinth_read_start(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_read_child(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);
ngx_int_t ngx_http_plinth_sr_header_filter(ngx_http_request_t *r,
    ngx_http_plinth_sr_ctx_t *sctx);
ngx_int_t ngx_http_plinth_sr_body_filter(ngx_http_request_t *r,
    ngx_http_plinth_sr_ctx_t *sctx, ngx_chain_t *in);

/* ngx_plinth_xml.c: an append-only chain of buffers for response bodies */
typedef struct {
    ngx_pool_t                   *pool;
    ngx_chain_t                  *first;
    ngx_chain_t                  *last;
    ngx_int_t                     error;
} ngx_plinth_xml_t;

void ngx_plinth_xml_init(ngx_plinth_xml_t *x, ngx_pool_t *pool);
void ngx_http_plinth_send_xml(ngx_http_request_t *r, ngx_plinth_xml_t *x);
void ngx_plinth_xml_raw(ngx_plinth_xml_t *x, const u_char *s, size_t len);
void ngx_plinth_xml_lit(ngx_plinth_xml_t *x, const char *s);
void ngx_plinth_xml_text(ngx_plinth_xml_t *x, const u_char *s, size_t len);
void ngx_plinth_xml_elem(ngx_plinth_xml_t *x, const char *name,
    const u_char *s, size_t len);
void ngx_plinth_xml_elem_url(ngx_plinth_xml_t *x, const char *name,
    const u_char *s, size_t len, ngx_uint_t url);
void ngx_plinth_xml_elem_int(ngx_plinth_xml_t *x, const char *name,
    int64_t v);

void ngx_http_plinth_read_xml_body(ngx_http_request_t *r, size_t max,
    ngx_http_client_body_handler_pt done);
u_char *ngx_http_plinth_read_body(ngx_http_request_t *r, size_t max,
    size_t *len);
ngx_int_t ngx_http_plinth_check_content_md5(ngx_http_request_t *r,
    const u_char *digest);
ngx_int_t ngx_http_plinth_check_body_md5(ngx_http_request_t *r,
    const u_char *body, size_t len);
/* one element of a PostgreSQL array literal (ngx_plinth_pgarray.h) */
#define ngx_plinth_pg_array_elem(p, s, len)  plinth_pg_array_elem(p, s, len)
void *ngx_http_plinth_pool_alloc(void *pool, size_t size);
void ngx_http_plinth_parse_error(ngx_http_request_t *r,
    plinth_parse_err_e rc, const char *message, int dtd);

/* ngx_plinth_upstream.c */
char *ngx_http_plinth_cluster(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

#endif /* NGX_PLINTH_H */
