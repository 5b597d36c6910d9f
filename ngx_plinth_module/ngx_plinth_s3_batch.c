/*
 * Batch GET (POST /{bucket}?batch): many objects in one signed request,
 * answered with one POSIX tar stream holding them in request order.
 *
 * The body is JSON (libjansson), parsed and validated in pure C by
 * ngx_plinth_batch_parse.c (which fuzz/batch.c runs):
 *
 *   {"entries": [{"key": "a/1.jpg"},
 *                {"key": "b", "versionId": "...", "range": "bytes=0-99",
 *                 "name": "b.head", "bucket": "other-bucket"}, ...],
 *    "continueOnError": false}
 *
 * or the same list as XML (<Batch><ContinueOnError>true</ContinueOnError>
 * <Entry><Key/><Bucket/><VersionId/><Range/><Name/></Entry>...</Batch>).
 *
 * 1 to 10,000 entries. An entry names an object of the request's bucket,
 * or of another one ("bucket"); every entry's bucket is checked as
 * GetObject checks it (the owner, or a public-read bucket or version). The
 * request itself must be signed, by a caller who may read the request's
 * bucket. "name" is the entry's path in the archive (default: the key).
 *
 * The metadata of all entries comes from one PostgreSQL round trip
 * (plinth_batch_get, sql/020; plinth_batch_get_current, sql/028, when no
 * entry names a version: without the parts, so a batch holding a
 * multipart object takes a second one). Then every entry is known:
 * strict mode (the default) answers the first entry that cannot be read
 * with its S3 error before any byte is sent; continueOnError puts a
 * "<name>.error" text entry ("<Code>\n<Message>\n") in its place. So the
 * archive's exact length is known before the first byte: it is sent as
 * Content-Length.
 *
 * Streaming: for each entry the main request outputs its tar header, then
 * starts a subrequest, the entry's reader, which reads the entry's bytes
 * exactly as GetObject does (ngx_plinth_fanout.c: segment by segment,
 * replica after replica, resuming at the byte where a replica failed; the
 * data nodes verify their block checksums before sending). nginx's
 * postpone filter sends subrequests' output in creation order, and a
 * reader's own reads are its children, so a resumed read stays in its
 * entry's place. Up to plinth_batch_window entries are read at once; an
 * entry's reader finishes only once its bytes have gone to the client, so
 * at most that many entries' buffers are held. If every replica of an
 * entry fails after the archive has begun, the connection is cut: the
 * client sees fewer bytes than Content-Length (a truncated tar).
 *
 * Small entries (at most plinth_batch_multi_max bytes from one segment)
 * have no reader of their own unless they need one: they are read many
 * at a time, one POST /blobs/multi per data node per round, and sent from
 * the main request (the multi-reads, at the end of this file).
 */

#include "ngx_plinth.h"
#include <libxml/parser.h>
#include "ngx_plinth_batch_parse.h"
#include "ngx_plinth_multi.h"
#include "plinth.pb-c.h"


#define NGX_PLINTH_BATCH_MAX_BODY     (16 * 1024 * 1024)
#define NGX_PLINTH_TAR_BLOCK          512
#define NGX_PLINTH_TAR_MAX_OCTAL_SIZE 077777777777LL

/* multi-reads (POST /blobs/multi): per data-node request, per round of
 * them, and the rounds' answers held at once (the data node takes 1024
 * items and 16 MiB) */
#define NGX_PLINTH_BATCH_GROUP_ITEMS  256
#define NGX_PLINTH_BATCH_GROUP_BYTES  (1024 * 1024)
#define NGX_PLINTH_BATCH_ROUND_GROUPS 16
#define NGX_PLINTH_BATCH_ROUND_ITEMS  1024
#define NGX_PLINTH_BATCH_ROUND_BYTES  (2 * 1024 * 1024)
/* frame overhead per item in an answer: length prefix and header */
#define NGX_PLINTH_BATCH_FRAME_MAX    (4 + 64)
/* the pump's output of entries from multi-reads, in runs of this many
 * bytes at most (ngx_http_plinth_batch_pump) */
#define NGX_PLINTH_BATCH_RUN          (256 * 1024)
/* a multi-read's upstream buffer holds its answer's header and then the
 * whole answer (ngx_http_plinth_batch_multi_body); a worker keeps up to
 * NGX_PLINTH_BATCH_BUFS_KEPT of them for the next multi-reads */
#define NGX_PLINTH_BATCH_HEADER_ROOM  2048
#define NGX_PLINTH_BATCH_BUF_SIZE     (NGX_PLINTH_BATCH_HEADER_ROOM          \
                                       + NGX_PLINTH_BATCH_GROUP_BYTES        \
                                       + NGX_PLINTH_BATCH_GROUP_ITEMS        \
                                         * NGX_PLINTH_BATCH_FRAME_MAX)
#define NGX_PLINTH_BATCH_BUFS_KEPT    8


typedef struct ngx_http_plinth_batch_s        ngx_http_plinth_batch_t;
typedef struct ngx_http_plinth_batch_group_s  ngx_http_plinth_batch_group_t;


typedef struct {
    ngx_str_t                     bucket;
    ngx_str_t                     key;
    ngx_str_t                     name;
    ngx_str_t                     vid;        /* asked for; then served */
    off_t                         ra, rb;     /* range: -1 when absent */
    unsigned                      ranged:1;
    unsigned                      suffix:1;

    ngx_plinth_err_e              err;        /* ERR_MAX: readable */
    off_t                         size;
    time_t                        mtime;
    off_t                         start;
    off_t                         end;
    ngx_plinth_segment_t         *segs;
    ngx_uint_t                    nsegs;

    ngx_http_request_t           *sr;         /* its reader */
    ngx_http_plinth_ctx_t        *rctx;       /* the reader's ctx */
    unsigned                      read:1;     /* the reader finished */
    unsigned                      freed:1;    /* its buffers given back */

    /* a small entry: read with others in one multi-read */
    ngx_http_plinth_batch_group_t *group;
    u_char                       *mdata;      /* its checked bytes, or NULL */
    ngx_buf_t                    *mbuf;       /* ... as sent to the client */
    uint32_t                      mbad;       /* the node that failed it */
} ngx_http_plinth_batch_entry_t;


/* One multi-read: small entries read from one data node in one request. */
struct ngx_http_plinth_batch_group_s {
    ngx_http_plinth_batch_t      *b;
    ngx_http_request_t           *r;          /* the batch (main) request */
    uint32_t                      node;
    ngx_uint_t                   *idx;        /* entries, in request order */
    ngx_uint_t                    n;
    ngx_uint_t                    seen;       /* frames read */
    size_t                        bytes;      /* data bytes asked for */
    u_char                       *buf;        /* the answer */
    size_t                        len;
    size_t                        cap;
    u_char                       *proxy_buf;  /* its upstream buffer, a
                                                 worker's (..._buf_get) */
    ngx_uint_t                    status;
    unsigned                      failed:1;
    unsigned                      done:1;
    unsigned                      direct:1;   /* buf is in proxy_buf */
};


struct ngx_http_plinth_batch_s {
    ngx_http_plinth_batch_entry_t *entries;
    ngx_uint_t                    n;
    ngx_uint_t                    next;       /* first entry not started */
    ngx_uint_t                    head;       /* first entry not sent */
    ngx_uint_t                    freed;      /* first entry not freed */
    ngx_uint_t                    window;
    unsigned                      continue_on_error:1;
    unsigned                      trailer:1;
    unsigned                      current:1;  /* asked without the parts */
    const char                   *query[4];   /* the metadata statement's
                                                 parameters */
    u_char                       *body;
    size_t                        body_len;

    /* multi-reads: entries of at most multi_max bytes, planned in rounds */
    size_t                        multi_max;  /* 0: off */
    ngx_uint_t                    round_end;  /* first entry not planned */
    ngx_uint_t                    pending;    /* multi-reads in flight */
    ngx_array_t                  *groups;     /* group *, in order */
    ngx_uint_t                    gfreed;     /* first group not freed */
    size_t                        held;       /* bytes of answers held */
    unsigned                      held_wait:1;  /* the pump waits for them */
};


