/*
 * http.c -- request handlers of the data node (API summary in http.h).
 *
 * MHD calls plinth_dn_http_access() at least twice per request: once
 * with the headers (we route and validate, and for PUT open the temp
 * file, or answer an early error without reading the body), then with
 * each piece of body, then once more with no data (we answer). Errors met
 * while a body streams in are remembered, the rest of the body is read
 * and dropped, and the error is answered at the end.
 *
 * A GET never sends a byte it has not verified: the response callback
 * reads one block at a time into a per-response buffer and checks it
 * against the footer first. The first block is checked before the
 * response exists, so a bad first block is a clean 500 "corrupt"; a bad
 * later block ends the stream with an error and MHD cuts the connection
 * (the body comes out short; the gateway resumes elsewhere).
 *
 * Every error answer carries X-Plinth-Error: <code> and a protobuf Error.
 * Bodies are never logged.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "plinth.pb-c.h"

#include "http.h"
#include "log.h"
#include "metrics.h"

#define PLINTH_DN_RID_MAX      128
#define PLINTH_DN_LIST_LIMIT   1000
#define PLINTH_DN_LIST_MAX     10000
#define PLINTH_DN_READ_CHUNK   (256 * 1024)
#define PLINTH_DN_BLOCK_FOOTER (UINT64_MAX - 1)
#define PLINTH_DN_PROTO_TYPE   "application/x-protobuf"
#define PLINTH_DN_MULTI_TYPE   "application/x-plinth-multi"
/* POST /blobs/multi: items, data bytes in all, request body */
#define PLINTH_DN_MULTI_ITEMS  1024
#define PLINTH_DN_MULTI_BYTES  (16 * 1024 * 1024)
#define PLINTH_DN_MULTI_BODY   (256 * 1024)
/* a MultiReadEntry header packs into less than this */
#define PLINTH_DN_MULTI_HDR    64
/* a multi-read item within a blob's first this many bytes: one pread */
#define PLINTH_DN_SMALL_READ   (64 * 1024)

typedef enum {
    PLINTH_DN_ROUTE_NONE = 0,
    PLINTH_DN_ROUTE_BLOB,
    PLINTH_DN_ROUTE_INFO,
    PLINTH_DN_ROUTE_VERIFY,
    PLINTH_DN_ROUTE_LIST,
    PLINTH_DN_ROUTE_HEALTH,
    PLINTH_DN_ROUTE_PULL,       /* POST /blobs/<id>/pull?from=host:port */
    PLINTH_DN_ROUTE_SCRUB,      /* GET /scrub?after=<id>&limit=<n> */
    PLINTH_DN_ROUTE_METRICS,    /* GET /metrics (Prometheus) */
    PLINTH_DN_ROUTE_MULTI       /* POST /blobs/multi (MultiReadRequest) */
} plinth_dn_route;

/* Per request, from the first call to the completed callback. */
typedef struct {
    plinth_dn_route   route;
    char              method[8];
    char              path[64];
    char              id[PLINTH_DN_ID_LEN + 1];
    int               id_ok;
    char              rid[PLINTH_DN_RID_MAX + 1];
    const char       *ridp;         /* rid, or NULL when none was sent */
    plinth_dn_put    *put;          /* PUT body being stored */
    plinth_dn_rc      put_rc;       /* error met while storing the body */
    unsigned          status;       /* answered with; 0 = not yet */
    struct timespec   start;
    int               inited;       /* the access handler has seen it */
    int               target_long;  /* request target too long to check */
    char              target[PLINTH_HOP_TARGET_MAX + 1];  /* path?query */
    uint8_t          *body;         /* POST /blobs/multi: its body */
    size_t            body_len;
    int               body_over;    /* longer than PLINTH_DN_MULTI_BODY */
} plinth_dn_req;

/* State of one GET body, owned by its MHD response. */
typedef struct {
    plinth_dn_store  *store;
    uint64_t          rate;         /* send_rate_limit; 0: none */
    plinth_dn_blob    blob;
    uint8_t          *buf;          /* one verified block */
    size_t            blen;
    uint64_t          loaded;       /* index of the block in buf */
    uint64_t          start;        /* first blob byte of the body */
    uint64_t          len;
    char              id[PLINTH_DN_ID_LEN + 1];
    char              rid[PLINTH_DN_RID_MAX + 1];
} plinth_dn_body;

typedef struct {
    Plinth__BlobInfo    *infos;
    Plinth__BlobInfo   **ptrs;
    char                *ids;
    size_t               n;
    size_t               limit;
    int                  truncated;
} plinth_dn_list;

static plinth_dn_req *plinth_dn_req_new(void);
static void plinth_dn_req_init(plinth_dn_req *r, struct MHD_Connection *c,
    const char *url, const char *method);
static const char *plinth_dn_hop_check(plinth_dn_http *h,
    struct MHD_Connection *c, plinth_dn_req *r);
static void plinth_dn_route_parse(plinth_dn_req *r, const char *url);
static enum MHD_Result plinth_dn_http_first(plinth_dn_http *h,
    struct MHD_Connection *c, plinth_dn_req *r);
static enum MHD_Result plinth_dn_http_answer(plinth_dn_http *h,
    struct MHD_Connection *c, plinth_dn_req *r);
static enum MHD_Result plinth_dn_put_start(plinth_dn_http *h,
    struct MHD_Connection *c, plinth_dn_req *r);
static void plinth_dn_put_body(plinth_dn_req *r, const char *data,
    size_t len);
static enum MHD_Result plinth_dn_put_finish(plinth_dn_http *h,
    struct MHD_Connection *c, plinth_dn_req *r);
static enum MHD_Result plinth_dn_get(plinth_dn_http *h,
    struct MHD_Connection *c, plinth_dn_req *r, int head);
static enum MHD_Result plinth_dn_get_body(plinth_dn_http *h,
    struct MHD_Connection *c, plinth_dn_req *r, plinth_dn_blob *b,
    uint64_t start, uint64_t len);
static enum MHD_Result plinth_dn_delete(plinth_dn_http *h,
    struct MHD_Connection *c, plinth_dn_req *r);
static enum MHD_Result plinth_dn_info(plinth_dn_http *h,
    struct MHD_Connection *c, plinth_dn_req *r, int verify);
static enum MHD_Result plinth_dn_list_blobs(plinth_dn_http *h,
    struct MHD_Connection *c, plinth_dn_req *r);
static int plinth_dn_list_cb(void *arg, const char *id, uint64_t size,
    int64_t mtime);
static enum MHD_Result plinth_dn_metrics(plinth_dn_http *h,
    struct MHD_Connection *c, plinth_dn_req *r);
static enum MHD_Result plinth_dn_health(plinth_dn_http *h,
    struct MHD_Connection *c, plinth_dn_req *r);
static enum MHD_Result plinth_dn_pull(plinth_dn_http *h,
    struct MHD_Connection *c, plinth_dn_req *r);
static enum MHD_Result plinth_dn_multi(plinth_dn_http *h,
    struct MHD_Connection *c, plinth_dn_req *r);
static void plinth_dn_multi_body(plinth_dn_req *r, const char *data,
    size_t len);
static enum MHD_Result plinth_dn_scrub(plinth_dn_http *h,
    struct MHD_Connection *c, plinth_dn_req *r);
static int plinth_dn_range_parse(const char *v, uint64_t size,
    uint64_t *start, uint64_t *len);
static int plinth_dn_parse_u64(const char *s, const char **end,
    uint64_t *out);
static ssize_t plinth_dn_body_read(void *cls, uint64_t pos, char *buf,
    size_t max);
static void plinth_dn_throttle(uint64_t rate, size_t n);
static ssize_t plinth_dn_body_none(void *cls, uint64_t pos, char *buf,
    size_t max);
static int plinth_dn_body_load(plinth_dn_body *b, uint64_t index);
static void plinth_dn_body_free(void *cls);
static void plinth_dn_corrupt(plinth_dn_store *s, const char *rid,
    const char *id, uint64_t block);
static void plinth_dn_blob_info(Plinth__BlobInfo *bi, const char *id,
    const plinth_dn_blob *b);
static int plinth_dn_blob_headers(struct MHD_Response *resp,
    const plinth_dn_blob *b, int data);
static enum MHD_Result plinth_dn_reply(struct MHD_Connection *c,
    plinth_dn_req *r, unsigned status, struct MHD_Response *resp);
static enum MHD_Result plinth_dn_reply_proto(struct MHD_Connection *c,
    plinth_dn_req *r, unsigned status, const ProtobufCMessage *m,
    const plinth_dn_blob *b);
static enum MHD_Result plinth_dn_reply_error(struct MHD_Connection *c,
    plinth_dn_req *r, unsigned status, const char *code, const char *fmt,
    ...) __attribute__((format(printf, 5, 6)));
static enum MHD_Result plinth_dn_reply_rc(struct MHD_Connection *c,
    plinth_dn_req *r, plinth_dn_rc rc);
static struct MHD_Response *plinth_dn_error_response(plinth_dn_req *r,
    const char *code, const char *msg);


