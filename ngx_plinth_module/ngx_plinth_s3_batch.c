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
 * (plinth_batch_get, sql/020). Then every entry is known: strict mode (the
 * default) answers the first entry that cannot be read with its S3 error
 * before any byte is sent; continueOnError puts a "<name>.error" text entry
 * ("<Code>\n<Message>\n") in its place. So the archive's exact length is
 * known before the first byte: it is sent as Content-Length.
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
 */

#include "ngx_plinth.h"
#include <libxml/parser.h>
#include "ngx_plinth_batch_parse.h"


#define NGX_PLINTH_BATCH_MAX_BODY     (16 * 1024 * 1024)
#define NGX_PLINTH_TAR_BLOCK          512
#define NGX_PLINTH_TAR_MAX_OCTAL_SIZE 077777777777LL


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
} ngx_http_plinth_batch_entry_t;


typedef struct {
    ngx_http_plinth_batch_entry_t *entries;
    ngx_uint_t                    n;
    ngx_uint_t                    next;       /* first entry not started */
    ngx_uint_t                    head;       /* first entry not sent */
    ngx_uint_t                    freed;      /* first entry not freed */
    ngx_uint_t                    window;
    unsigned                      continue_on_error:1;
    unsigned                      trailer:1;
    u_char                       *body;
    size_t                        body_len;
} ngx_http_plinth_batch_t;


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
static void ngx_http_plinth_batch_entry_wev(ngx_http_request_t *r);
static void ngx_http_plinth_batch_free(ngx_http_request_t *r,
    ngx_http_plinth_batch_t *b);


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
    ngx_uint_t                i;
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

    if (params[0] == NULL
        || ngx_http_plinth_pg(r, NGX_PLINTH_SQL_BATCH_GET, 4, params,
                              ngx_http_plinth_batch_meta)
           != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


/* aligned: the parser puts its items (int64_t, size_t) there too */
static void *
ngx_http_plinth_batch_alloc(void *pool, size_t size)
{
    return ngx_palloc(pool, size);
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
    plinth_batch_err_e              rc;
    plinth_batch_conf_t             conf;
    plinth_batch_item_t            *items, *it;
    ngx_http_plinth_batch_entry_t  *e;

    conf.xml_options = NGX_PLINTH_XML_PARSE_OPTIONS;
    conf.max_key = NGX_PLINTH_MAX_KEY_LEN;
    conf.vid_valid = ngx_http_plinth_batch_vid;
    conf.alloc = ngx_http_plinth_batch_alloc;
    conf.ctx = r->pool;

    rc = plinth_batch_parse(b->body, b->body_len, &conf, &items, &n, &coe,
                            &message);

    switch (rc) {

    case PLINTH_BATCH_OK:
        break;

    case PLINTH_BATCH_INTERNAL:
        return NGX_ERROR;

    case PLINTH_BATCH_KEY_TOO_LONG:
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_KEY_TOO_LONG, message);
        return NGX_DECLINED;

    case PLINTH_BATCH_INVALID_ARGUMENT:
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT, message);
        return NGX_DECLINED;

    default: /* PLINTH_BATCH_MALFORMED */
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_MALFORMED_XML, message);
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

    /* the entries whose readers are done (their bytes are out) */
    while (b->head < b->next
           && (b->entries[b->head].sr == NULL
               || b->entries[b->head].sr->done))
    {
        b->head++;
    }

    ngx_http_plinth_batch_free(r, b);

    if (ngx_http_plinth_batch_pump(r, ctx, b) != NGX_OK) {
        ngx_http_plinth_finalize(r, NGX_ERROR);
        return;
    }

    /* the turn goes on: the held output up to the next reader is sent
     * and that reader woken (nothing else wakes it) */
    if (r == r->connection->data && r->postponed
        && ngx_http_output_filter(r, NULL) == NGX_ERROR)
    {
        ngx_http_plinth_finalize(r, NGX_ERROR);
        return;
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


static ngx_int_t
ngx_http_plinth_batch_pump(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    ngx_http_plinth_batch_t *b)
{
    off_t                           pad, content;
    ngx_chain_t                    *cl;
    ngx_http_plinth_batch_entry_t  *e, *prev;

    while (b->next < b->n && b->next - b->head < b->window) {
        e = &b->entries[b->next];

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

        if (ngx_http_output_filter(r, cl) == NGX_ERROR) {
            return NGX_ERROR;
        }

        b->next++;

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

    return NGX_OK;
}


/* The entry's reader: a subrequest to the S3 location, served below. */
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


static ngx_http_event_handler_pt  ngx_http_plinth_batch_read_wev;


/* The content handler of an entry's reader (ngx_http_plinth_s3_handler). */
ngx_int_t
ngx_http_plinth_batch_entry(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    /* the reader owns this reference until it finalizes */
    r->main->count++;

    if (ngx_http_plinth_read_start(r, ctx) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "plinth: batch entry %V/%V: no replica to read",
                      &ctx->bucket, &ctx->key);
        ngx_http_plinth_finalize(r, NGX_ERROR);
        return NGX_DONE;
    }

    /* GetObject's read loop, behind a step of our own (below) */
    ngx_http_plinth_batch_read_wev = r->write_event_handler;
    r->write_event_handler = ngx_http_plinth_batch_entry_wev;

    return NGX_DONE;
}


/*
 * A reader is woken when its turn to send comes (the postpone filter made
 * it the connection's active request) and when one of its reads ends. Its
 * output waiting behind it (a read still running) is passed the turn
 * first: nothing else would wake that read.
 */
static void
ngx_http_plinth_batch_entry_wev(ngx_http_request_t *r)
{
    if (r == r->connection->data && r->postponed
        && ngx_http_output_filter(r, NULL) == NGX_ERROR)
    {
        ngx_http_plinth_finalize(r, NGX_ERROR);
        return;
    }

    ngx_http_plinth_batch_read_wev(r);
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