static u_char  ngx_http_plinth_tar_zero[2 * NGX_PLINTH_TAR_BLOCK];


static void ngx_http_plinth_batch_body(ngx_http_request_t *r);
static void ngx_http_plinth_batch_bucket(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static ngx_int_t ngx_http_plinth_batch_parse(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_http_plinth_batch_t *b);
static void ngx_http_plinth_batch_meta(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static ngx_int_t ngx_http_plinth_batch_row(ngx_http_request_t *r,
    PGresult *res, int first, int last, ngx_http_plinth_batch_entry_t *e);
static ngx_plinth_err_e ngx_http_plinth_batch_err(const char *code);
static off_t ngx_http_plinth_batch_length(ngx_http_plinth_batch_entry_t *e,
    off_t *content);
static ngx_chain_t *ngx_http_plinth_batch_header(ngx_http_request_t *r,
    ngx_http_plinth_batch_entry_t *e, off_t pad);
static u_char *ngx_http_plinth_tar_block(u_char *p, u_char *name,
    size_t len, off_t size, time_t mtime, u_char type);
static void ngx_http_plinth_batch_wev(ngx_http_request_t *r);
static ngx_int_t ngx_http_plinth_batch_pump(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_http_plinth_batch_t *b);
static ngx_int_t ngx_http_plinth_batch_start(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_http_plinth_batch_entry_t *e);
static ngx_int_t ngx_http_plinth_batch_read_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static void ngx_http_plinth_batch_free(ngx_http_request_t *r,
    ngx_http_plinth_batch_t *b);
static ngx_uint_t ngx_http_plinth_batch_small(ngx_http_plinth_batch_t *b,
    ngx_http_plinth_batch_entry_t *e);
static ngx_int_t ngx_http_plinth_batch_run(ngx_http_request_t *r,
    ngx_chain_t **run);
static u_char *ngx_http_plinth_batch_buf_get(ngx_log_t *log);
static void ngx_http_plinth_batch_group_buf_free(
    ngx_http_plinth_batch_group_t *g);
static void ngx_http_plinth_batch_cleanup(void *data);
static ngx_int_t ngx_http_plinth_batch_round(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_http_plinth_batch_t *b);
static ngx_int_t ngx_http_plinth_batch_multi(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_http_plinth_batch_group_t *g);
static ngx_int_t ngx_http_plinth_batch_multi_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);


ngx_int_t
ngx_http_plinth_batch_get(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    if (ctx->anonymous) {
        /* a batch is always signed: its body names many objects */
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ACCESS_DENIED, NULL);
        return NGX_OK;
    }

    /* capped before it is read, as every XML body (ngx_plinth_s3.c) */
    ngx_http_plinth_read_xml_body(r, NGX_PLINTH_BATCH_MAX_BODY,
                                  ngx_http_plinth_batch_body);

    return NGX_OK;
}