/* MHD access handler; see the comment at the top of the file. */
enum MHD_Result
plinth_dn_http_access(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_size, void **con_cls)
{
    plinth_dn_http  *h = cls;
    plinth_dn_req   *r = *con_cls;

    if (r == NULL) {
        /* no URI callback ran (it always does): the target is unknown */
        r = plinth_dn_req_new();
        if (r == NULL) {
            return MHD_NO;
        }
        r->target_long = 1;
        *con_cls = r;
    }

    if (!r->inited) {
        plinth_dn_req_init(r, c, url, method);
        __atomic_add_fetch(&h->inflight, 1, __ATOMIC_SEQ_CST);
        return plinth_dn_http_first(h, c, r);
    }

    if (*upload_size > 0) {
        plinth_dn_metrics_bytes_in(*upload_size);
        if (r->put != NULL) {
            plinth_dn_put_body(r, upload_data, *upload_size);
        } else if (r->route == PLINTH_DN_ROUTE_MULTI && r->status == 0) {
            plinth_dn_multi_body(r, upload_data, *upload_size);
        }
        *upload_size = 0;
        return MHD_YES;
    }

    if (r->status != 0) {
        return MHD_YES;
    }
    return plinth_dn_http_answer(h, c, r);
}


/* MHD completion callback: drop an unfinished put, log the request. */
void
plinth_dn_http_completed(void *cls, struct MHD_Connection *c,
    void **con_cls, enum MHD_RequestTerminationCode toe)
{
    plinth_dn_http   *h = cls;
    plinth_dn_req    *r = *con_cls;
    struct timespec   now;
    long              ms;

    if (r == NULL) {
        return;
    }
    if (!r->inited) {           /* MHD dropped it before the headers */
        free(r);
        *con_cls = NULL;
        return;
    }

    if (r->put != NULL) {
        plinth_dn_put_abort(r->put);
        plinth_dn_log(PLINTH_DN_LOG_WARN, r->ridp, r->id,
                      "upload not finished (termination %d); temp file "
                      "removed", (int) toe);
    }

    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (now.tv_sec - r->start.tv_sec) * 1000
         + (now.tv_nsec - r->start.tv_nsec) / 1000000;
    plinth_dn_log(PLINTH_DN_LOG_INFO, r->ridp, r->id_ok ? r->id : NULL,
                  "%s %s %u %ldms%s", r->method, r->path, r->status, ms,
                  toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                  : " (connection cut)");
    plinth_dn_metrics_request(r->method, r->status,
        (double) (now.tv_sec - r->start.tv_sec)
        + (double) (now.tv_nsec - r->start.tv_nsec) / 1e9,
        toe != MHD_REQUEST_TERMINATED_COMPLETED_OK);

    free(r->body);
    free(r);
    *con_cls = NULL;
    __atomic_sub_fetch(&h->inflight, 1, __ATOMIC_SEQ_CST);
}


/* MHD's own error messages, as log lines. */
void
plinth_dn_http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char    msg[512];
    size_t  n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n') {
        msg[--n] = '\0';
    }
    plinth_dn_log(PLINTH_DN_LOG_WARN, NULL, NULL, "microhttpd: %s", msg);
}


int
plinth_dn_http_inflight(plinth_dn_http *h)
{
    return __atomic_load_n(&h->inflight, __ATOMIC_SEQ_CST);
}


/*
 * MHD's URI callback: the request target exactly as sent (path and
 * query, not unescaped), which the hop signature covers. Its return value
 * is the request's *con_cls.
 */
void *
plinth_dn_http_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    plinth_dn_req  *r;
    size_t          len = strlen(uri);

    r = plinth_dn_req_new();
    if (r == NULL) {
        return NULL;
    }
    if (len > PLINTH_HOP_TARGET_MAX) {
        r->target_long = 1;
    } else {
        memcpy(r->target, uri, len + 1);
    }
    return r;
}


static plinth_dn_req *
plinth_dn_req_new(void)
{
    plinth_dn_req  *r;

    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        plinth_dn_log(PLINTH_DN_LOG_ERROR, NULL, NULL, "out of memory");
    }
    return r;
}


static void
plinth_dn_req_init(plinth_dn_req *r, struct MHD_Connection *c,
    const char *url, const char *method)
{
    const char     *rid;

    r->inited = 1;
    clock_gettime(CLOCK_MONOTONIC, &r->start);
    snprintf(r->method, sizeof(r->method), "%s", method);
    snprintf(r->path, sizeof(r->path), "%s", url);

    rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    if (rid != NULL && rid[0] != '\0') {
        snprintf(r->rid, sizeof(r->rid), "%s", rid);
        r->ridp = r->rid;
    }

    plinth_dn_route_parse(r, url);
}


/*
 * The closed internal hop (ngx_plinth_hop.h): every route but /health and /metrics
 * needs the cluster's signature. Checked before anything else is looked
 * at, so that an unsigned caller learns nothing, not even whether a path
 * exists. NULL: go on; otherwise why the request is refused.
 */
static const char *
plinth_dn_hop_check(plinth_dn_http *h, struct MHD_Connection *c,
    plinth_dn_req *r)
{
    const char  *why;

    if (r->route == PLINTH_DN_ROUTE_HEALTH
        || r->route == PLINTH_DN_ROUTE_METRICS)
    {
        /* liveness and Prometheus scrapes (scrapers do not sign): no
         * blob is named, only the node's figures */
        return NULL;
    }

    if (r->target_long) {
        why = "request target too long to check its signature";

    } else if (plinth_hop_verify(h->hop_key, r->method,
                   r->target,
                   MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                               PLINTH_HOP_DATE_HDR),
                   MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                               PLINTH_HOP_SIG_HDR),
                   MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                               "X-Request-Id"),
                   (int64_t) time(NULL), &why) == 0)
    {
        return NULL;
    }

    plinth_dn_log(PLINTH_DN_LOG_WARN, r->ridp, NULL,
                  "refused %s %s: %s", r->method, r->path, why);
    return why;
}


/* /health, /blobs, /blobs/<id>, /blobs/<id>/info, /blobs/<id>/verify */
static void
plinth_dn_route_parse(plinth_dn_req *r, const char *url)
{
    const char  *rest, *slash;
    size_t       len;

    if (strcmp(url, "/health") == 0) {
        r->route = PLINTH_DN_ROUTE_HEALTH;
        return;
    }
    if (strcmp(url, "/blobs") == 0) {
        r->route = PLINTH_DN_ROUTE_LIST;
        return;
    }
    if (strcmp(url, "/metrics") == 0) {
        r->route = PLINTH_DN_ROUTE_METRICS;
        return;
    }
    if (strcmp(url, "/scrub") == 0) {
        r->route = PLINTH_DN_ROUTE_SCRUB;
        return;
    }
    if (strcmp(url, "/blobs/multi") == 0) {
        /* not 32 hex digits: never a blob id */
        r->route = PLINTH_DN_ROUTE_MULTI;
        return;
    }
    if (strncmp(url, "/blobs/", 7) != 0) {
        return;
    }

    rest = url + 7;
    slash = strchr(rest, '/');
    len = slash ? (size_t) (slash - rest) : strlen(rest);
    if (slash == NULL) {
        r->route = PLINTH_DN_ROUTE_BLOB;
    } else if (strcmp(slash, "/info") == 0) {
        r->route = PLINTH_DN_ROUTE_INFO;
    } else if (strcmp(slash, "/verify") == 0) {
        r->route = PLINTH_DN_ROUTE_VERIFY;
    } else if (strcmp(slash, "/pull") == 0) {
        r->route = PLINTH_DN_ROUTE_PULL;
    } else {
        return;
    }

    if (len == PLINTH_DN_ID_LEN) {
        memcpy(r->id, rest, len);
        r->id[len] = '\0';
        r->id_ok = plinth_dn_id_valid(r->id);
    }
}