static void
ngx_http_plinth_batch_body(ngx_http_request_t *r)
{
    const char               *params[1];
    ngx_http_plinth_ctx_t    *ctx;
    ngx_http_plinth_batch_t  *b;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (ctx->finalized) {
        return;
    }

    b = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_batch_t));
    if (b == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->batch = b;

    b->body = ngx_http_plinth_read_body(r, NGX_PLINTH_BATCH_MAX_BODY,
                                        &b->body_len);
    if (b->body == NULL && b->body_len <= NGX_PLINTH_BATCH_MAX_BODY) {
        b->body = (u_char *) "";
        b->body_len = 0;
    }

    /* the caller must be able to read the request's bucket first */
    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);

    if (params[0] == NULL
        || ngx_http_plinth_pg(r, NGX_PLINTH_SQL_BUCKET_HEAD, 1, params,
                              ngx_http_plinth_batch_bucket)
           != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


static void
ngx_http_plinth_batch_bucket(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    u_char                   *buckets, *keys, *vids, *p, *q, *v;
    size_t                    bsize, ksize, vsize;
    ngx_uint_t                i, any_vid;
    const char               *params[4];
    ngx_http_plinth_ctx_t    *ctx;
    ngx_http_plinth_batch_t  *b;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);
    b = ctx->batch;

    if (PQntuples(res) == 0) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_NO_SUCH_BUCKET, NULL);
        return;
    }

    if (!ngx_http_plinth_may_read(ctx, res, 0, 0, PQgetvalue(res, 0, 1),
                                  NULL))
    {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ACCESS_DENIED, NULL);
        return;
    }

    if (b->body == NULL) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_MALFORMED_XML,
                              "The batch request body is too large.");
        return;
    }

    rc = ngx_http_plinth_batch_parse(r, ctx, b);
    if (rc != NGX_OK) {
        if (rc == NGX_ERROR) {
            ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }
        return;
    }

    /* three text[] literals, in request order */
    bsize = 3;
    ksize = 3;
    vsize = 3;

    for (i = 0; i < b->n; i++) {
        bsize += 2 * b->entries[i].bucket.len + 3;
        ksize += 2 * b->entries[i].key.len + 3;
        vsize += (b->entries[i].vid.len ? 2 * b->entries[i].vid.len : 4) + 3;
    }

    buckets = ngx_pnalloc(r->pool, bsize);
    keys = ngx_pnalloc(r->pool, ksize);
    vids = ngx_pnalloc(r->pool, vsize);
    if (buckets == NULL || keys == NULL || vids == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = buckets;
    q = keys;
    v = vids;
    any_vid = 0;
    *p++ = '{';
    *q++ = '{';
    *v++ = '{';

    for (i = 0; i < b->n; i++) {
        if (i) {
            *p++ = ',';
            *q++ = ',';
            *v++ = ',';
        }
        p = ngx_plinth_pg_array_elem(p, b->entries[i].bucket.data,
                                     b->entries[i].bucket.len);
        q = ngx_plinth_pg_array_elem(q, b->entries[i].key.data,
                                     b->entries[i].key.len);
        if (b->entries[i].vid.len) {
            v = ngx_plinth_pg_array_elem(v, b->entries[i].vid.data,
                                         b->entries[i].vid.len);
            any_vid = 1;
        } else {
            v = ngx_cpymem(v, "NULL", 4);
        }
    }

    *p++ = '}'; *p = '\0';
    *q++ = '}'; *q = '\0';
    *v++ = '}'; *v = '\0';

    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);
    params[1] = (char *) buckets;
    params[2] = (char *) keys;
    params[3] = (char *) vids;

    for (i = 0; i < 4; i++) {
        b->query[i] = params[i];
    }

    /* no version named: the statement without the versions branch, nor
     * the parts (a multipart entry is asked again, in batch_meta) */
    b->current = !any_vid;

    if (params[0] == NULL
        || ngx_http_plinth_pg(r, any_vid ? NGX_PLINTH_SQL_BATCH_GET
                                         : NGX_PLINTH_SQL_BATCH_GET_CURRENT,
                              any_vid ? 4 : 3, params,
                              ngx_http_plinth_batch_meta)
           != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


static unsigned
ngx_http_plinth_batch_vid(const unsigned char *p, size_t len)
{
    return ngx_http_plinth_vid_valid(p, len) ? 1 : 0;
}


/*
 * The body: the entries, validated (ngx_plinth_batch_parse.c). Malformed
 * JSON, a wrong shape, no entries or more than 10,000: 400 MalformedXML
 * (S3's code for a body that does not validate, as DeleteObjects answers);
 * a key longer than 1024 bytes: KeyTooLongError; a bad version id or a
 * range that does not parse: InvalidArgument. Nothing is read from the
 * data nodes then. NGX_DECLINED once the error was answered; NGX_ERROR:
 * no memory.
 */
static ngx_int_t
ngx_http_plinth_batch_parse(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    ngx_http_plinth_batch_t *b)
{
    size_t                          n, i;
    unsigned                        coe;
    const char                     *message;
    plinth_parse_err_e              rc;
    plinth_batch_conf_t             conf;
    plinth_batch_item_t            *items, *it;
    ngx_http_plinth_batch_entry_t  *e;

    conf.xml_options = NGX_PLINTH_XML_PARSE_OPTIONS;
    conf.max_key = NGX_PLINTH_MAX_KEY_LEN;
    conf.vid_valid = ngx_http_plinth_batch_vid;
    conf.alloc = ngx_http_plinth_pool_alloc;
    conf.ctx = r->pool;

    rc = plinth_batch_parse(b->body, b->body_len, &conf, &items, &n, &coe,
                            &message);

    if (rc == PLINTH_PARSE_INTERNAL) {
        return NGX_ERROR;
    }

    if (rc != PLINTH_PARSE_OK) {
        ngx_http_plinth_parse_error(r, rc, message, 0);
        return NGX_DECLINED;
    }

    b->entries = ngx_pcalloc(r->pool,
                             n * sizeof(ngx_http_plinth_batch_entry_t));
    if (b->entries == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        it = &items[i];
        e = &b->entries[i];

        e->err = NGX_PLINTH_ERR_MAX;
        if (it->bucket.data) {
            e->bucket.len = it->bucket.len;
            e->bucket.data = it->bucket.data;
        } else {
            e->bucket = ctx->bucket;
        }
        e->key.len = it->key.len;
        e->key.data = it->key.data;
        e->name.len = it->name.len;
        e->name.data = it->name.data;
        e->vid.len = it->vid.len;
        e->vid.data = it->vid.data;
        e->ra = (off_t) it->ra;
        e->rb = (off_t) it->rb;
        e->ranged = it->ranged;
        e->suffix = it->suffix;
    }

    b->n = n;
    b->continue_on_error = coe;

    return NGX_OK;
}


static ngx_plinth_err_e
ngx_http_plinth_batch_err(const char *code)
{
    ngx_uint_t  i;

    static const struct {
        const char         *code;
        ngx_plinth_err_e    err;
    } map[] = {
        { "NoSuchBucket", NGX_PLINTH_ERR_NO_SUCH_BUCKET },
        { "AccessDenied", NGX_PLINTH_ERR_ACCESS_DENIED },
        { "NoSuchKey", NGX_PLINTH_ERR_NO_SUCH_KEY },
        { "NoSuchVersion", NGX_PLINTH_ERR_NO_SUCH_VERSION },
        { "MethodNotAllowed", NGX_PLINTH_ERR_METHOD_NOT_ALLOWED },
        { NULL, NGX_PLINTH_ERR_INTERNAL }
    };

    for (i = 0; map[i].code; i++) {
        if (ngx_strcmp(code, map[i].code) == 0) {
            return map[i].err;
        }
    }

    return NGX_PLINTH_ERR_INTERNAL;
}


#define ngx_http_plinth_batch_off(res, row, col)                             \
    ngx_atoof((u_char *) PQgetvalue(res, row, col),                          \
              PQgetlength(res, row, col))

enum {
    BCOL_IDX = 0, BCOL_CODE, BCOL_VID, BCOL_BLOB, BCOL_SIZE, BCOL_ETAG,
    BCOL_NODES, BCOL_MTIME, BCOL_PARTS, BCOL_SEG_PART, BCOL_SEG_BLOB,
    BCOL_SEG_OFFSET, BCOL_SEG_SIZE, BCOL_SEG_BLOB_OFFSET, BCOL_SEG_NODES
};


/* One entry's rows [first, last): its error, or its version's segments. */
static ngx_int_t
ngx_http_plinth_batch_row(ngx_http_request_t *r, PGresult *res, int first,
    int last, ngx_http_plinth_batch_entry_t *e)
{
    int                    i;
    off_t                  at;
    ngx_plinth_segment_t  *seg;

    if (!PQgetisnull(res, first, BCOL_CODE)) {
        e->err = ngx_http_plinth_batch_err(PQgetvalue(res, first, BCOL_CODE));
        return NGX_OK;
    }

    if (ngx_http_plinth_copy_value(r->pool, res, first, BCOL_VID, &e->vid)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    e->size = ngx_http_plinth_batch_off(res, first, BCOL_SIZE);
    e->mtime = ngx_atotm((u_char *) PQgetvalue(res, first, BCOL_MTIME),
                         PQgetlength(res, first, BCOL_MTIME));

    if (PQgetisnull(res, first, BCOL_PARTS)) {
        e->nsegs = 1;
        e->segs = ngx_pcalloc(r->pool, sizeof(ngx_plinth_segment_t));
        if (e->segs == NULL) {
            return NGX_ERROR;
        }

        seg = &e->segs[0];
        seg->size = e->size;
        seg->part_number = 1;

        if (e->size > 0
            && (PQgetisnull(res, first, BCOL_BLOB)
                || ngx_http_plinth_copy_value(r->pool, res, first, BCOL_BLOB,
                                              &seg->blob_id) != NGX_OK))
        {
            return NGX_ERROR;
        }

        seg->nnodes = ngx_http_plinth_parse_nodes(
                          (u_char *) PQgetvalue(res, first, BCOL_NODES),
                          PQgetlength(res, first, BCOL_NODES), seg->nodes);
        return NGX_OK;
    }

    e->nsegs = last - first;
    e->segs = ngx_pcalloc(r->pool, e->nsegs * sizeof(ngx_plinth_segment_t));
    if (e->segs == NULL) {
        return NGX_ERROR;
    }

    at = 0;

    for (i = first; i < last; i++) {
        seg = &e->segs[i - first];

        if (PQgetisnull(res, i, BCOL_SEG_BLOB)
            || ngx_http_plinth_copy_value(r->pool, res, i, BCOL_SEG_BLOB,
                                          &seg->blob_id) != NGX_OK)
        {
            return NGX_ERROR;
        }

        seg->part_number = ngx_atoi((u_char *) PQgetvalue(res, i,
                                                          BCOL_SEG_PART),
                                    PQgetlength(res, i, BCOL_SEG_PART));
        seg->offset = ngx_http_plinth_batch_off(res, i, BCOL_SEG_OFFSET);
        seg->size = ngx_http_plinth_batch_off(res, i, BCOL_SEG_SIZE);
        seg->blob_offset = ngx_http_plinth_batch_off(res, i,
                                                     BCOL_SEG_BLOB_OFFSET);
        seg->nnodes = ngx_http_plinth_parse_nodes(
                          (u_char *) PQgetvalue(res, i, BCOL_SEG_NODES),
                          PQgetlength(res, i, BCOL_SEG_NODES), seg->nodes);

        if (seg->offset != at || seg->size < 0 || seg->blob_offset < 0) {
            return NGX_ERROR;
        }
        at += seg->size;
    }

    return at == e->size ? NGX_OK : NGX_ERROR;
}


static void
ngx_http_plinth_batch_meta(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    int                             row, first, rows;
    off_t                           total, size;
    u_char                         *msg;
    ngx_int_t                       idx;
    ngx_uint_t                      i, status;
    const char                     *message;
    ngx_pool_cleanup_t             *cln;
    ngx_http_plinth_ctx_t          *ctx;
    ngx_http_plinth_batch_t        *b;
    ngx_http_plinth_batch_entry_t  *e;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);
    b = ctx->batch;
    rows = PQntuples(res);
    row = 0;

    if (b->current) {
        /* sql/028: no parts. A readable multipart entry (rare in a batch
         * of samples): the whole batch is asked again with the statement
         * that has them, as GET asks again for a multipart object */
        for (row = 0; row < rows; row++) {
            if (PQgetisnull(res, row, BCOL_CODE)
                && !PQgetisnull(res, row, BCOL_PARTS))
            {
                b->current = 0;
                if (ngx_http_plinth_pg(r, NGX_PLINTH_SQL_BATCH_GET, 4,
                                       b->query, ngx_http_plinth_batch_meta)
                    != NGX_OK)
                {
                    ngx_http_plinth_finalize(r,
                                             NGX_HTTP_INTERNAL_SERVER_ERROR);
                }
                return;
            }
        }

        row = 0;
    }

    for (i = 0; i < b->n; i++) {
        e = &b->entries[i];
        first = row;

        while (row < rows) {
            idx = ngx_atoi((u_char *) PQgetvalue(res, row, BCOL_IDX),
                           PQgetlength(res, row, BCOL_IDX));
            if (idx != (ngx_int_t) i + 1) {
                break;
            }
            row++;
        }

        if (row == first
            || ngx_http_plinth_batch_row(r, res, first, row, e) != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "plinth: batch entry %ui (%V/%V) has no readable "
                          "metadata", i + 1, &e->bucket, &e->key);
            ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        if (e->err != NGX_PLINTH_ERR_MAX) {
            continue;
        }

        /* the range, against the version's size (as GetObject's) */
        e->start = 0;
        e->end = e->size;

        if (e->ranged) {
            if (e->suffix) {
                if (e->rb == 0 || e->size == 0) {
                    e->err = NGX_PLINTH_ERR_INVALID_RANGE;
                    continue;
                }
                e->start = e->rb >= e->size ? 0 : e->size - e->rb;

            } else {
                if (e->ra >= e->size) {
                    e->err = NGX_PLINTH_ERR_INVALID_RANGE;
                    continue;
                }
                e->start = e->ra;
                e->end = (e->rb < 0 || e->rb >= e->size) ? e->size
                                                         : e->rb + 1;
            }
        }
    }

    /* strict: the first entry that cannot be read is the answer */
    total = 2 * NGX_PLINTH_TAR_BLOCK;

    for (i = 0; i < b->n; i++) {
        e = &b->entries[i];

        if (e->err != NGX_PLINTH_ERR_MAX && !b->continue_on_error) {
            (void) ngx_http_plinth_err_code(e->err, &status, &message);
            msg = ngx_pnalloc(r->pool, ngx_strlen(message) + 64
                                       + e->bucket.len + e->key.len);
            if (msg == NULL) {
                ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }
            *ngx_sprintf(msg, "%s (batch entry %ui: %V/%V)", message, i + 1,
                         &e->bucket, &e->key) = '\0';
            ngx_http_plinth_error(r, e->err, (char *) msg);
            return;
        }

        total += ngx_http_plinth_batch_length(e, &size);
    }

    b->window = ((ngx_http_plinth_main_conf_t *)
                 ngx_http_get_module_main_conf(r, ngx_http_plinth_module))
                ->batch_window;
    b->multi_max = ((ngx_http_plinth_main_conf_t *)
                    ngx_http_get_module_main_conf(r, ngx_http_plinth_module))
                   ->batch_multi_max;

    if (b->multi_max) {
        b->groups = ngx_array_create(r->pool, 4,
                                     sizeof(ngx_http_plinth_batch_group_t *));
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (b->groups == NULL || cln == NULL) {
            ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
        cln->handler = ngx_http_plinth_batch_cleanup;
        cln->data = b;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = total;
    ngx_str_set(&r->headers_out.content_type, "application/x-tar");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (ngx_http_plinth_add_header(r, "x-amz-request-id", &ctx->request_id)
        != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK) {
        ngx_http_plinth_finalize(r, rc);
        return;
    }

    ctx->headers_sent = 1;
    r->write_event_handler = ngx_http_plinth_batch_wev;

    ngx_http_plinth_batch_wev(r);
}


/* The text of a .error entry: "<Code>\n<Message>\n". */
static size_t
ngx_http_plinth_batch_error_text(ngx_http_plinth_batch_entry_t *e,
    u_char *buf)
{
    ngx_uint_t   status;
    const char  *code, *message;

    code = ngx_http_plinth_err_code(e->err, &status, &message);

    if (buf == NULL) {
        return ngx_strlen(code) + ngx_strlen(message) + 2;
    }

    return ngx_sprintf(buf, "%s\n%s\n", code, message) - buf;
}


/* A PAX record "<len> <kw>=<value>\n" whose body (kw=value) has len bytes:
 * its length, which counts its own digits. */
static size_t
ngx_http_plinth_pax_record_len(size_t body)
{
    size_t  total, digits, d, n;

    digits = 1;

    for ( ;; ) {
        total = body + 2 + digits;
        for (d = 1, n = total; n >= 10; n /= 10) {
            d++;
        }
        if (d == digits) {
            return total;
        }
        digits = d;
    }
}


static size_t
ngx_http_plinth_batch_pax_len(ngx_str_t *name, off_t size)
{
    size_t  len;
    u_char  num[NGX_OFF_T_LEN];

    len = 0;

    if (name->len > 100) {
        len += ngx_http_plinth_pax_record_len(sizeof("path=") - 1
                                              + name->len);
    }

    if (size > NGX_PLINTH_TAR_MAX_OCTAL_SIZE) {
        len += ngx_http_plinth_pax_record_len(sizeof("size=") - 1
                                              + (ngx_sprintf(num, "%O", size)
                                                 - num));
    }

    return len;
}


#define ngx_http_plinth_tar_pad(n)                                           \
    (((n) + NGX_PLINTH_TAR_BLOCK - 1) / NGX_PLINTH_TAR_BLOCK                 \
     * NGX_PLINTH_TAR_BLOCK)


/* An entry's bytes in the archive; *content: its data's length. */
static off_t
ngx_http_plinth_batch_length(ngx_http_plinth_batch_entry_t *e, off_t *content)
{
    off_t      len;
    size_t     pax;
    ngx_str_t  name;

    name = e->name;

    if (e->err != NGX_PLINTH_ERR_MAX) {
        name.len += sizeof(".error") - 1;
        *content = ngx_http_plinth_batch_error_text(e, NULL);
    } else {
        *content = e->end - e->start;
    }

    pax = ngx_http_plinth_batch_pax_len(&name, *content);

    len = NGX_PLINTH_TAR_BLOCK + ngx_http_plinth_tar_pad(*content);
    if (pax) {
        len += NGX_PLINTH_TAR_BLOCK + ngx_http_plinth_tar_pad(pax);
    }

    return len;
}


static u_char *
ngx_http_plinth_tar_octal(u_char *p, size_t width, uint64_t v)
{
    size_t  i;

    /* width - 1 digits, then NUL */
    p[width - 1] = '\0';
    for (i = width - 1; i > 0; i--) {
        p[i - 1] = (u_char) ('0' + (v & 7));
        v >>= 3;
    }

    return p + width;
}


/* One ustar header block at p (zeroed by the caller). */
static u_char *
ngx_http_plinth_tar_block(u_char *p, u_char *name, size_t len, off_t size,
    time_t mtime, u_char type)
{
    ngx_uint_t  i, sum;

    ngx_memcpy(p, name, ngx_min(len, 100));
    ngx_http_plinth_tar_octal(p + 100, 8, 0644);
    ngx_http_plinth_tar_octal(p + 108, 8, 0);
    ngx_http_plinth_tar_octal(p + 116, 8, 0);
    ngx_http_plinth_tar_octal(p + 124, 12,
                              size > NGX_PLINTH_TAR_MAX_OCTAL_SIZE
                              ? 0 : (uint64_t) size);
    ngx_http_plinth_tar_octal(p + 136, 12,
                              mtime > 0 ? (uint64_t) mtime : 0);
    ngx_memset(p + 148, ' ', 8);
    p[156] = type;
    ngx_memcpy(p + 257, "ustar", 6);
    ngx_memcpy(p + 263, "00", 2);

    sum = 0;
    for (i = 0; i < NGX_PLINTH_TAR_BLOCK; i++) {
        sum += p[i];
    }

    ngx_http_plinth_tar_octal(p + 148, 7, sum);
    p[155] = ' ';

    return p + NGX_PLINTH_TAR_BLOCK;
}


static u_char *
ngx_http_plinth_pax_record(u_char *p, const char *kw, u_char *v, size_t len)
{
    size_t  total;

    total = ngx_http_plinth_pax_record_len(ngx_strlen(kw) + 1 + len);

    return ngx_sprintf(p, "%uz %s=%*s\n", total, kw, len, v);
}


/*
 * The bytes that come before an entry's data: the padding of the previous
 * entry's data (pad bytes), a PAX header when needed, the ustar header;
 * for an error entry its text and padding too.
 */
static ngx_chain_t *
ngx_http_plinth_batch_header(ngx_http_request_t *r,
    ngx_http_plinth_batch_entry_t *e, off_t pad)
{
    off_t         content;
    size_t        pax, size, text;
    u_char       *p, num[NGX_OFF_T_LEN];
    ngx_buf_t    *buf;
    ngx_str_t     name;
    ngx_chain_t  *cl;

    name = e->name;
    text = 0;

    if (e->err != NGX_PLINTH_ERR_MAX) {
        name.len += sizeof(".error") - 1;
        name.data = ngx_pnalloc(r->pool, name.len);
        if (name.data == NULL) {
            return NULL;
        }
        ngx_memcpy(ngx_cpymem(name.data, e->name.data, e->name.len),
                   ".error", sizeof(".error") - 1);
        text = ngx_http_plinth_batch_error_text(e, NULL);
        content = text;
    } else {
        content = e->end - e->start;
    }

    pax = ngx_http_plinth_batch_pax_len(&name, content);

    size = pad + NGX_PLINTH_TAR_BLOCK;
    if (pax) {
        size += NGX_PLINTH_TAR_BLOCK + ngx_http_plinth_tar_pad(pax);
    }
    size += ngx_http_plinth_tar_pad(text);

    buf = ngx_calloc_buf(r->pool);
    cl = ngx_alloc_chain_link(r->pool);
    p = ngx_pcalloc(r->pool, size);
    if (buf == NULL || cl == NULL || p == NULL) {
        return NULL;
    }

    buf->pos = p;
    buf->start = p;
    buf->memory = 1;
    cl->buf = buf;
    cl->next = NULL;

    p += pad;

    if (pax) {
        p = ngx_http_plinth_tar_block(p, (u_char *) "././@PaxHeader",
                                      sizeof("././@PaxHeader") - 1, pax,
                                      e->mtime, 'x');
        if (name.len > 100) {
            p = ngx_http_plinth_pax_record(p, "path", name.data, name.len);
        }
        if (content > NGX_PLINTH_TAR_MAX_OCTAL_SIZE) {
            p = ngx_http_plinth_pax_record(p, "size", num,
                                           ngx_sprintf(num, "%O", content)
                                           - num);
        }
        p = buf->pos + pad + NGX_PLINTH_TAR_BLOCK
            + ngx_http_plinth_tar_pad(pax);
    }

    p = ngx_http_plinth_tar_block(p, name.data, name.len, content, e->mtime,
                                  '0');

    if (text) {
        ngx_http_plinth_batch_error_text(e, p);
        p += ngx_http_plinth_tar_pad(text);
    }

    buf->last = p;
    buf->end = p;

    return cl;
}


/*
 * The main request's write handler: woken when an entry's reader
 * finishes, and by write events once the readers are done. Starts entries
 * up to the window, gives back sent buffers, ends the archive.
 */
static void
ngx_http_plinth_batch_wev(ngx_http_request_t *r)
{
    size_t                    held;
    ngx_int_t                 rc;
    ngx_buf_t                *buf;
    ngx_chain_t              *cl;
    ngx_http_plinth_ctx_t    *ctx;
    ngx_http_plinth_batch_t  *b;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (ctx == NULL || ctx->finalized || ctx->batch == NULL) {
        return;
    }

    b = ctx->batch;

    if (b->trailer) {
        return;
    }

again:

    /* the entries whose readers are done (their bytes are out) */
    while (b->head < b->next
           && (b->entries[b->head].sr == NULL
               || b->entries[b->head].sr->done))
    {
        b->head++;
    }

    ngx_http_plinth_batch_free(r, b);

    b->held_wait = 0;

    if (ngx_http_plinth_batch_pump(r, ctx, b) != NGX_OK) {
        ngx_http_plinth_finalize(r, NGX_ERROR);
        return;
    }

    /* the turn goes on: the held output up to the next reader is sent
     * and that reader woken (nothing else wakes it); and what the socket
     * did not take is retried (multi-read answers wait for it) */
    if (r == r->connection->data && (r->postponed || r->out)
        && ngx_http_output_filter(r, NULL) == NGX_ERROR)
    {
        ngx_http_plinth_finalize(r, NGX_ERROR);
        return;
    }

    if (b->held_wait) {
        /* the pump waits for answers to be sent: if this output took
         * the last of them, no event would come to say so */
        held = b->held;
        ngx_http_plinth_batch_free(r, b);
        if (b->held < held) {
            goto again;
        }
    }

    if (b->next < b->n || b->head < b->n) {
        return;
    }

    /* the last entry's padding, then two zero blocks */
    b->trailer = 1;

    buf = ngx_calloc_buf(r->pool);
    cl = ngx_alloc_chain_link(r->pool);
    if (buf == NULL || cl == NULL) {
        ngx_http_plinth_finalize(r, NGX_ERROR);
        return;
    }

    buf->memory = 1;
    buf->pos = ngx_http_plinth_tar_zero;
    buf->last = ngx_http_plinth_tar_zero + 2 * NGX_PLINTH_TAR_BLOCK;
    buf->last_buf = 1;
    cl->buf = buf;
    cl->next = NULL;

    /* padding of the last entry's data */
    if (b->n) {
        off_t  content, pad;

        ngx_http_plinth_batch_length(&b->entries[b->n - 1], &content);
        pad = ngx_http_plinth_tar_pad(content) - content;
        if (b->entries[b->n - 1].err != NGX_PLINTH_ERR_MAX) {
            pad = 0;    /* an error entry's padding went with its text */
        }
        if (pad) {
            ngx_buf_t    *pb;
            ngx_chain_t  *pl;

            pb = ngx_calloc_buf(r->pool);
            pl = ngx_alloc_chain_link(r->pool);
            if (pb == NULL || pl == NULL) {
                ngx_http_plinth_finalize(r, NGX_ERROR);
                return;
            }
            pb->memory = 1;
            pb->pos = ngx_http_plinth_tar_zero;
            pb->last = ngx_http_plinth_tar_zero + pad;
            pl->buf = pb;
            pl->next = cl;
            cl = pl;
        }
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    rc = ngx_http_output_filter(r, cl);
    ngx_http_plinth_finalize(r, rc == NGX_ERROR ? NGX_ERROR : NGX_OK);
}


/*
 * The pump: the entries from b->next on, in order, while the window has
 * room. The entries whose bytes are in multi-read answers go to the
 * output in runs of up to NGX_PLINTH_BATCH_RUN bytes: one writev for
 * many, where one an entry was a system call and a wake-up of the client
 * per 10 KiB sample. A run goes out before anything else does (a
 * reader's bytes follow the main request's output in order) and whenever
 * the pump stops (ngx_http_plinth_batch_run).
 */
static ngx_int_t
ngx_http_plinth_batch_pump(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    ngx_http_plinth_batch_t *b)
{
    off_t                           pad, content;
    size_t                          size;
    ngx_chain_t                    *cl, *run, **last;
    ngx_http_plinth_batch_entry_t  *e, *prev;

    run = NULL;
    last = &run;
    size = 0;

    while (b->next < b->n && b->next - b->head < b->window) {
        if (b->pending) {
            /* a round of multi-reads in flight: its end wakes us */
            return ngx_http_plinth_batch_run(r, &run);
        }

        e = &b->entries[b->next];

        if (b->next >= b->round_end && ngx_http_plinth_batch_small(b, e)) {
            if (b->held >= 2 * NGX_PLINTH_BATCH_ROUND_BYTES) {
                /* the answers read so far are not all sent yet: a write
                 * event, a reader's end, or the output just after this
                 * (ngx_http_plinth_batch_wev) wakes us */
                b->held_wait = 1;
                ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                               "plinth batch: %uz bytes of multi-read "
                               "answers not sent yet, waiting", b->held);
                return ngx_http_plinth_batch_run(r, &run);
            }
            if (ngx_http_plinth_batch_round(r, ctx, b) != NGX_OK) {
                return NGX_ERROR;
            }
            if (b->pending) {
                return ngx_http_plinth_batch_run(r, &run);
            }
        }

        /* the padding after the previous entry's data */
        pad = 0;
        if (b->next > 0) {
            prev = &b->entries[b->next - 1];
            if (prev->err == NGX_PLINTH_ERR_MAX) {
                ngx_http_plinth_batch_length(prev, &content);
                pad = ngx_http_plinth_tar_pad(content) - content;
            }
        }

        cl = ngx_http_plinth_batch_header(r, e, pad);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        if (e->mdata) {
            /* read and checked by its multi-read: its bytes follow the
             * header, from the main request (in order, as a header) */
            ngx_buf_t    *db;
            ngx_chain_t  *dl;

            db = ngx_calloc_buf(r->pool);
            dl = ngx_alloc_chain_link(r->pool);
            if (db == NULL || dl == NULL) {
                return NGX_ERROR;
            }
            db->memory = 1;
            db->pos = e->mdata;
            db->last = e->mdata + (e->end - e->start);
            dl->buf = db;
            dl->next = NULL;
            cl->next = dl;
            e->mbuf = db;

            /* onto the run, which goes out when full */
            *last = cl;
            last = &dl->next;
            size += NGX_PLINTH_TAR_BLOCK + (e->end - e->start);

            if (size >= NGX_PLINTH_BATCH_RUN) {
                if (ngx_http_plinth_batch_run(r, &run) != NGX_OK) {
                    return NGX_ERROR;
                }
                last = &run;
                size = 0;
            }

        } else {
            /* what is before it first, then its header */
            if (ngx_http_plinth_batch_run(r, &run) != NGX_OK
                || ngx_http_output_filter(r, cl) == NGX_ERROR)
            {
                return NGX_ERROR;
            }
            last = &run;
            size = 0;
        }

        b->next++;

        if (e->mdata) {
            /* one read, its bytes egress (as a reader's end counts it) */
            ngx_http_plinth_usage_record_read(r, &e->bucket, &e->key,
                                              e->end - e->start);
            if (b->head == b->next - 1) {
                b->head++;
            }
            continue;
        }

        if (e->err != NGX_PLINTH_ERR_MAX || e->end == e->start) {
            if (e->err == NGX_PLINTH_ERR_MAX) {
                /* an empty entry: one read, no bytes (cost, access) */
                ngx_http_plinth_usage_record_read(r, &e->bucket, &e->key, 0);
            }
            if (b->head == b->next - 1) {
                b->head++;
            }
            continue;
        }

        if (ngx_http_plinth_batch_start(r, ctx, e) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_plinth_batch_run(r, &run);
}


/*
 * Multi-read buffers (NGX_PLINTH_BATCH_BUF_SIZE bytes, about 1 MiB): a
 * worker keeps up to NGX_PLINTH_BATCH_BUFS_KEPT of those given back for
 * the next multi-reads. Each one allocated afresh was mapped and faulted
 * in page by page as nginx read the answer into it, and unmapped when it
 * was freed: about a tenth of the gateway's CPU under batch GETs.
 */
static u_char      *ngx_http_plinth_batch_bufs[NGX_PLINTH_BATCH_BUFS_KEPT];
static ngx_uint_t   ngx_http_plinth_batch_nbufs;


static u_char *
ngx_http_plinth_batch_buf_get(ngx_log_t *log)
{
    if (ngx_http_plinth_batch_nbufs) {
        return ngx_http_plinth_batch_bufs[--ngx_http_plinth_batch_nbufs];
    }

    return ngx_alloc(NGX_PLINTH_BATCH_BUF_SIZE, log);
}


static void
ngx_http_plinth_batch_buf_put(u_char *buf)
{
    if (ngx_http_plinth_batch_nbufs < NGX_PLINTH_BATCH_BUFS_KEPT) {
        ngx_http_plinth_batch_bufs[ngx_http_plinth_batch_nbufs++] = buf;
        return;
    }

    ngx_free(buf);
}


/* A group's upstream buffer back to the worker, once nothing reads or
 * sends from it. */
static void
ngx_http_plinth_batch_group_buf_free(ngx_http_plinth_batch_group_t *g)
{
    g->buf = NULL;

    if (g->proxy_buf) {
        ngx_http_plinth_batch_buf_put(g->proxy_buf);
        g->proxy_buf = NULL;
    }
}


/* The request's end: the groups' buffers not given back yet (a batch cut
 * short); every subrequest using them has ended by now. */
static void
ngx_http_plinth_batch_cleanup(void *data)
{
    ngx_http_plinth_batch_t *b = data;

    ngx_uint_t                      i;
    ngx_http_plinth_batch_group_t **gs;

    gs = b->groups->elts;

    for (i = 0; i < b->groups->nelts; i++) {
        ngx_http_plinth_batch_group_buf_free(gs[i]);
    }
}


/* A run of the pump's output, if any, to the client. */
static ngx_int_t
ngx_http_plinth_batch_run(ngx_http_request_t *r, ngx_chain_t **run)
{
    ngx_chain_t  *cl;

    cl = *run;
    *run = NULL;

    if (cl && ngx_http_output_filter(r, cl) == NGX_ERROR) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* The entry's reader: a subrequest to the S3 location, served by
 * ngx_http_plinth_read_child (ngx_plinth_fanout.c). */
static ngx_int_t
ngx_http_plinth_batch_start(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    ngx_http_plinth_batch_entry_t *e)
{
    ngx_http_request_t           *sr;
    ngx_http_plinth_ctx_t        *rctx;
    ngx_http_post_subrequest_t   *ps;

    rctx = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_ctx_t));
    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (rctx == NULL || ps == NULL) {
        return NGX_ERROR;
    }

    rctx->kind = NGX_PLINTH_CTX_BATCH_ENTRY;
    rctx->request_id = ctx->request_id;
    rctx->bucket = e->bucket;
    rctx->key = e->key;
    rctx->batch = e;
    rctx->obj.size = e->size;
    rctx->obj.segs = e->segs;
    rctx->obj.nsegs = e->nsegs;

    if (e->mbad && e->nsegs == 1 && e->segs[0].nnodes > 1) {
        /* its multi-read's node failed it (and was reported): the other
         * replicas, in their order, as GET's next tries */
        ngx_uint_t             i;
        ngx_plinth_segment_t  *seg;

        seg = ngx_palloc(r->pool, sizeof(ngx_plinth_segment_t));
        if (seg == NULL) {
            return NGX_ERROR;
        }
        *seg = e->segs[0];
        seg->nnodes = 0;
        for (i = 0; i < e->segs[0].nnodes; i++) {
            if (e->segs[0].nodes[i] != e->mbad) {
                seg->nodes[seg->nnodes++] = e->segs[0].nodes[i];
            }
        }
        rctx->obj.segs = seg;
    }
    rctx->start = e->start;
    rctx->end = e->end;
    rctx->headers_sent = 1;     /* the archive's headers are out */
    rctx->body_error = NGX_PLINTH_ERR_MAX;

    rctx->spent_bufs = ngx_array_create(r->pool, 2, sizeof(u_char *));
    if (rctx->spent_bufs == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_plinth_batch_read_done;
    ps->data = e;

    if (ngx_http_subrequest(r, &r->uri, NULL, &sr, ps, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    /* a GET without a body: the batch's Content-Length is not the
     * reads' (headers_in is the reader's own copy of the main's) */
    sr->request_body = NULL;
    sr->headers_in.content_length = NULL;
    sr->headers_in.content_length_n = -1;
    sr->headers_in.transfer_encoding = NULL;
    sr->headers_in.chunked = 0;
    ngx_http_set_ctx(sr, rctx, ngx_http_plinth_module);

    e->sr = sr;
    e->rctx = rctx;

    return NGX_OK;
}


static ngx_int_t
ngx_http_plinth_batch_read_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_plinth_batch_entry_t *e = data;

    if (e->read) {
        return NGX_OK;
    }

    e->read = 1;

    if (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE
        || e->rctx->delivered != e->end - e->start)
    {
        /* the archive has begun: only a cut connection tells the client
         * (the error, not NGX_OK, goes back to finalize the request) */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "plinth: batch entry %V/%V failed after %O of %O "
                      "bytes: cutting the connection", &e->bucket, &e->key,
                      e->rctx->delivered, e->end - e->start);
        return NGX_ERROR;
    }

    /* one read of the entry's key, its bytes egress of its bucket, as a
     * GET's (ngx_plinth_usage.c) */
    ngx_http_plinth_usage_record_read(r->main, &e->bucket, &e->key,
                                      e->end - e->start);

    return NGX_OK;
}


/*
 * The proxy buffers of entries already sent (r->out empty: every byte
 * handed to the output chain is on the socket) go back to the pool.
 */
static void
ngx_http_plinth_batch_free(ngx_http_request_t *r, ngx_http_plinth_batch_t *b)
{
    u_char                        **buf;
    ngx_uint_t                      i;
    ngx_http_plinth_batch_entry_t  *e;
    ngx_http_plinth_batch_group_t **gs;

    /* multi-read answers, once every byte taken from them is sent */
    gs = b->groups ? b->groups->elts : NULL;

    while (gs && b->gfreed < b->groups->nelts) {
        ngx_http_plinth_batch_group_t  *g = gs[b->gfreed];

        if (!g->done || g->idx[g->n - 1] >= b->next) {
            break;
        }

        for (i = 0; i < g->n; i++) {
            e = &b->entries[g->idx[i]];
            if (e->mbuf && e->mbuf->pos != e->mbuf->last) {
                break;
            }
        }

        if (i < g->n) {
            break;
        }

        if (g->buf && !g->direct) {
            ngx_pfree(r->pool, g->buf);
        }
        if (g->cap) {
            b->held -= g->cap;      /* counted from its header on */
            g->cap = 0;
        }
        ngx_http_plinth_batch_group_buf_free(g);
        b->gfreed++;
    }

    if (r->out) {
        return;
    }

    for ( /* void */ ; b->freed < b->head; b->freed++) {
        e = &b->entries[b->freed];

        if (e->rctx == NULL || e->freed) {
            continue;
        }

        e->freed = 1;
        buf = e->rctx->spent_bufs->elts;

        for (i = 0; i < e->rctx->spent_bufs->nelts; i++) {
            ngx_pfree(r->pool, buf[i]);
        }
    }
}



/*
 * Multi-reads. An entry of at most plinth_batch_multi_max bytes from one
 * segment is "small": rather than a reader of its own (a subrequest, and
 * a data-node request, per entry), the small entries of the next round
 * (up to NGX_PLINTH_BATCH_ROUND_* entries and bytes) are grouped by the
 * replica a GET would try first, and each group is read with one
 * POST /blobs/multi to that node: one background subrequest whose answer
 * is kept in memory (ngx_http_plinth_batch_multi_body). The data node
 * checks every block before it sends an item's bytes and gives each item
 * its own status. When the round's answers are in, the entries are sent
 * in request order from the main request: a small entry's bytes from its
 * group's answer, or, when its multi-read did not return it whole and
 * checked, through a reader as before, which tries the other replicas
 * first (a missing or corrupt copy is reported to repaird here, as GET's
 * reads report it). An answer is freed once every byte taken from it has
 * been sent; a round is planned only while less than two rounds' worth
 * of answers (2 x NGX_PLINTH_BATCH_ROUND_BYTES) are held, and the pump
 * waits for sends otherwise (ngx_http_plinth_batch_wev wakes it).
 */

static ngx_uint_t
ngx_http_plinth_batch_small(ngx_http_plinth_batch_t *b,
    ngx_http_plinth_batch_entry_t *e)
{
    return b->multi_max
           && e->err == NGX_PLINTH_ERR_MAX
           && e->end > e->start
           && (size_t) (e->end - e->start) <= b->multi_max
           && e->nsegs == 1
           && e->segs[0].nnodes > 0
           && e->segs[0].blob_id.len == 32;
}


/* The replica a GET tries first: in placement order, online ones first. */
static uint32_t
ngx_http_plinth_batch_first_node(ngx_plinth_segment_t *seg)
{
    ngx_uint_t  i;

    for (i = 0; i < seg->nnodes; i++) {
        if (!ngx_http_plinth_health_offline(seg->nodes[i])) {
            return seg->nodes[i];
        }
    }

    return seg->nodes[0];
}


static ngx_int_t
ngx_http_plinth_batch_round(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    ngx_http_plinth_batch_t *b)
{
    size_t                          len, total;
    uint32_t                        node;
    ngx_uint_t                      i, k, ng;
    ngx_http_plinth_batch_entry_t  *e;
    ngx_http_plinth_batch_group_t  *g, *gs[NGX_PLINTH_BATCH_ROUND_GROUPS],
                                  **slot;

    ng = 0;
    total = 0;

    for (i = b->next;
         i < b->n && i - b->next < NGX_PLINTH_BATCH_ROUND_ITEMS;
         i++)
    {
        e = &b->entries[i];

        if (!ngx_http_plinth_batch_small(b, e)) {
            continue;
        }

        len = (size_t) (e->end - e->start);
        node = ngx_http_plinth_batch_first_node(&e->segs[0]);

        g = NULL;
        for (k = 0; k < ng; k++) {
            if (gs[k]->node == node) {
                g = gs[k];
                break;
            }
        }

        if (total + len > NGX_PLINTH_BATCH_ROUND_BYTES
            || (g == NULL && ng == NGX_PLINTH_BATCH_ROUND_GROUPS)
            || (g && (g->n == NGX_PLINTH_BATCH_GROUP_ITEMS
                      || g->bytes + len > NGX_PLINTH_BATCH_GROUP_BYTES)))
        {
            if (ng) {
                break;      /* the next round starts here */
            }
        }

        if (g == NULL) {
            g = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_batch_group_t));
            if (g == NULL) {
                return NGX_ERROR;
            }
            g->idx = ngx_palloc(r->pool, NGX_PLINTH_BATCH_GROUP_ITEMS
                                         * sizeof(ngx_uint_t));
            if (g->idx == NULL) {
                return NGX_ERROR;
            }
            g->b = b;
            g->r = r;
            g->node = node;
            gs[ng++] = g;
        }

        g->idx[g->n++] = i;
        g->bytes += len;
        total += len;
        e->group = g;
    }

    b->round_end = i;

    for (k = 0; k < ng; k++) {
        slot = ngx_array_push(b->groups);
        if (slot == NULL) {
            return NGX_ERROR;
        }
        *slot = gs[k];

        if (ngx_http_plinth_batch_multi(r, ctx, gs[k]) != NGX_OK) {
            return NGX_ERROR;
        }

        b->pending++;
    }

    return NGX_OK;
}


/* One group's POST /blobs/multi: a background subrequest, body in memory. */
static ngx_int_t
ngx_http_plinth_batch_multi(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    ngx_http_plinth_batch_group_t *g)
{
    size_t                          len;
    u_char                         *body;
    ngx_str_t                       uri;
    ngx_buf_t                      *buf;
    ngx_uint_t                      i;
    ngx_chain_t                    *cl;
    ngx_http_request_t             *sr;
    ngx_plinth_segment_t           *seg;
    ngx_http_request_body_t        *rb;
    ngx_http_plinth_sr_ctx_t       *sctx;
    ngx_http_post_subrequest_t     *ps;
    ngx_http_plinth_batch_entry_t  *e;
    ngx_http_plinth_main_conf_t    *pmcf;
    Plinth__MultiReadRequest        req = PLINTH__MULTI_READ_REQUEST__INIT;
    Plinth__MultiReadItem          *items, **ptrs;

    static ngx_str_t  multi = ngx_string("multi");
    static ngx_str_t  post = ngx_string("POST");

    items = ngx_palloc(r->pool, g->n * sizeof(Plinth__MultiReadItem));
    ptrs = ngx_palloc(r->pool, g->n * sizeof(Plinth__MultiReadItem *));
    if (items == NULL || ptrs == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < g->n; i++) {
        e = &g->b->entries[g->idx[i]];
        seg = &e->segs[0];

        plinth__multi_read_item__init(&items[i]);
        items[i].id = (char *) ngx_http_plinth_cstr(r->pool, &seg->blob_id);
        if (items[i].id == NULL) {
            return NGX_ERROR;
        }
        items[i].offset = (uint64_t) (seg->blob_offset + e->start
                                      - seg->offset);
        items[i].length = (uint64_t) (e->end - e->start);
        ptrs[i] = &items[i];
    }

    req.n_items = g->n;
    req.items = ptrs;

    len = protobuf_c_message_get_packed_size(&req.base);
    body = ngx_palloc(r->pool, len);
    buf = ngx_calloc_buf(r->pool);
    cl = ngx_alloc_chain_link(r->pool);
    rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    sctx = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_sr_ctx_t));
    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);
    uri.len = pmcf->blob_location.len + multi.len;
    uri.data = ngx_pnalloc(r->pool, uri.len);
    if (body == NULL || buf == NULL || cl == NULL || rb == NULL
        || sctx == NULL || ps == NULL || uri.data == NULL)
    {
        return NGX_ERROR;
    }

    (void) protobuf_c_message_pack(&req.base, body);

    buf->memory = 1;
    buf->pos = body;
    buf->last = body + len;
    buf->last_buf = 1;
    cl->buf = buf;
    cl->next = NULL;
    rb->bufs = cl;

    ngx_memcpy(ngx_cpymem(uri.data, pmcf->blob_location.data,
                          pmcf->blob_location.len),
               multi.data, multi.len);

    sctx->parent = ctx;
    sctx->nodes[0] = g->node;
    sctx->nnodes = 1;
    sctx->multi = g;
    sctx->bufsize = NGX_PLINTH_BATCH_BUF_SIZE;
    sctx->buf = ngx_http_plinth_batch_buf_get(r->connection->log);
    if (sctx->buf == NULL) {
        return NGX_ERROR;
    }
    g->proxy_buf = sctx->buf;

    ps->handler = ngx_http_plinth_batch_multi_done;
    ps->data = g;

    if (ngx_http_subrequest(r, &uri, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_BACKGROUND)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sctx->sr = sr;
    ngx_http_set_ctx(sr, sctx, ngx_http_plinth_module);

    sr->method = NGX_HTTP_POST;
    sr->method_name = post;
    sr->request_body = rb;
    sr->headers_in.content_length = NULL;
    sr->headers_in.content_length_n = (off_t) len;
    sr->headers_in.transfer_encoding = NULL;
    sr->headers_in.chunked = 0;

    return NGX_OK;
}


/* The multi-read's answer status: only a 200 of a plausible size is kept. */
ngx_int_t
ngx_http_plinth_batch_multi_header(ngx_http_request_t *r,
    ngx_http_plinth_sr_ctx_t *sctx)
{
    off_t                           len;
    ngx_http_plinth_batch_group_t  *g = sctx->multi;

    g->status = r->headers_out.status;
    len = r->headers_out.content_length_n;

    if (g->status != NGX_HTTP_OK || len <= 0
        || (size_t) len > g->bytes + g->n * NGX_PLINTH_BATCH_FRAME_MAX)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "plinth: multi-read of %ui blobs from data node %uD "
                      "answered %ui (length %O): read one by one",
                      g->n, g->node, g->status, len);
        g->failed = 1;
        return NGX_OK;
    }

    g->cap = (size_t) len;
    g->b->held += g->cap;

    return NGX_OK;
}


/*
 * Its bytes stay in the group's buffer, never go to the client. The
 * upstream buffer (sctx->bufsize) has room for the answer's header and
 * the whole answer after it, and the answer is read into it without a
 * copy: nginx's unbuffered proxy reads each part behind the last
 * (u->buffer.last) and, once every part is passed on, starts over at
 * u->buffer.start; moving that start to the end of the bytes kept makes
 * the next part land behind them. The first bytes decide: when they are
 * not in the upstream buffer with room behind them for the rest, the
 * answer is copied into a buffer of its own as it comes.
 */
ngx_int_t
ngx_http_plinth_batch_multi_body(ngx_http_request_t *r,
    ngx_http_plinth_sr_ctx_t *sctx, ngx_chain_t *in)
{
    size_t                          size;
    ngx_buf_t                      *ub;
    ngx_chain_t                    *cl;
    ngx_http_plinth_batch_group_t  *g = sctx->multi;

    ub = r->upstream ? &r->upstream->buffer : NULL;

    for (cl = in; cl; cl = cl->next) {
        if (ngx_buf_in_memory(cl->buf)) {
            size = cl->buf->last - cl->buf->pos;

            if (!g->failed && g->buf == NULL && size) {
                if (ub && ub->start && cl->buf->pos >= ub->start
                    && cl->buf->pos <= ub->end
                    && (size_t) (ub->end - cl->buf->pos) >= g->cap)
                {
                    g->buf = cl->buf->pos;
                    g->direct = 1;

                } else {
                    g->buf = ngx_palloc(g->r->pool, g->cap);
                    if (g->buf == NULL) {
                        g->failed = 1;
                    }
                }
            }

            if (g->failed) {
                /* dropped: the entries are read one by one */

            } else if (size > g->cap - g->len) {
                g->failed = 1;

            } else if (g->direct) {
                if (cl->buf->pos == g->buf + g->len) {
                    g->len += size;
                } else {
                    g->failed = 1;      /* not where the last part ended */
                }

            } else {
                ngx_memcpy(g->buf + g->len, cl->buf->pos, size);
                g->len += size;
            }

            cl->buf->pos = cl->buf->last;
        }

        if (cl->buf->in_file) {
            g->failed = 1;      /* never: the answer is not buffered */
            cl->buf->file_pos = cl->buf->file_last;
        }
    }

    if (g->direct && !g->failed) {
        ub->start = g->buf + g->len;    /* the next part goes behind */
    }

    return NGX_OK;
}