/* Headers are in: route, check method and id, maybe start a put. */
static enum MHD_Result
plinth_dn_http_first(plinth_dn_http *h, struct MHD_Connection *c,
    plinth_dn_req *r)
{
    struct MHD_Response  *resp;
    int                   blob = r->route == PLINTH_DN_ROUTE_BLOB;
    int                   get = strcmp(r->method, "GET") == 0
                                || strcmp(r->method, "HEAD") == 0;
    const char           *why;

    why = plinth_dn_hop_check(h, c, r);
    if (why != NULL) {
        return plinth_dn_reply_error(c, r, MHD_HTTP_FORBIDDEN, "forbidden",
                                     "%s", why);
    }

    if (r->route == PLINTH_DN_ROUTE_NONE) {
        return plinth_dn_reply_error(c, r, MHD_HTTP_NOT_FOUND, "not_found",
                                     "no such resource");
    }

    if (r->route == PLINTH_DN_ROUTE_PULL || r->route == PLINTH_DN_ROUTE_MULTI
        ? strcmp(r->method, "POST") != 0
        : !get && !(blob && (strcmp(r->method, "PUT") == 0
                             || strcmp(r->method, "DELETE") == 0)))
    {
        resp = plinth_dn_error_response(r, "method_not_allowed",
                                        "method not allowed here");
        if (resp == NULL || MHD_add_response_header(resp, "Allow",
                blob ? "GET, HEAD, PUT, DELETE"
                : r->route == PLINTH_DN_ROUTE_PULL
                  || r->route == PLINTH_DN_ROUTE_MULTI ? "POST"
                : "GET, HEAD") != MHD_YES)
        {
            return MHD_NO;
        }
        return plinth_dn_reply(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
    }

    if (r->route != PLINTH_DN_ROUTE_LIST && r->route != PLINTH_DN_ROUTE_HEALTH
        && r->route != PLINTH_DN_ROUTE_SCRUB
        && r->route != PLINTH_DN_ROUTE_METRICS
        && r->route != PLINTH_DN_ROUTE_MULTI && !r->id_ok)
    {
        return plinth_dn_reply_error(c, r, MHD_HTTP_BAD_REQUEST, "bad_id",
                   "blob id must be 32 lower-case hex digits");
    }

    if (strcmp(r->method, "PUT") == 0) {
        return plinth_dn_put_start(h, c, r);
    }
    return MHD_YES;
}


/* The request is complete: answer it. */
static enum MHD_Result
plinth_dn_http_answer(plinth_dn_http *h, struct MHD_Connection *c,
    plinth_dn_req *r)
{
    int  head = strcmp(r->method, "HEAD") == 0;

    switch (r->route) {
    case PLINTH_DN_ROUTE_BLOB:
        if (strcmp(r->method, "PUT") == 0) {
            return plinth_dn_put_finish(h, c, r);
        }
        if (strcmp(r->method, "DELETE") == 0) {
            return plinth_dn_delete(h, c, r);
        }
        return plinth_dn_get(h, c, r, head);
    case PLINTH_DN_ROUTE_INFO:
        return plinth_dn_info(h, c, r, 0);
    case PLINTH_DN_ROUTE_VERIFY:
        return plinth_dn_info(h, c, r, 1);
    case PLINTH_DN_ROUTE_LIST:
        return plinth_dn_list_blobs(h, c, r);
    case PLINTH_DN_ROUTE_HEALTH:
        return plinth_dn_health(h, c, r);
    case PLINTH_DN_ROUTE_METRICS:
        return plinth_dn_metrics(h, c, r);
    case PLINTH_DN_ROUTE_PULL:
        return plinth_dn_pull(h, c, r);
    case PLINTH_DN_ROUTE_SCRUB:
        return plinth_dn_scrub(h, c, r);
    case PLINTH_DN_ROUTE_MULTI:
        return plinth_dn_multi(h, c, r);
    default:
        return MHD_NO;
    }
}


/* PUT headers: check the declared length against free space, open tmp. */
static enum MHD_Result
plinth_dn_put_start(plinth_dn_http *h, struct MHD_Connection *c,
    plinth_dn_req *r)
{
    const char    *cl, *te, *end;
    uint64_t       n;
    int64_t        expected = -1;
    plinth_dn_rc   rc;

    cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    te = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (cl != NULL && te == NULL) {
        if (plinth_dn_parse_u64(cl, &end, &n) != 0 || *end != '\0'
            || n > INT64_MAX)
        {
            return plinth_dn_reply_error(c, r, MHD_HTTP_BAD_REQUEST,
                       "bad_request", "bad Content-Length");
        }
        expected = (int64_t) n;
    }

    rc = plinth_dn_put_begin(h->store, r->id, expected, &r->put);
    if (rc == PLINTH_DN_OK) {
        return MHD_YES;
    }

    r->put = NULL;
    if (rc == PLINTH_DN_FULL) {
        plinth_dn_log(PLINTH_DN_LOG_WARN, r->ridp, r->id,
                      "refused put of %lld bytes: no space",
                      (long long) expected);
    }
    return plinth_dn_reply_rc(c, r, rc);
}


static void
plinth_dn_put_body(plinth_dn_req *r, const char *data, size_t len)
{
    plinth_dn_rc  rc;

    rc = plinth_dn_put_write(r->put, data, len);
    if (rc == PLINTH_DN_OK) {
        return;
    }

    plinth_dn_log(rc == PLINTH_DN_FULL ? PLINTH_DN_LOG_WARN
                                       : PLINTH_DN_LOG_ERROR,
                  r->ridp, r->id, "put failed while writing: %s",
                  rc == PLINTH_DN_FULL ? "no space left" : strerror(errno));
    plinth_dn_put_abort(r->put);
    r->put = NULL;
    r->put_rc = rc;
}


/* Body complete: commit, answer 201 BlobInfo (or the error). */
static enum MHD_Result
plinth_dn_put_finish(plinth_dn_http *h, struct MHD_Connection *c,
    plinth_dn_req *r)
{
    Plinth__BlobInfo  bi;
    plinth_dn_blob    b;
    plinth_dn_rc      rc;
    enum MHD_Result   ret;

    if (r->put == NULL) {
        return plinth_dn_reply_rc(c, r, r->put_rc ? r->put_rc : PLINTH_DN_EIO);
    }

    rc = plinth_dn_put_commit(r->put, &b);
    r->put = NULL;
    if (rc != PLINTH_DN_OK && rc != PLINTH_DN_SAME) {
        if (rc != PLINTH_DN_EXISTS) {
            plinth_dn_log(PLINTH_DN_LOG_ERROR, r->ridp, r->id,
                          "put failed at commit: %s",
                          rc == PLINTH_DN_FULL ? "no space left"
                                               : strerror(errno));
        }
        return plinth_dn_reply_rc(c, r, rc);
    }

    plinth_dn_log(PLINTH_DN_LOG_DEBUG, r->ridp, r->id, "%s %llu bytes",
                  rc == PLINTH_DN_SAME ? "already stored" : "stored",
                  (unsigned long long) b.meta.t.size);
    plinth_dn_blob_info(&bi, r->id, &b);
    /* the gateway reads this answer into one small buffer: block sums
     * would grow with the blob, and /info serves them */
    bi.n_block_xxh3 = 0;
    bi.block_xxh3 = NULL;
    ret = plinth_dn_reply_proto(c, r, MHD_HTTP_CREATED, &bi.base, &b);
    plinth_dn_blob_close(&b);
    return ret;
}


/* GET or HEAD /blobs/<id>, with an optional single Range. */
static enum MHD_Result
plinth_dn_get(plinth_dn_http *h, struct MHD_Connection *c, plinth_dn_req *r,
    int head)
{
    struct MHD_Response  *resp;
    plinth_dn_blob        b;
    plinth_dn_rc          rc;
    uint64_t              size, start = 0, len;
    const char           *range;
    char                  cr[64];
    int                   pr = 0;

    rc = plinth_dn_blob_open(h->store, r->id, &b);
    if (rc != PLINTH_DN_OK) {
        if (rc == PLINTH_DN_CORRUPT) {
            plinth_dn_corrupt(h->store, r->ridp, r->id, PLINTH_DN_BLOCK_FOOTER);
        }
        return plinth_dn_reply_rc(c, r, rc);
    }

    size = len = b.meta.t.size;
    range = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                        MHD_HTTP_HEADER_RANGE);
    if (!head) {
        pr = plinth_dn_range_parse(range, size, &start, &len);
    }

    if (pr < 0) {
        plinth_dn_blob_close(&b);
        snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long) size);
        resp = plinth_dn_error_response(r, "bad_range",
                                        "range not satisfiable");
        if (resp == NULL
            || MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE,
                                       cr) != MHD_YES)
        {
            return MHD_NO;
        }
        return plinth_dn_reply(c, r, MHD_HTTP_RANGE_NOT_SATISFIABLE, resp);
    }

    if (head || len == 0) {
        resp = MHD_create_response_from_callback(len, 4096,
                   plinth_dn_body_none, NULL, NULL);
        if (resp == NULL || plinth_dn_blob_headers(resp, &b, 1) != 0) {
            plinth_dn_blob_close(&b);
            return MHD_NO;
        }
        plinth_dn_blob_close(&b);
        return plinth_dn_reply(c, r, MHD_HTTP_OK, resp);
    }

    return plinth_dn_get_body(h, c, r, &b, start, pr ? len : UINT64_MAX);
}


/*
 * Stream bytes [start, start+len) of b (len UINT64_MAX: the whole blob,
 * answered 200; else 206). Takes b. The first block is verified here.
 */
static enum MHD_Result
plinth_dn_get_body(plinth_dn_http *h, struct MHD_Connection *c,
    plinth_dn_req *r, plinth_dn_blob *b, uint64_t start, uint64_t len)
{
    struct MHD_Response  *resp;
    plinth_dn_body       *body;
    uint32_t              bs = b->meta.t.block_size;
    unsigned              status = MHD_HTTP_PARTIAL_CONTENT;
    plinth_dn_rc          rc;
    char                  cr[80];

    if (len == UINT64_MAX) {
        len = b->meta.t.size;
        status = MHD_HTTP_OK;
    }

    /* a block buffer no larger than the blob: a 4 KiB blob needs no
     * 1 MiB allocation (an mmap and munmap each time) */
    body = calloc(1, sizeof(*body));
    if (body == NULL
        || (body->buf = malloc(b->meta.t.size < bs ? (size_t) b->meta.t.size
                                                   : bs)) == NULL)
    {
        free(body);
        plinth_dn_blob_close(b);
        return plinth_dn_reply_rc(c, r, PLINTH_DN_ENOMEM);
    }
    body->store = h->store;
    body->rate = h->send_rate;
    body->blob = *b;
    body->loaded = UINT64_MAX;
    body->start = start;
    body->len = len;
    memcpy(body->id, r->id, sizeof(body->id));
    memcpy(body->rid, r->rid, sizeof(body->rid));

    if (plinth_dn_body_load(body, start / bs) != 0) {
        rc = errno == EIO ? PLINTH_DN_EIO : PLINTH_DN_CORRUPT;
        plinth_dn_body_free(body);
        return plinth_dn_reply_rc(c, r, rc);
    }

    if ((start + len - 1) / bs == body->loaded && body->rate == 0) {
        /*
         * The whole body lies in the block just read and verified (a
         * blob of one block, or a stripe or range within one): MHD sends
         * it from that buffer (sendmsg), with no response buffer of its
         * own to allocate, clear and copy into. The buffer is freed with
         * the response. A throttled node keeps the chunked reader.
         */
        struct MHD_IoVec  iov;

        iov.iov_base = body->buf + (start - body->loaded * bs);
        iov.iov_len = (size_t) len;
        resp = MHD_create_response_from_iovec(&iov, 1, plinth_dn_body_free,
                                              body);
        if (resp != NULL) {
            plinth_dn_metrics_bytes_out(len);
        }
    } else {
        resp = MHD_create_response_from_callback(len,
                   bs < PLINTH_DN_READ_CHUNK ? bs : PLINTH_DN_READ_CHUNK,
                   plinth_dn_body_read, body, plinth_dn_body_free);
    }
    if (resp == NULL) {
        plinth_dn_body_free(body);
        return MHD_NO;
    }

    snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu",
             (unsigned long long) start, (unsigned long long) (start + len - 1),
             (unsigned long long) b->meta.t.size);
    if (plinth_dn_blob_headers(resp, b, 1) != 0
        || (status == MHD_HTTP_PARTIAL_CONTENT
            && MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE,
                                       cr) != MHD_YES))
    {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return plinth_dn_reply(c, r, status, resp);
}