/* One frame of the answer: the entry's bytes, or why not. */
static int
ngx_http_plinth_batch_frame(void *arg, uint32_t index, const char *code,
    const unsigned char *data, uint64_t length, uint64_t size)
{
    ngx_http_plinth_batch_group_t  *g = arg;

    ngx_http_plinth_batch_entry_t  *e;

    if (index != g->seen || index >= g->n) {
        return 1;       /* out of order: the rest is read one by one */
    }

    g->seen++;
    e = &g->b->entries[g->idx[index]];

    if (code[0] == '\0' && data
        && length == (uint64_t) (e->end - e->start))
    {
        e->mdata = (u_char *) data;
        return 0;
    }

    ngx_log_error(NGX_LOG_WARN, g->r->connection->log, 0,
                  "plinth: data node %uD answered \"%s\" for blob %V "
                  "(batch entry %V/%V): reading it from another replica",
                  g->node, code, &e->segs[0].blob_id, &e->bucket, &e->key);

    e->mbad = g->node;
    ngx_http_plinth_metrics_node_error(g->node);

    /* as GET's reads report a 404 or a 500 of a replica */
    if (ngx_strcmp(code, "not_found") == 0) {
        ngx_http_plinth_report_bad_replica(g->r->connection->log,
                                           &e->segs[0].blob_id, g->node,
                                           "missing");

    } else if (ngx_strcmp(code, "corrupt") == 0
               || ngx_strcmp(code, "io_error") == 0)
    {
        ngx_http_plinth_report_bad_replica(g->r->connection->log,
                                           &e->segs[0].blob_id, g->node,
                                           "corrupt");
    }

    return 0;
}