/* MHD content reader: serve from the verified block, loading the next. */
static ssize_t
plinth_dn_body_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    plinth_dn_body  *b = cls;
    uint32_t         bs = b->blob.meta.t.block_size;
    uint64_t         off = b->start + pos, index = off / bs, in;
    size_t           n;

    if (pos >= b->len) {
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (index != b->loaded && plinth_dn_body_load(b, index) != 0) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }

    in = off - index * bs;
    n = b->blen - (size_t) in;
    if (n > max) {
        n = max;
    }
    if (n > b->len - pos) {
        n = (size_t) (b->len - pos);
    }
    memcpy(buf, b->buf + in, n);
    plinth_dn_metrics_bytes_out(n);
    if (b->rate) {
        plinth_dn_throttle(b->rate, n);
    }
    return (ssize_t) n;
}


/*
 * send_rate_limit: the node's blob bodies share one link of that many
 * bytes a second. Each chunk books the link's next free interval and its
 * connection's thread sleeps until that interval ends (thread per
 * connection: only this reader waits).
 */
static void
plinth_dn_throttle(uint64_t rate, size_t n)
{
    static pthread_mutex_t  lock = PTHREAD_MUTEX_INITIALIZER;
    static uint64_t         link_free;      /* ns, CLOCK_MONOTONIC */
    struct timespec         ts;
    uint64_t                now, done;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;

    pthread_mutex_lock(&lock);
    if (link_free < now) {
        link_free = now;
    }
    link_free += (uint64_t) n * 1000000000u / rate;
    done = link_free;
    pthread_mutex_unlock(&lock);

    ts.tv_sec = (time_t) (done / 1000000000u);
    ts.tv_nsec = (long) (done % 1000000000u);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)
           == EINTR)
    {
        /* void */
    }
}


/* HEAD and empty bodies: MHD never asks for bytes. */
static ssize_t
plinth_dn_body_none(void *cls, uint64_t pos, char *buf, size_t max)
{
    return MHD_CONTENT_READER_END_OF_STREAM;
}


/* Read and verify block index into b->buf. 0, or -1 (errno EIO if I/O). */
static int
plinth_dn_body_load(plinth_dn_body *b, uint64_t index)
{
    int  rc;

    rc = blockfile_read_block(b->blob.fd, &b->blob.meta, index, b->buf,
                              &b->blen);
    if (rc == BLOCKFILE_OK) {
        b->loaded = index;
        return 0;
    }

    b->loaded = UINT64_MAX;
    if (rc == BLOCKFILE_ECORRUPT) {
        plinth_dn_corrupt(b->store, b->rid[0] ? b->rid : NULL, b->id, index);
        errno = EBADMSG;
    } else {
        plinth_dn_log(PLINTH_DN_LOG_ERROR, b->rid[0] ? b->rid : NULL, b->id,
                      "read error in block %llu: %s",
                      (unsigned long long) index, strerror(errno));
        errno = EIO;
    }
    return -1;
}


static void
plinth_dn_body_free(void *cls)
{
    plinth_dn_body  *b = cls;

    plinth_dn_blob_close(&b->blob);
    free(b->buf);
    free(b);
}


static enum MHD_Result
plinth_dn_delete(plinth_dn_http *h, struct MHD_Connection *c,
    plinth_dn_req *r)
{
    struct MHD_Response  *resp;
    plinth_dn_rc          rc;

    rc = plinth_dn_blob_delete(h->store, r->id);
    if (rc != PLINTH_DN_OK) {
        return plinth_dn_reply_rc(c, r, rc);
    }

    resp = MHD_create_response_from_buffer(0, (void *) "",
                                           MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        return MHD_NO;
    }
    return plinth_dn_reply(c, r, MHD_HTTP_NO_CONTENT, resp);
}


/* /info (footer only) and /verify (every block and the whole hash). */
static enum MHD_Result
plinth_dn_info(plinth_dn_http *h, struct MHD_Connection *c, plinth_dn_req *r,
    int verify)
{
    Plinth__BlobInfo  bi;
    plinth_dn_blob    b;
    plinth_dn_rc      rc;
    enum MHD_Result   ret;
    uint64_t          bad = 0;
    void             *buf;
    int               vrc;

    rc = plinth_dn_blob_open(h->store, r->id, &b);
    if (rc != PLINTH_DN_OK) {
        if (rc == PLINTH_DN_CORRUPT) {
            plinth_dn_corrupt(h->store, r->ridp, r->id, PLINTH_DN_BLOCK_FOOTER);
        }
        return plinth_dn_reply_rc(c, r, rc);
    }

    if (verify) {
        buf = malloc(b.meta.t.block_size);
        vrc = buf ? blockfile_verify(b.fd, &b.meta, buf, &bad)
                  : BLOCKFILE_ENOMEM;
        free(buf);
        if (vrc != BLOCKFILE_OK) {
            plinth_dn_blob_close(&b);
            if (vrc == BLOCKFILE_ECORRUPT) {
                plinth_dn_corrupt(h->store, r->ridp, r->id, bad);
            }
            return plinth_dn_reply_rc(c, r,
                       vrc == BLOCKFILE_ECORRUPT ? PLINTH_DN_CORRUPT
                       : vrc == BLOCKFILE_ENOMEM ? PLINTH_DN_ENOMEM
                                                 : PLINTH_DN_EIO);
        }
    }

    plinth_dn_blob_info(&bi, r->id, &b);
    ret = plinth_dn_reply_proto(c, r, MHD_HTTP_OK, &bi.base, &b);
    plinth_dn_blob_close(&b);
    return ret;
}


/* GET /blobs?after=<id>&limit=<n> */
static enum MHD_Result
plinth_dn_list_blobs(plinth_dn_http *h, struct MHD_Connection *c,
    plinth_dn_req *r)
{
    Plinth__BlobList   bl = PLINTH__BLOB_LIST__INIT;
    plinth_dn_list     l;
    const char        *after, *limit, *end;
    uint64_t           n = PLINTH_DN_LIST_LIMIT;
    enum MHD_Result    ret;
    int                rc;

    after = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
    limit = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    if (after != NULL && after[0] == '\0') {
        after = NULL;
    }
    if (after != NULL && !plinth_dn_id_valid(after)) {
        return plinth_dn_reply_error(c, r, MHD_HTTP_BAD_REQUEST, "bad_id",
                   "after must be 32 lower-case hex digits");
    }
    if (limit != NULL && (plinth_dn_parse_u64(limit, &end, &n) != 0
                          || *end != '\0' || n < 1 || n > PLINTH_DN_LIST_MAX))
    {
        return plinth_dn_reply_error(c, r, MHD_HTTP_BAD_REQUEST,
                   "bad_request", "limit must be 1 to %d", PLINTH_DN_LIST_MAX);
    }

    memset(&l, 0, sizeof(l));
    l.limit = (size_t) n;
    l.infos = calloc(l.limit, sizeof(*l.infos));
    l.ptrs = calloc(l.limit, sizeof(*l.ptrs));
    l.ids = malloc(l.limit * (PLINTH_DN_ID_LEN + 1));
    rc = l.infos && l.ptrs && l.ids
         ? plinth_dn_store_walk(h->store, after, plinth_dn_list_cb, &l) : -1;

    if (rc != 0) {
        ret = plinth_dn_reply_error(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
                  "io_error", "listing failed: %s", strerror(errno));
    } else {
        bl.n_blobs = l.n;
        bl.blobs = l.ptrs;
        bl.truncated = l.truncated;
        ret = plinth_dn_reply_proto(c, r, MHD_HTTP_OK, &bl.base, NULL);
    }

    free(l.infos);
    free(l.ptrs);
    free(l.ids);
    return ret;
}


static int
plinth_dn_list_cb(void *arg, const char *id, uint64_t size, int64_t mtime)
{
    plinth_dn_list    *l = arg;
    Plinth__BlobInfo  *bi;
    char              *p;

    if (l->n == l->limit) {
        l->truncated = 1;
        return 1;
    }

    p = l->ids + l->n * (PLINTH_DN_ID_LEN + 1);
    memcpy(p, id, PLINTH_DN_ID_LEN + 1);
    bi = &l->infos[l->n];
    plinth__blob_info__init(bi);
    bi->id = p;
    bi->size = size;
    bi->mtime = mtime;
    l->ptrs[l->n++] = bi;
    return 0;
}


/* GET /health: protobuf NodeHealth, or JSON when the client asks. */
static enum MHD_Result
plinth_dn_health(plinth_dn_http *h, struct MHD_Connection *c,
    plinth_dn_req *r)
{
    Plinth__NodeHealth    nh = PLINTH__NODE_HEALTH__INIT;
    struct MHD_Response  *resp;
    plinth_dn_usage       u;
    const char           *accept;
    char                  json[1024];
    int                   n;

    if (plinth_dn_store_usage(h->store, &u) != 0) {
        return plinth_dn_reply_error(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
                   "io_error", "statvfs failed: %s", strerror(errno));
    }

    nh.node_id = h->node_id;
    /* read_only: the data directory refuses writes (remounted read-only,
     * a failing disk); blobs may still be read. Worse than full. */
    nh.status = !u.writable ? "read_only" : u.full ? "full" : "ok";
    nh.disk_total_bytes = u.total;
    nh.disk_used_bytes = u.used;
    nh.disk_free_bytes = u.free;
    nh.blob_count = u.blob_count;
    nh.blob_bytes = u.blob_bytes;
    nh.uptime_seconds = (int64_t) (time(NULL) - h->started);
    nh.version = PLINTH_DN_VERSION;

    accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_ACCEPT);
    if (accept == NULL || strstr(accept, "application/json") == NULL) {
        return plinth_dn_reply_proto(c, r, MHD_HTTP_OK, &nh.base, NULL);
    }

    n = snprintf(json, sizeof(json),
        "{\"node_id\":%u,\"status\":\"%s\",\"disk_total_bytes\":%llu,"
        "\"disk_used_bytes\":%llu,\"disk_free_bytes\":%llu,"
        "\"blob_count\":%llu,\"blob_bytes\":%llu,\"uptime_seconds\":%lld,"
        "\"version\":\"%s\",\"corrupt_total\":%llu,"
        "\"connections_total\":%llu,\"writable\":%s,"
        "\"write_error\":\"%s\"}\n",
        nh.node_id, nh.status, (unsigned long long) u.total,
        (unsigned long long) u.used, (unsigned long long) u.free,
        (unsigned long long) u.blob_count, (unsigned long long) u.blob_bytes,
        (long long) nh.uptime_seconds, nh.version,
        (unsigned long long) u.corrupt,
        (unsigned long long) __atomic_load_n(&h->connections,
                                             __ATOMIC_RELAXED),
        u.writable ? "true" : "false",
        u.writable ? "" : strerror(u.write_errno));

    resp = MHD_create_response_from_buffer((size_t) n, json,
                                           MHD_RESPMEM_MUST_COPY);
    if (resp == NULL || MHD_add_response_header(resp,
            MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") != MHD_YES)
    {
        return MHD_NO;
    }
    return plinth_dn_reply(c, r, MHD_HTTP_OK, resp);
}


/* GET /metrics: the Prometheus text format (metrics.c). */
static enum MHD_Result
plinth_dn_metrics(plinth_dn_http *h, struct MHD_Connection *c,
    plinth_dn_req *r)
{
    struct MHD_Response  *resp;
    plinth_dn_usage       u;
    char                 *text;
    size_t                len;

    if (plinth_dn_store_usage(h->store, &u) != 0) {
        return plinth_dn_reply_error(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
                   "io_error", "statvfs failed: %s", strerror(errno));
    }

    if (plinth_dn_metrics_render(h->node_id, &u,
            (long long) (time(NULL) - h->started),
            __atomic_load_n(&h->connections, __ATOMIC_RELAXED),
            plinth_dn_http_inflight(h), PLINTH_DN_VERSION, &text, &len) != 0)
    {
        return MHD_NO;
    }

    resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8") != MHD_YES)
    {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return plinth_dn_reply(c, r, MHD_HTTP_OK, resp);
}


/*
 * Parse a Range header against a blob of size bytes. Returns 0 to send
 * the whole blob (no header, another unit, a malformed or multi-range
 * value: RFC 9110 lets a server ignore those), 1 with [*start, +*len),
 * or -1 if unsatisfiable (416).
 */
static int
plinth_dn_range_parse(const char *v, uint64_t size, uint64_t *start,
    uint64_t *len)
{
    const char  *p;
    uint64_t     a, b;

    if (v == NULL || strncasecmp(v, "bytes=", 6) != 0
        || strchr(v, ',') != NULL)
    {
        return 0;
    }
    v += 6;

    if (*v == '-') {
        if (plinth_dn_parse_u64(v + 1, &p, &b) != 0 || *p != '\0') {
            return 0;
        }
        if (b == 0 || size == 0) {
            return -1;
        }
        *start = b < size ? size - b : 0;
        *len = size - *start;
        return 1;
    }

    if (plinth_dn_parse_u64(v, &p, &a) != 0 || *p++ != '-') {
        return 0;
    }
    b = UINT64_MAX;
    if (*p != '\0' && (plinth_dn_parse_u64(p, &p, &b) != 0 || *p != '\0'
                       || b < a))
    {
        return 0;
    }
    if (a >= size) {
        return -1;
    }

    *start = a;
    *len = (b < size - 1 ? b : size - 1) - a + 1;
    return 1;
}


/* Decimal digits only, no sign or space; *end after the last digit. */
static int
plinth_dn_parse_u64(const char *s, const char **end, uint64_t *out)
{
    uint64_t  n = 0;

    if (*s < '0' || *s > '9') {
        return -1;
    }
    for (; *s >= '0' && *s <= '9'; s++) {
        if (n > (UINT64_MAX - (uint64_t) (*s - '0')) / 10) {
            return -1;
        }
        n = n * 10 + (uint64_t) (*s - '0');
    }
    *end = s;
    *out = n;
    return 0;
}


/* Log a corrupt block (or footer, or whole-blob hash) and count it. */
static void
plinth_dn_corrupt(plinth_dn_store *s, const char *rid, const char *id,
    uint64_t block)
{
    plinth_dn_store_count_corrupt(s);

    if (block == PLINTH_DN_BLOCK_FOOTER) {
        plinth_dn_log(PLINTH_DN_LOG_ERROR, rid, id,
                      "corrupt blob: footer or trailer does not check out");
    } else if (block == UINT64_MAX) {
        plinth_dn_log(PLINTH_DN_LOG_ERROR, rid, id,
                      "corrupt blob: whole-blob checksum mismatch");
    } else {
        plinth_dn_log(PLINTH_DN_LOG_ERROR, rid, id,
                      "corrupt blob: checksum mismatch in block %llu",
                      (unsigned long long) block);
    }
}


/* BlobInfo pointing into b (no copies): valid while b is open. */
static void
plinth_dn_blob_info(Plinth__BlobInfo *bi, const char *id,
    const plinth_dn_blob *b)
{
    plinth__blob_info__init(bi);
    bi->id = (char *) id;
    bi->size = b->meta.t.size;
    bi->block_size = b->meta.t.block_size;
    bi->xxh3 = b->meta.t.xxh3;
    bi->n_block_xxh3 = (size_t) b->meta.t.block_count;
    bi->block_xxh3 = b->meta.block_xxh3;
    bi->mtime = b->mtime;
}


/* X-Plinth-Size, X-Plinth-Xxh3; with data also Accept-Ranges and type. */
static int
plinth_dn_blob_headers(struct MHD_Response *resp, const plinth_dn_blob *b,
    int data)
{
    char  size[24], xxh3[24];

    snprintf(size, sizeof(size), "%llu",
             (unsigned long long) b->meta.t.size);
    snprintf(xxh3, sizeof(xxh3), "%016llx",
             (unsigned long long) b->meta.t.xxh3);

    if (MHD_add_response_header(resp, "X-Plinth-Size", size) != MHD_YES
        || MHD_add_response_header(resp, "X-Plinth-Xxh3", xxh3) != MHD_YES)
    {
        return -1;
    }
    if (data
        && (MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES,
                                    "bytes") != MHD_YES
            || MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                       "application/octet-stream") != MHD_YES))
    {
        return -1;
    }
    return 0;
}


/* Queue resp (consumed) with status. */
static enum MHD_Result
plinth_dn_reply(struct MHD_Connection *c, plinth_dn_req *r, unsigned status,
    struct MHD_Response *resp)
{
    enum MHD_Result  ret;

    r->status = status;
    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}


/* Answer a protobuf message; with b, also X-Plinth-Size and -Xxh3. */
static enum MHD_Result
plinth_dn_reply_proto(struct MHD_Connection *c, plinth_dn_req *r,
    unsigned status, const ProtobufCMessage *m, const plinth_dn_blob *b)
{
    struct MHD_Response  *resp;
    uint8_t              *buf;
    size_t                len;

    len = protobuf_c_message_get_packed_size(m);
    buf = malloc(len ? len : 1);
    if (buf == NULL) {
        return MHD_NO;
    }
    protobuf_c_message_pack(m, buf);

    resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(buf);
        return MHD_NO;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                PLINTH_DN_PROTO_TYPE) != MHD_YES
        || (b != NULL && plinth_dn_blob_headers(resp, b, 0) != 0))
    {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return plinth_dn_reply(c, r, status, resp);
}


static enum MHD_Result
plinth_dn_reply_error(struct MHD_Connection *c, plinth_dn_req *r,
    unsigned status, const char *code, const char *fmt, ...)
{
    struct MHD_Response  *resp;
    char                  msg[256];
    va_list               ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    resp = plinth_dn_error_response(r, code, msg);
    if (resp == NULL) {
        return MHD_NO;
    }
    return plinth_dn_reply(c, r, status, resp);
}