static ngx_int_t
ngx_http_plinth_batch_multi_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_plinth_batch_group_t *g = data;

    ngx_uint_t                      i;
    ngx_http_plinth_batch_entry_t  *e;

    if (g->done) {
        return NGX_OK;
    }

    g->done = 1;
    g->b->pending--;

    if (!g->failed && g->status == NGX_HTTP_OK && g->buf
        && g->len == g->cap && rc != NGX_ERROR
        && rc < NGX_HTTP_SPECIAL_RESPONSE)
    {
        if (plinth_multi_parse(g->buf, g->len, ngx_http_plinth_batch_frame,
                               g)
            != 0)
        {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "plinth: multi-read answer of data node %uD does "
                          "not parse after %ui of %ui frames", g->node,
                          g->seen, g->n);
        }

    } else if (!g->failed) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "plinth: multi-read of %ui blobs from data node %uD "
                      "ended after %uz of %uz bytes: read one by one",
                      g->n, g->node, g->len, g->cap);
        g->failed = 1;
    }

    if (g->seen < g->n) {
        ngx_http_plinth_metrics_node_error(g->node);

        for (i = g->seen; i < g->n; i++) {
            e = &g->b->entries[g->idx[i]];
            e->mbad = g->node;
        }
    }

    /* a background subrequest does not wake its parent itself */
    if (ngx_http_post_request(g->r, NULL) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}