/* Map a store result to its error answer. */
static enum MHD_Result
plinth_dn_reply_rc(struct MHD_Connection *c, plinth_dn_req *r,
    plinth_dn_rc rc)
{
    switch (rc) {
    case PLINTH_DN_NOT_FOUND:
        return plinth_dn_reply_error(c, r, MHD_HTTP_NOT_FOUND, "not_found",
                                     "no such blob");
    case PLINTH_DN_EXISTS:
        return plinth_dn_reply_error(c, r, MHD_HTTP_CONFLICT, "exists",
                   "a different blob is stored under this id");
    case PLINTH_DN_FULL:
        return plinth_dn_reply_error(c, r, MHD_HTTP_INSUFFICIENT_STORAGE,
                   "disk_full", "not enough space for this blob");
    case PLINTH_DN_CORRUPT:
        return plinth_dn_reply_error(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
                   "corrupt", "stored blob failed its checksum");
    case PLINTH_DN_ENOMEM:
        return plinth_dn_reply_error(c, r, MHD_HTTP_SERVICE_UNAVAILABLE,
                   "out_of_memory", "out of memory");
    default:
        return plinth_dn_reply_error(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
                   "io_error", "I/O error: %s", strerror(errno));
    }
}


/* A protobuf Error response with X-Plinth-Error, not yet queued. */
static struct MHD_Response *
plinth_dn_error_response(plinth_dn_req *r, const char *code, const char *msg)
{
    Plinth__Error         e = PLINTH__ERROR__INIT;
    struct MHD_Response  *resp;
    uint8_t              *buf;
    size_t                len;

    e.code = (char *) code;
    e.message = (char *) msg;
    e.blob_id = r->id_ok ? r->id : "";

    len = plinth__error__get_packed_size(&e);
    buf = malloc(len ? len : 1);
    if (buf == NULL) {
        return NULL;
    }
    plinth__error__pack(&e, buf);

    resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(buf);
        return NULL;
    }
    if (MHD_add_response_header(resp, "X-Plinth-Error", code) != MHD_YES
        || MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                   PLINTH_DN_PROTO_TYPE) != MHD_YES)
    {
        MHD_destroy_response(resp);
        return NULL;
    }
    return resp;
}


/* Counts accepted connections: shows whether callers keep them alive. */
void
plinth_dn_http_connection(void *cls, struct MHD_Connection *c,
    void **socket_context, enum MHD_ConnectionNotificationCode toe)
{
    plinth_dn_http  *h = cls;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        __atomic_add_fetch(&h->connections, 1, __ATOMIC_RELAXED);
    }
}


/*
 * POST /blobs/<id>/pull?from=<host:port>[&xxh3=<16 hex>]: copy the blob
 * from a peer data node (repair). The peer verifies every block before it
 * sends it (a bad block cuts its stream: the copy is dropped); the copy
 * is stored exactly as a PUT stores it (temp file, fsync, rename), then
 * its whole-blob XXH3 must equal the peer's (and xxh3, when given) and
 * every block is read back from disk and checked. Answers 201 BlobInfo
 * (without block sums) as PUT does; an identical blob already here is
 * 201 too (a retried pull). Errors: 502 "source_failed" (the peer did not
 * give the whole blob), 502 "corrupt" (the copy's checksum differs: it is
 * deleted), 409 "exists" (a different blob is stored under the id: delete
 * it first), 507 "disk_full". The request blocks while the copy runs
 * (thread per connection), bounded by the peer's speed: a peer sending
 * less than 1 KiB/s for 10 s is given up.
 */

typedef struct {
    plinth_dn_put  *put;
    plinth_dn_rc    rc;
    uint64_t        got;
    int64_t         size;           /* X-Plinth-Size of the peer, -1 */
    uint64_t        xxh3;           /* X-Plinth-Xxh3 of the peer */
    int             has_xxh3;
} plinth_dn_pull_ctx;


static size_t
plinth_dn_pull_write(char *data, size_t size, size_t n, void *arg)
{
    plinth_dn_pull_ctx  *p = arg;

    if (p->put == NULL) {
        return 0;
    }
    p->rc = plinth_dn_put_write(p->put, data, size * n);
    if (p->rc != PLINTH_DN_OK) {
        return 0;
    }
    p->got += size * n;
    return size * n;
}


static size_t
plinth_dn_pull_header(char *data, size_t size, size_t n, void *arg)
{
    plinth_dn_pull_ctx  *p = arg;
    size_t               len = size * n;
    char                 line[128], *v, *end;

    if (len >= sizeof(line)) {
        return len;
    }
    memcpy(line, data, len);
    line[len] = '\0';
    v = strchr(line, ':');
    if (v == NULL) {
        return len;
    }
    *v++ = '\0';
    while (*v == ' ') {
        v++;
    }
    if (strcasecmp(line, "X-Plinth-Size") == 0) {
        p->size = strtoll(v, &end, 10);
    } else if (strcasecmp(line, "X-Plinth-Xxh3") == 0) {
        p->xxh3 = strtoull(v, &end, 16);
        p->has_xxh3 = 1;
    }
    return len;
}


static int
plinth_dn_addr_valid(const char *a)
{
    size_t  i, n = strlen(a);

    if (n == 0 || n > 255) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (!((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'z')
              || (a[i] >= 'A' && a[i] <= 'Z') || strchr(".-:[]", a[i])))
        {
            return 0;
        }
    }
    return strchr(a, ':') != NULL;
}


/* Append the hop's X-Plinth-Date and X-Plinth-Signature to hl. */
static struct curl_slist *
plinth_dn_hop_sign(plinth_dn_http *h, struct curl_slist *hl,
    const char *method, const char *target, const char *rid)
{
    char     sig[PLINTH_HOP_SIG_LEN + 1], hdr[PLINTH_HOP_SIG_LEN + 64];
    int64_t  now = (int64_t) time(NULL);

    if (rid == NULL) {
        rid = "";
    }
    if (plinth_hop_sign(h->hop_key, method, strlen(method),
                        target, strlen(target), now, rid, strlen(rid),
                        sig) != 0)
    {
        return hl;      /* unsigned: the peer refuses it, and it is logged */
    }
    snprintf(hdr, sizeof(hdr), PLINTH_HOP_DATE_HDR ": %lld", (long long) now);
    hl = curl_slist_append(hl, hdr);
    snprintf(hdr, sizeof(hdr), PLINTH_HOP_SIG_HDR ": %s", sig);
    return curl_slist_append(hl, hdr);
}


static enum MHD_Result
plinth_dn_pull(plinth_dn_http *h, struct MHD_Connection *c, plinth_dn_req *r)
{
    Plinth__BlobInfo     bi;
    plinth_dn_pull_ctx   p;
    plinth_dn_blob       b;
    plinth_dn_rc         rc, brc;
    enum MHD_Result      ret;
    const char          *from, *want_s;
    char                 url[512], hdr[PLINTH_DN_RID_MAX + 32], cerr[CURL_ERROR_SIZE];
    char                 target[64];
    uint64_t             want = 0, bad = 0;
    long                 status = 0;
    CURL                *curl;
    CURLcode             cc;
    struct curl_slist   *hl = NULL;
    void                *buf;
    int                  vrc;

    from = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "from");
    want_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "xxh3");
    if (from == NULL || !plinth_dn_addr_valid(from)) {
        return plinth_dn_reply_error(c, r, MHD_HTTP_BAD_REQUEST,
                   "bad_request", "from must be host:port of a data node");
    }
    if (want_s != NULL) {
        char *end;
        want = strtoull(want_s, &end, 16);
        if (strlen(want_s) != 16 || *end != '\0') {
            return plinth_dn_reply_error(c, r, MHD_HTTP_BAD_REQUEST,
                       "bad_request", "xxh3 must be 16 hex digits");
        }
    }

    memset(&p, 0, sizeof(p));
    p.size = -1;
    rc = plinth_dn_put_begin(h->store, r->id, -1, &p.put);
    if (rc != PLINTH_DN_OK) {
        return plinth_dn_reply_rc(c, r, rc);
    }

    curl = curl_easy_init();
    if (curl == NULL) {
        plinth_dn_put_abort(p.put);
        return plinth_dn_reply_rc(c, r, PLINTH_DN_ENOMEM);
    }
    snprintf(url, sizeof(url), "%s://%s/blobs/%s",
             h->tls_ca != NULL ? "https" : "http", from, r->id);
    if (r->ridp != NULL) {
        snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", r->ridp);
        hl = curl_slist_append(hl, hdr);
    }
    snprintf(target, sizeof(target), "/blobs/%s", r->id);
    hl = plinth_dn_hop_sign(h, hl, "GET", target, r->ridp);
    cerr[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 10L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, plinth_dn_pull_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &p);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, plinth_dn_pull_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &p);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
    if (h->tls_ca != NULL) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, h->tls_ca);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    cc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    curl_slist_free_all(hl);

    if (p.rc != PLINTH_DN_OK) {
        plinth_dn_put_abort(p.put);
        return plinth_dn_reply_rc(c, r, p.rc);
    }
    if (cc != CURLE_OK || status != 200 || !p.has_xxh3 || p.size < 0
        || p.got != (uint64_t) p.size)
    {
        plinth_dn_put_abort(p.put);
        plinth_dn_log(PLINTH_DN_LOG_WARN, r->ridp, r->id,
                      "pull from %s failed: %s (status %ld, %llu bytes)",
                      from, cc != CURLE_OK ? cerr : "incomplete answer",
                      status, (unsigned long long) p.got);
        return plinth_dn_reply_error(c, r, MHD_HTTP_BAD_GATEWAY,
                   "source_failed", "pull from %s failed: %s (status %ld)",
                   from, cc != CURLE_OK ? cerr : "incomplete answer",
                   status);
    }

    rc = plinth_dn_put_commit(p.put, &b);
    if (rc != PLINTH_DN_OK && rc != PLINTH_DN_SAME) {
        return plinth_dn_reply_rc(c, r, rc);
    }

    /* read the stored blob back from disk, footer first */
    plinth_dn_blob_close(&b);
    brc = plinth_dn_blob_open(h->store, r->id, &b);
    if (brc != PLINTH_DN_OK) {
        if (brc == PLINTH_DN_CORRUPT) {
            plinth_dn_corrupt(h->store, r->ridp, r->id, PLINTH_DN_BLOCK_FOOTER);
        }
        return plinth_dn_reply_rc(c, r, brc);
    }

    if (b.meta.t.xxh3 != p.xxh3 || (want_s != NULL && b.meta.t.xxh3 != want)) {
        plinth_dn_blob_close(&b);
        if (rc == PLINTH_DN_OK) {
            plinth_dn_blob_delete(h->store, r->id);
        }
        plinth_dn_log(PLINTH_DN_LOG_ERROR, r->ridp, r->id,
                      "pull from %s: copy's checksum differs; dropped", from);
        return plinth_dn_reply_error(c, r, MHD_HTTP_BAD_GATEWAY, "corrupt",
                   "the copy's checksum differs from the source's");
    }

    buf = malloc(b.meta.t.block_size);
    vrc = buf ? blockfile_verify(b.fd, &b.meta, buf, &bad) : BLOCKFILE_ENOMEM;
    free(buf);
    if (vrc != BLOCKFILE_OK) {
        plinth_dn_blob_close(&b);
        if (vrc == BLOCKFILE_ECORRUPT) {
            plinth_dn_corrupt(h->store, r->ridp, r->id, bad);
            if (rc == PLINTH_DN_OK) {
                plinth_dn_blob_delete(h->store, r->id);
            }
        }
        return plinth_dn_reply_rc(c, r,
                   vrc == BLOCKFILE_ECORRUPT ? PLINTH_DN_CORRUPT
                   : vrc == BLOCKFILE_ENOMEM ? PLINTH_DN_ENOMEM
                                             : PLINTH_DN_EIO);
    }

    plinth_dn_log(PLINTH_DN_LOG_INFO, r->ridp, r->id,
                  "%s %llu bytes from %s, verified",
                  rc == PLINTH_DN_SAME ? "already had" : "pulled",
                  (unsigned long long) b.meta.t.size, from);
    plinth_dn_blob_info(&bi, r->id, &b);
    bi.n_block_xxh3 = 0;
    bi.block_xxh3 = NULL;
    ret = plinth_dn_reply_proto(c, r, MHD_HTTP_CREATED, &bi.base, &b);
    plinth_dn_blob_close(&b);
    return ret;
}


/*
 * GET /scrub?after=<id>&limit=<n>: read and check every block (and the
 * whole-blob XXH3) of up to n blobs (default 100, at most 10000) with ids
 * greater than after, in id order. Answers 200 BlobList of the corrupt
 * ones (id only), truncated when blobs follow the last one checked;
 * headers X-Plinth-Scrub-Checked (blobs checked) and X-Plinth-Scrub-Last
 * (the last id checked: the next call's after). A blob deleted while the
 * scrub runs is skipped. Each corrupt blob is logged and counted as a
 * GET would.
 */

typedef struct {
    plinth_dn_http  *h;
    plinth_dn_req   *r;
    plinth_dn_list   l;             /* the corrupt blobs */
    void            *buf;
    size_t           blen;
    uint64_t         checked;
    uint64_t         limit;
    int              more;
    char             last[PLINTH_DN_ID_LEN + 1];
} plinth_dn_scrub_ctx;


static int
plinth_dn_scrub_cb(void *arg, const char *id, uint64_t size, int64_t mtime)
{
    plinth_dn_scrub_ctx  *s = arg;
    plinth_dn_blob        b;
    plinth_dn_rc          rc;
    uint64_t              bad = PLINTH_DN_BLOCK_FOOTER;
    int                   vrc = BLOCKFILE_ECORRUPT;
    void                 *nb;

    if (s->checked == s->limit) {
        s->more = 1;
        return 1;
    }
    s->checked++;
    memcpy(s->last, id, PLINTH_DN_ID_LEN + 1);

    rc = plinth_dn_blob_open(s->h->store, id, &b);
    if (rc == PLINTH_DN_NOT_FOUND) {
        return 0;
    }
    if (rc == PLINTH_DN_OK) {
        if (s->blen < b.meta.t.block_size) {
            nb = realloc(s->buf, b.meta.t.block_size);
            if (nb == NULL) {
                plinth_dn_blob_close(&b);
                return 0;
            }
            s->buf = nb;
            s->blen = b.meta.t.block_size;
        }
        vrc = blockfile_verify(b.fd, &b.meta, s->buf, &bad);
        plinth_dn_blob_close(&b);
    } else if (rc != PLINTH_DN_CORRUPT) {
        return 0;
    }
    if (vrc == BLOCKFILE_ECORRUPT && s->l.n < s->l.limit) {
        plinth_dn_corrupt(s->h->store, s->r->ridp, id, bad);
        plinth_dn_list_cb(&s->l, id, size, mtime);
    }
    return 0;
}


static enum MHD_Result
plinth_dn_scrub(plinth_dn_http *h, struct MHD_Connection *c,
    plinth_dn_req *r)
{
    Plinth__BlobList      bl = PLINTH__BLOB_LIST__INIT;
    plinth_dn_scrub_ctx   s;
    const char           *after, *limit, *end;
    uint64_t              n = 100;
    char                  num[24];
    struct MHD_Response  *resp;
    uint8_t              *buf;
    size_t                len;
    int                   rc;

    after = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
    limit = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    if (after != NULL && after[0] == '\0') {
        after = NULL;
    }
    if (after != NULL && !plinth_dn_id_valid(after)) {
        return plinth_dn_reply_error(c, r, MHD_HTTP_BAD_REQUEST, "bad_id",
                   "after must be 32 lower-case hex digits");
    }
    if (limit != NULL && (plinth_dn_parse_u64(limit, &end, &n) != 0
                          || *end != '\0' || n < 1 || n > PLINTH_DN_LIST_MAX))
    {
        return plinth_dn_reply_error(c, r, MHD_HTTP_BAD_REQUEST,
                   "bad_request", "limit must be 1 to %d", PLINTH_DN_LIST_MAX);
    }

    memset(&s, 0, sizeof(s));
    s.h = h;
    s.r = r;
    s.limit = n;
    s.l.limit = (size_t) n;
    s.l.infos = calloc(s.l.limit, sizeof(*s.l.infos));
    s.l.ptrs = calloc(s.l.limit, sizeof(*s.l.ptrs));
    s.l.ids = malloc(s.l.limit * (PLINTH_DN_ID_LEN + 1));
    rc = s.l.infos && s.l.ptrs && s.l.ids
         ? plinth_dn_store_walk(h->store, after, plinth_dn_scrub_cb, &s) : -1;
    free(s.buf);

    if (rc != 0) {
        free(s.l.infos);
        free(s.l.ptrs);
        free(s.l.ids);
        return plinth_dn_reply_error(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
                  "io_error", "scrub failed: %s", strerror(errno));
    }

    bl.n_blobs = s.l.n;
    bl.blobs = s.l.ptrs;
    bl.truncated = s.more;
    len = protobuf_c_message_get_packed_size(&bl.base);
    buf = malloc(len ? len : 1);
    if (buf != NULL) {
        protobuf_c_message_pack(&bl.base, buf);
    }
    free(s.l.infos);
    free(s.l.ptrs);
    free(s.l.ids);
    if (buf == NULL) {
        return MHD_NO;
    }
    resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(buf);
        return MHD_NO;
    }
    snprintf(num, sizeof(num), "%llu", (unsigned long long) s.checked);
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                PLINTH_DN_PROTO_TYPE) != MHD_YES
        || MHD_add_response_header(resp, "X-Plinth-Scrub-Checked", num)
           != MHD_YES
        || (s.checked > 0
            && MHD_add_response_header(resp, "X-Plinth-Scrub-Last", s.last)
               != MHD_YES))
    {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    plinth_dn_log(PLINTH_DN_LOG_INFO, r->ridp, NULL,
                  "scrubbed %llu blobs, %zu corrupt",
                  (unsigned long long) s.checked, s.l.n);
    return plinth_dn_reply(c, r, MHD_HTTP_OK, resp);
}


/* POST /blobs/multi: keep the body (a MultiReadRequest), capped. */
static void
plinth_dn_multi_body(plinth_dn_req *r, const char *data, size_t len)
{
    uint8_t  *p;

    if (r->body_over) {
        return;
    }
    if (len > PLINTH_DN_MULTI_BODY - r->body_len) {
        r->body_over = 1;
        return;
    }

    p = realloc(r->body, r->body_len + len);
    if (p == NULL) {
        r->body_over = 1;
        return;
    }
    memcpy(p + r->body_len, data, len);
    r->body = p;
    r->body_len += len;
}


/* One frame's header at out: u32 LE length, then the MultiReadEntry.
 * With out NULL, only its length. */
static size_t
plinth_dn_multi_frame(uint8_t *out, uint32_t index, const char *code,
    uint64_t length, uint64_t size)
{
    Plinth__MultiReadEntry  e = PLINTH__MULTI_READ_ENTRY__INIT;
    size_t                  n;

    e.index = index;
    e.code = (char *) code;
    e.length = length;
    e.size = size;
    if (out == NULL) {
        return 4 + protobuf_c_message_get_packed_size(&e.base);
    }
    n = protobuf_c_message_pack(&e.base, out + 4);
    out[0] = (uint8_t) n;
    out[1] = (uint8_t) (n >> 8);
    out[2] = (uint8_t) (n >> 16);
    out[3] = (uint8_t) (n >> 24);
    return 4 + n;
}


/*
 * Item index's frame at out (its header, then bytes [offset, offset +
 * length) of its blob, every block they touch checked against its XXH3
 * first), or, when it cannot be served, a frame of its code and no data.
 * Returns the frame's length and adds the bytes served to *sent. An item
 * whose bytes end within the first PLINTH_DN_SMALL_READ bytes of its blob
 * (a small object, the usual batch entry) is read with one pread of the
 * whole file (plinth_dn_blob_open_small). From its first byte (a whole
 * small object), the file is read straight into the frame, where its
 * data is checked in place: out has PLINTH_DN_SMALL_READ bytes to spare
 * past the frames for the footer read behind it, which the next frame
 * overwrites. Otherwise it is read into *small and the range copied from
 * there. A larger item's blocks the range covers whole are read straight
 * into their place in the frame (no copy through *blk). A failed item's
 * bytes are left behind its error frame and never sent.
 */
static size_t
plinth_dn_multi_item(plinth_dn_http *h, plinth_dn_req *r, uint32_t index,
    const Plinth__MultiReadItem *it, uint8_t *out, uint8_t **blk,
    size_t *blk_size, uint8_t **small, uint64_t *sent)
{
    plinth_dn_blob   b;
    plinth_dn_rc     rc;
    const char      *code;
    const uint8_t   *src, *file;
    uint32_t         bs;
    uint64_t         idx, first, last, from, to, bstart, size, n;
    size_t           hl, guess, blen, flen;
    uint8_t         *data, *dst, *nb;
    int              brc, whole, near, direct;

    size = 0;
    flen = 0;
    guess = 0;
    file = NULL;
    near = it->offset + it->length <= PLINTH_DN_SMALL_READ - BLOCKFILE_TAIL;
    direct = near && it->offset == 0;

    if (near && !direct && *small == NULL) {
        *small = malloc(PLINTH_DN_SMALL_READ);   /* NULL: read as others */
    }

    if (direct) {
        /* where the data goes if the blob is the range's length */
        guess = plinth_dn_multi_frame(NULL, index, "", it->length,
                                      it->length);
        rc = plinth_dn_blob_open_small(h->store, it->id, &b, out + guess,
                                       PLINTH_DN_SMALL_READ, &flen);
    } else if (near && *small != NULL) {
        rc = plinth_dn_blob_open_small(h->store, it->id, &b, *small,
                                       PLINTH_DN_SMALL_READ, &flen);
        file = *small;
    } else {
        rc = plinth_dn_blob_open(h->store, it->id, &b);
    }

    if (rc != PLINTH_DN_OK) {
        if (rc == PLINTH_DN_CORRUPT) {
            plinth_dn_corrupt(h->store, r->ridp, it->id,
                              PLINTH_DN_BLOCK_FOOTER);
            code = "corrupt";
        } else {
            code = rc == PLINTH_DN_NOT_FOUND ? "not_found" : "io_error";
        }
        goto failed;
    }

    size = b.meta.t.size;
    if (it->offset >= size || it->length > size - it->offset) {
        code = "bad_range";
        goto failed_open;
    }

    hl = plinth_dn_multi_frame(NULL, index, "", it->length, size);
    data = out + hl;

    if (direct && flen) {
        if (hl != guess) {
            /* a longer blob than the range: its varint is longer */
            memmove(data, out + guess, (size_t) size);
        }
        file = data;    /* offset 0: the file's bytes are the frame's */
    }

    (void) plinth_dn_multi_frame(out, index, "", it->length, size);
    bs = b.meta.t.block_size;
    first = it->offset / bs;
    last = (it->offset + it->length - 1) / bs;

    for (idx = first; idx <= last; idx++) {
        bstart = idx * bs;
        n = size - bstart < bs ? size - bstart : bs;
        from = it->offset > bstart ? it->offset - bstart : 0;
        to = it->offset + it->length - bstart;
        if (to > n) {
            to = n;
        }

        whole = (from == 0 && to == n);

        if (flen) {
            brc = blockfile_block_mem(&b.meta, file, idx, &src, &blen);

        } else {
            if (whole) {
                dst = data + (bstart - it->offset);

            } else {
                if (*blk_size < bs) {
                    nb = realloc(*blk, bs);
                    if (nb == NULL) {
                        code = "io_error";
                        goto failed_open;
                    }
                    *blk = nb;
                    *blk_size = bs;
                }
                dst = *blk;
            }

            brc = blockfile_read_block(b.fd, &b.meta, idx, dst, &blen);
            src = dst;
        }

        if (brc != BLOCKFILE_OK) {
            if (brc == BLOCKFILE_ECORRUPT) {
                plinth_dn_corrupt(h->store, r->ridp, it->id, idx);
                code = "corrupt";
            } else {
                plinth_dn_log(PLINTH_DN_LOG_ERROR, r->ridp, it->id,
                              "read error in block %llu: %s",
                              (unsigned long long) idx, strerror(errno));
                code = "io_error";
            }
            goto failed_open;
        }

        if (blen != n || from >= to) {
            /* a block shorter than the footer said: not the blob */
            plinth_dn_corrupt(h->store, r->ridp, it->id, idx);
            code = "corrupt";
            goto failed_open;
        }

        if (flen ? file != data : !whole) {
            memcpy(data + (bstart + from - it->offset), src + from,
                   to - from);
        }
    }

    plinth_dn_blob_close(&b);
    *sent += it->length;
    return hl + (size_t) it->length;

failed_open:
    plinth_dn_blob_close(&b);
failed:
    plinth_dn_log(PLINTH_DN_LOG_WARN, r->ridp, it->id,
                  "multi-read item %u: %s", index, code);
    return plinth_dn_multi_frame(out, index, code, 0, size);
}


/*
 * POST /blobs/multi: a MultiReadRequest body; the answer is one frame per
 * item (proto/plinth.proto, MultiReadEntry). A missing, corrupt or out of
 * range item gets its code and no data; the others are served. A body
 * that does not parse, has no items or more than PLINTH_DN_MULTI_ITEMS,
 * a bad id, an empty range or more than PLINTH_DN_MULTI_BYTES in all is
 * 400 and nothing is read.
 */
static enum MHD_Result
plinth_dn_multi(plinth_dn_http *h, struct MHD_Connection *c,
    plinth_dn_req *r)
{
    Plinth__MultiReadRequest  *req;
    Plinth__MultiReadItem     *it;
    struct MHD_Response       *resp;
    uint64_t                   total, sent;
    uint8_t                   *out, *blk, *small;
    size_t                     i, pos, blk_size, cap;
    enum MHD_Result            ret;

    if (r->body_over) {
        return plinth_dn_reply_error(c, r, MHD_HTTP_BAD_REQUEST,
                   "bad_request", "multi-read body over %d bytes",
                   PLINTH_DN_MULTI_BODY);
    }

    req = plinth__multi_read_request__unpack(NULL, r->body_len,
                                             r->body ? r->body
                                                     : (uint8_t *) "");
    if (req == NULL) {
        return plinth_dn_reply_error(c, r, MHD_HTTP_BAD_REQUEST,
                   "bad_request", "malformed multi-read body");
    }

    if (req->n_items == 0 || req->n_items > PLINTH_DN_MULTI_ITEMS) {
        plinth__multi_read_request__free_unpacked(req, NULL);
        return plinth_dn_reply_error(c, r, MHD_HTTP_BAD_REQUEST,
                   "bad_request", "a multi-read names 1 to %d blobs",
                   PLINTH_DN_MULTI_ITEMS);
    }

    total = 0;
    for (i = 0; i < req->n_items; i++) {
        it = req->items[i];
        if (!plinth_dn_id_valid(it->id)) {
            plinth__multi_read_request__free_unpacked(req, NULL);
            return plinth_dn_reply_error(c, r, MHD_HTTP_BAD_REQUEST,
                       "bad_id", "blob id must be 32 lower-case hex digits");
        }
        if (it->length == 0 || it->length > PLINTH_DN_MULTI_BYTES
            || total + it->length > PLINTH_DN_MULTI_BYTES)
        {
            plinth__multi_read_request__free_unpacked(req, NULL);
            return plinth_dn_reply_error(c, r, MHD_HTTP_BAD_REQUEST,
                       "bad_request", "a multi-read item wants 1 byte or "
                       "more, and all of them %d bytes at most",
                       PLINTH_DN_MULTI_BYTES);
        }
        total += it->length;
    }

    /* room for every frame, and behind them for a small blob's footer
     * read straight into the frame (plinth_dn_multi_item) */
    cap = (size_t) total + req->n_items * (4 + PLINTH_DN_MULTI_HDR)
          + PLINTH_DN_SMALL_READ;
    out = malloc(cap);
    if (out == NULL) {
        plinth__multi_read_request__free_unpacked(req, NULL);
        return plinth_dn_reply_rc(c, r, PLINTH_DN_ENOMEM);
    }

    blk = NULL;
    blk_size = 0;
    small = NULL;
    pos = 0;
    sent = 0;

    for (i = 0; i < req->n_items; i++) {
        pos += plinth_dn_multi_item(h, r, (uint32_t) i, req->items[i],
                                    out + pos, &blk, &blk_size, &small,
                                    &sent);
    }

    plinth_dn_metrics_bytes_out(sent);

    free(blk);
    free(small);
    plinth__multi_read_request__free_unpacked(req, NULL);

    resp = MHD_create_response_from_buffer(pos, out, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(out);
        return MHD_NO;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                PLINTH_DN_MULTI_TYPE) != MHD_YES)
    {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    ret = plinth_dn_reply(c, r, MHD_HTTP_OK, resp);
    return ret;
}
