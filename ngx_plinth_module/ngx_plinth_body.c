/*
 * Request bodies of writes (PutObject, UploadPart), as they arrive.
 *
 * The module's request body filter hands every buffer of the body here
 * before nginx stores it (in memory or in the client body temp file). We
 * compute the MD5 (the ETag), the SHA-256 announced in
 * x-amz-content-sha256, and the CRC-32 announced in x-amz-checksum-crc32.
 * An aws-chunked body (Content-Encoding: aws-chunked, a STREAMING-*
 * payload hash) is decoded here: only the payload goes on to be stored,
 * as buffers pointing into nginx's own read buffer (no copy), and every
 * chunk signature, the trailer signature and the trailer checksum are
 * verified as the chunks complete. The first failure is remembered
 * (ctx->body_error) and the rest of the body is read and dropped, so the
 * client gets S3's error document once the body is in, and nothing is
 * stored.
 */

#include "ngx_plinth.h"
#include "ngx_plinth_sigv4.h"
#include "ngx_plinth_chunked.h"
#include "ngx_plinth_crc.h"
#include <ngx_crc32.h>
#include <isa-l/crc.h>
#include <openssl/evp.h>


struct ngx_http_plinth_body_s {
    plinth_chunked_t              dec;
    plinth_sigv4_chain_t          chain;
    EVP_MD_CTX                   *chunk_sha;    /* signed modes: per chunk */
    EVP_MD_CTX                   *trailer_sha;  /* signed trailer */
    unsigned                      signed_chunks:1;
    unsigned                      signed_trailer:1;
    unsigned                      done:1;
    u_char                        sig[64];      /* the current chunk's */
};


static void ngx_http_plinth_body_cleanup(void *data);
static ngx_int_t ngx_http_plinth_body_data(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, u_char *p, size_t len, ngx_chain_t ***ll);
static ngx_int_t ngx_http_plinth_body_event(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, plinth_chunked_event_t *ev);
static void ngx_http_plinth_body_fail(ngx_http_plinth_ctx_t *ctx,
    ngx_plinth_err_e err, const char *message);


/*
 * Prepares an aws-chunked body: mode from the payload hash, the declared
 * decoded length, and the signature chain seeded with the request's own
 * signature (signed modes). NGX_DECLINED after answering a bad request.
 */
ngx_int_t
ngx_http_plinth_body_chunked(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    ngx_uint_t payload, const u_char key[32], ngx_str_t *amz_date,
    ngx_str_t *scope, const u_char seed[64])
{
    off_t                     n;
    plinth_sv_str_t           date, sc, sd;
    ngx_table_elt_t          *h;
    ngx_pool_cleanup_t       *cln;
    ngx_http_plinth_body_t   *b;
    plinth_chunked_mode_t     mode;

    switch (payload) {
    case PLINTH_SIGV4_PAYLOAD_STREAMING:
        mode = PLINTH_CHUNKED_SIGNED;
        break;
    case PLINTH_SIGV4_PAYLOAD_STREAMING_TRAILER:
        mode = PLINTH_CHUNKED_SIGNED_TRAILER;
        break;
    default:
        mode = PLINTH_CHUNKED_UNSIGNED_TRAILER;
        break;
    }

    n = -1;
    h = ngx_http_plinth_header_in(r, "x-amz-decoded-content-length");
    if (h) {
        n = ngx_atoof(h->value.data, h->value.len);
        if (n < 0) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                                  "Invalid x-amz-decoded-content-length.");
            return NGX_DECLINED;
        }

    } else if (mode != PLINTH_CHUNKED_UNSIGNED_TRAILER) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_MISSING_CONTENT_LENGTH,
                              "x-amz-decoded-content-length is required.");
        return NGX_DECLINED;
    }

    b = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_body_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (b == NULL || cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_plinth_body_cleanup;
    cln->data = b;

    plinth_chunked_init(&b->dec, mode, n);

    if (mode != PLINTH_CHUNKED_UNSIGNED_TRAILER) {
        b->dec.min_chunk_size = PLINTH_CHUNKED_S3_MIN_CHUNK;
    }

    /* without a key (plinth_auth off) the framing is decoded, not checked */
    if (mode != PLINTH_CHUNKED_UNSIGNED_TRAILER && key != NULL) {
        b->signed_chunks = 1;
        b->signed_trailer = (mode == PLINTH_CHUNKED_SIGNED_TRAILER);

        b->chunk_sha = EVP_MD_CTX_new();
        b->trailer_sha = EVP_MD_CTX_new();
        if (b->chunk_sha == NULL || b->trailer_sha == NULL
            || plinth_sigv4_sha256_init(b->trailer_sha) != PLINTH_SIGV4_OK)
        {
            return NGX_ERROR;
        }

        date.data = amz_date->data;
        date.len = amz_date->len;
        sc.data = scope->data;
        sc.len = scope->len;
        sd.data = seed;
        sd.len = 64;

        if (plinth_sigv4_chain_init(&b->chain, key, date, sc, sd)
            != PLINTH_SIGV4_OK)
        {
            return NGX_ERROR;
        }
    }

    ctx->body = b;

    return NGX_OK;
}


static void
ngx_http_plinth_body_cleanup(void *data)
{
    ngx_http_plinth_body_t  *b = data;

    EVP_MD_CTX_free(b->chunk_sha);
    EVP_MD_CTX_free(b->trailer_sha);
}


/* The request body filter's work: see the top of this file. */
ngx_int_t
ngx_http_plinth_request_body(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_chain_t *in, ngx_chain_t **out)
{
    ngx_int_t                     rc;
    ngx_buf_t                    *last;
    ngx_uint_t                    is_last;
    ngx_chain_t                  *cl, **ll;
    const u_char                 *pos, *end;
    plinth_chunked_rc_t           drc;
    plinth_chunked_event_t        ev;
    ngx_http_plinth_body_t       *b;
    ngx_http_plinth_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);
    b = ctx->body;
    *out = NULL;
    ll = out;
    is_last = 0;

    for (cl = in; cl; cl = cl->next) {

        if (cl->buf->in_file && !ngx_buf_in_memory(cl->buf)) {
            /* nginx never hands the filter file-only buffers */
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "plinth: request body buffer in a file");
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (cl->buf->last_buf) {
            is_last = 1;
        }

        pos = cl->buf->pos;
        end = cl->buf->last;

        /*
         * What goes on are buffers of our own over the same memory; nginx
         * sees its own buffer consumed, as if the next filter had taken it
         */
        cl->buf->pos = cl->buf->last;

        if (b == NULL) {
            rc = ngx_http_plinth_body_data(r, ctx, (u_char *) pos, end - pos,
                                           &ll);
            if (rc != NGX_OK) {
                return rc;
            }
            continue;
        }

        while (ctx->body_error == NGX_PLINTH_ERR_MAX) {
            drc = plinth_chunked_next(&b->dec, &pos, end, &ev);

            if (drc == PLINTH_CHUNKED_AGAIN) {
                break;
            }

            if (drc != PLINTH_CHUNKED_OK) {
                ngx_http_plinth_body_fail(ctx,
                    drc == PLINTH_CHUNKED_ERR_SIGNATURE
                    ? NGX_PLINTH_ERR_SIGNATURE
                    : (drc == PLINTH_CHUNKED_ERR_TRAILER
                       ? NGX_PLINTH_ERR_INVALID_ARGUMENT
                       : NGX_PLINTH_ERR_INCOMPLETE_BODY),
                    plinth_chunked_strerror(drc));
                break;
            }

            if (ev.type == PLINTH_CHUNKED_EV_DATA) {
                rc = ngx_http_plinth_body_data(r, ctx, (u_char *) ev.data,
                                               ev.len, &ll);
                if (rc != NGX_OK) {
                    return rc;
                }
                continue;
            }

            rc = ngx_http_plinth_body_event(r, ctx, &ev);
            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    if (ctx->body_len > pmcf->max_object_size) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "plinth: body over plinth_max_object_size");
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    if (is_last) {
        if (b && ctx->body_error == NGX_PLINTH_ERR_MAX && !b->done) {
            drc = plinth_chunked_finish(&b->dec);
            ngx_http_plinth_body_fail(ctx, NGX_PLINTH_ERR_INCOMPLETE_BODY,
                                      plinth_chunked_strerror(
                                          drc == PLINTH_CHUNKED_OK
                                          ? PLINTH_CHUNKED_ERR_TRUNCATED
                                          : drc));
        }

        last = ngx_calloc_buf(r->pool);
        cl = ngx_alloc_chain_link(r->pool);
        if (last == NULL || cl == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        last->last_buf = 1;
        cl->buf = last;
        cl->next = NULL;
        *ll = cl;
    }

    return NGX_OK;
}


/* Payload bytes: hashed, counted, and passed on (unless failing). */
static ngx_int_t
ngx_http_plinth_body_data(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    u_char *p, size_t len, ngx_chain_t ***ll)
{
    ngx_buf_t               *buf;
    ngx_chain_t             *cl;
    ngx_http_plinth_body_t  *b;

    if (len == 0 || ctx->body_error != NGX_PLINTH_ERR_MAX) {
        return NGX_OK;
    }

    b = ctx->body;

    ngx_md5_update(&ctx->md5, p, len);
    ctx->body_len += len;

    if (ctx->sha256) {
        ngx_http_plinth_sha256_update(ctx, p, len);
    }

    if (ctx->cks_alg) {
        ngx_http_plinth_checksum_update(ctx, p, len);
    }

    if (b && b->signed_chunks) {
        (void) plinth_sigv4_sha256_update(b->chunk_sha, p, len);
    }

    /* a buffer of our own over nginx's memory: no copy */
    buf = ngx_calloc_buf(r->pool);
    cl = ngx_alloc_chain_link(r->pool);
    if (buf == NULL || cl == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    buf->temporary = 1;
    buf->start = p;
    buf->pos = p;
    buf->last = p + len;
    buf->end = p + len;

    cl->buf = buf;
    cl->next = NULL;
    **ll = cl;
    *ll = &cl->next;

    return NGX_OK;
}


static ngx_int_t
ngx_http_plinth_body_event(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    plinth_chunked_event_t *ev)
{
    u_char                   md[32];
    ngx_str_t                name;
    plinth_sv_str_t          claimed, n, v;
    ngx_http_plinth_body_t  *b;

    b = ctx->body;

    switch (ev->type) {

    case PLINTH_CHUNKED_EV_CHUNK:
        if (b->signed_chunks) {
            ngx_memcpy(b->sig, ev->signature, 64);
            if (plinth_sigv4_sha256_init(b->chunk_sha) != PLINTH_SIGV4_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
        return NGX_OK;

    case PLINTH_CHUNKED_EV_CHUNK_END:
    case PLINTH_CHUNKED_EV_LAST:
        if (!b->signed_chunks) {
            return NGX_OK;
        }

        if (ev->type == PLINTH_CHUNKED_EV_LAST) {
            ngx_memcpy(b->sig, ev->signature, 64);
            if (plinth_sigv4_sha256_init(b->chunk_sha) != PLINTH_SIGV4_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        if (plinth_sigv4_sha256_final(b->chunk_sha, md) != PLINTH_SIGV4_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        claimed.data = b->sig;
        claimed.len = 64;

        if (plinth_sigv4_chain_chunk(&b->chain, md, claimed)
            != PLINTH_SIGV4_OK)
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "plinth: aws-chunked chunk signature mismatch");
            ngx_http_plinth_body_fail(ctx, NGX_PLINTH_ERR_SIGNATURE,
                                      "A chunk signature does not match.");
        }
        return NGX_OK;

    case PLINTH_CHUNKED_EV_TRAILER:
        name.data = (u_char *) ev->name;
        name.len = ev->name_len;

        if (name.len == sizeof("x-amz-trailer-signature") - 1
            && ngx_strncasecmp(name.data, (u_char *) "x-amz-trailer-signature",
                               name.len) == 0)
        {
            if (!b->signed_trailer) {
                ngx_http_plinth_body_fail(ctx,
                                          NGX_PLINTH_ERR_INVALID_ARGUMENT,
                                          "Unexpected trailer signature.");
                return NGX_OK;
            }

            if (plinth_sigv4_sha256_final(b->trailer_sha, md)
                != PLINTH_SIGV4_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            claimed.data = ev->data;
            claimed.len = ev->len;

            if (plinth_sigv4_chain_trailer(&b->chain, md, claimed)
                != PLINTH_SIGV4_OK)
            {
                ngx_http_plinth_body_fail(ctx, NGX_PLINTH_ERR_SIGNATURE,
                                          "The trailer signature does not "
                                          "match.");
            }

            b->signed_trailer = 0;
            return NGX_OK;
        }

        if (b->signed_trailer) {
            n.data = ev->name;
            n.len = ev->name_len;
            v.data = ev->data;
            v.len = ev->len;
            (void) plinth_sigv4_trailer_update(b->trailer_sha, n, v);
        }

        return ngx_http_plinth_checksum_trailer(r, ctx, &name, ev->data,
                                                ev->len);

    case PLINTH_CHUNKED_EV_DONE:
        b->done = 1;

        if (b->signed_trailer) {
            /* a signed-trailer body must end with its trailer signature */
            ngx_http_plinth_body_fail(ctx, NGX_PLINTH_ERR_SIGNATURE,
                                      "The trailer signature is missing.");
        }
        return NGX_OK;

    default:
        return NGX_OK;
    }
}


/*
 * The flexible checksums of S3 (x-amz-checksum-<alg>, in a header or as a
 * trailer): CRC32 (nginx's own), CRC32C (ISA-L), SHA1 and SHA256
 * (OpenSSL), CRC64NVME (ngx_plinth_crc.c: no Debian library has it) are
 * computed over the payload as it arrives, compared at the end (BadDigest),
 * echoed in the answer and stored with the object or part.
 */
const char  *ngx_http_plinth_cks_names[] = {
    "", "crc32", "crc32c", "sha1", "sha256", "crc64nvme", NULL
};

/* as S3 names them: plinth_cks_algorithms (ngx_plinth_s3_parse.c) */

const char  *ngx_http_plinth_cks_headers[] = {
    "", "x-amz-checksum-crc32", "x-amz-checksum-crc32c",
    "x-amz-checksum-sha1", "x-amz-checksum-sha256",
    "x-amz-checksum-crc64nvme", NULL
};


/* The algorithm named by "x-amz-checksum-<alg>" (case-insensitive), or 0. */
ngx_uint_t
ngx_http_plinth_checksum_alg(const u_char *name, size_t len)
{
    if (len <= 15
        || ngx_strncasecmp((u_char *) name, (u_char *) "x-amz-checksum-", 15)
           != 0)
    {
        return NGX_PLINTH_CKS_NONE;
    }

    return ngx_http_plinth_checksum_alg_name(name + 15, len - 15);
}


/* The algorithm of a name ("crc32", "CRC32"; case-insensitive), or 0. */
ngx_uint_t
ngx_http_plinth_checksum_alg_name(const u_char *name, size_t len)
{
    ngx_uint_t  a;

    for (a = 1; ngx_http_plinth_cks_names[a]; a++) {
        if (len == ngx_strlen(ngx_http_plinth_cks_names[a])
            && ngx_strncasecmp((u_char *) name,
                               (u_char *) ngx_http_plinth_cks_names[a], len)
               == 0)
        {
            return a;
        }
    }

    return NGX_PLINTH_CKS_NONE;
}


static ngx_int_t
ngx_http_plinth_checksum_start(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_uint_t alg, ngx_str_t *want)
{
    ngx_pool_cleanup_t  *cln;

    if (ctx->cks_alg && ctx->cks_alg != alg) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_REQUEST,
                              "Expecting a single x-amz-checksum- header. "
                              "Multiple checksum Types are not allowed.");
        return NGX_DECLINED;
    }

    ctx->cks_alg = alg;
    ctx->cks_want = *want;

    switch (alg) {
    case NGX_PLINTH_CKS_CRC32:
        ngx_crc32_init(ctx->cks_crc);
        break;
    case NGX_PLINTH_CKS_CRC32C:
        ctx->cks_crc = 0xffffffff;
        break;
    case NGX_PLINTH_CKS_CRC64NVME:
        ctx->cks_crc = PLINTH_CRC64NVME_INIT;
        break;
    default:
        if (ctx->cks_md) {
            break;
        }
        cln = ngx_pool_cleanup_add(r->pool, 0);
        ctx->cks_md = EVP_MD_CTX_new();
        if (cln == NULL || ctx->cks_md == NULL) {
            return NGX_ERROR;
        }
        cln->handler = (ngx_pool_cleanup_pt) EVP_MD_CTX_free;
        cln->data = ctx->cks_md;
        if (EVP_DigestInit_ex(ctx->cks_md, alg == NGX_PLINTH_CKS_SHA1
                                           ? EVP_sha1() : EVP_sha256(),
                              NULL) != 1)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


void
ngx_http_plinth_checksum_update(ngx_http_plinth_ctx_t *ctx, u_char *p,
    size_t len)
{
    uint32_t  crc32;

    switch (ctx->cks_alg) {
    case NGX_PLINTH_CKS_CRC32:
        crc32 = (uint32_t) ctx->cks_crc;
        ngx_crc32_update(&crc32, p, len);
        ctx->cks_crc = crc32;
        break;
    case NGX_PLINTH_CKS_CRC64NVME:
        ctx->cks_crc = plinth_crc64nvme(ctx->cks_crc, p, len);
        break;
    case NGX_PLINTH_CKS_CRC32C:
        while (len) {
            size_t  n = len > 0x40000000 ? 0x40000000 : len;
            ctx->cks_crc = crc32_iscsi(p, (int) n, (uint32_t) ctx->cks_crc);
            p += n;
            len -= n;
        }
        break;
    default:
        (void) EVP_DigestUpdate(ctx->cks_md, p, len);
    }
}


/* A checksum trailer: keep its value for the check at the end. */
ngx_int_t
ngx_http_plinth_checksum_trailer(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_str_t *name, const u_char *value,
    size_t len)
{
    ngx_uint_t  alg;

    if (name->len < 15
        || ngx_strncasecmp(name->data, (u_char *) "x-amz-checksum-", 15) != 0)
    {
        return NGX_OK;
    }

    alg = ngx_http_plinth_checksum_alg(name->data, name->len);

    if (alg == NGX_PLINTH_CKS_NONE) {
        ngx_http_plinth_body_fail(ctx, NGX_PLINTH_ERR_NOT_IMPLEMENTED,
                                  "This checksum algorithm is not "
                                  "supported.");
        return NGX_OK;
    }

    if (alg != ctx->cks_alg) {
        ngx_http_plinth_body_fail(ctx, NGX_PLINTH_ERR_INVALID_REQUEST,
                                  "The checksum trailer is not the one "
                                  "x-amz-trailer announced.");
        return NGX_OK;
    }

    ctx->cks_got.data = ngx_pnalloc(r->pool, len);
    if (ctx->cks_got.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(ctx->cks_got.data, value, len);
    ctx->cks_got.len = len;

    return NGX_OK;
}


/* x-amz-checksum-<alg>: <value> on the answer to a verified write. */
ngx_int_t
ngx_http_plinth_checksum_header(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    if (ctx->cks_alg == NGX_PLINTH_CKS_NONE) {
        return NGX_OK;
    }

    return ngx_http_plinth_add_header(r,
               ngx_http_plinth_cks_headers[ctx->cks_alg],
               ctx->cks_got.len ? &ctx->cks_got : &ctx->cks_want);
}


/*
 * The verified checksum as statement parameters: its algorithm and value
 * as C strings, or NULLs when the write carried none.
 */
ngx_int_t
ngx_http_plinth_checksum_params(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, const char **alg, const char **value)
{
    *alg = NULL;
    *value = NULL;

    if (ctx->cks_alg == NGX_PLINTH_CKS_NONE) {
        return NGX_OK;
    }

    *alg = ngx_http_plinth_cks_names[ctx->cks_alg];
    *value = (char *) ngx_http_plinth_cstr(r->pool, ctx->cks_got.len
                                                    ? &ctx->cks_got
                                                    : &ctx->cks_want);

    return *value ? NGX_OK : NGX_ERROR;
}


/*
 * Before a write's body is read: sets up aws-chunked decoding when
 * authentication has not (plinth_auth off: the framing is decoded, the
 * signatures not checked) and the checksum the client announced. *length
 * is the payload's length as announced (-1 unknown). NGX_DECLINED after
 * answering.
 */
ngx_int_t
ngx_http_plinth_body_prepare(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, off_t *length)
{
    ngx_int_t                 rc;
    ngx_str_t                 trailer = ngx_string("x-amz-trailer");
    ngx_uint_t                i, alg;
    ngx_list_part_t          *part;
    ngx_table_elt_t          *h, *sha;
    plinth_sv_str_t           v;
    plinth_sigv4_payload_t    kind;

    *length = r->headers_in.content_length_n;

    sha = ngx_http_plinth_header_in(r, "x-amz-content-sha256");
    kind = PLINTH_SIGV4_PAYLOAD_UNSIGNED;
    if (sha) {
        v.data = sha->value.data;
        v.len = sha->value.len;
        kind = plinth_sigv4_payload_kind(v);
    }

    if (ctx->body == NULL && ngx_http_plinth_aws_chunked(r)) {
        rc = ngx_http_plinth_body_chunked(r, ctx,
                 kind == PLINTH_SIGV4_PAYLOAD_STREAMING
                 || kind == PLINTH_SIGV4_PAYLOAD_STREAMING_TRAILER
                 ? kind : PLINTH_SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER,
                 NULL, NULL, NULL, NULL);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (ctx->body && ctx->body->dec.decoded_length >= 0) {
        *length = ctx->body->dec.decoded_length;
    }

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;
        for (i = 0; i < part->nelts; i++) {

            if (h[i].key.len == 13
                && ngx_strncasecmp(h[i].key.data, (u_char *) "x-amz-trailer",
                                   13) == 0)
            {
                alg = ngx_http_plinth_checksum_alg(h[i].value.data,
                                                   h[i].value.len);
                if (alg == NGX_PLINTH_CKS_NONE) {
                    ngx_http_plinth_error(r, NGX_PLINTH_ERR_NOT_IMPLEMENTED,
                                          "This checksum algorithm is not "
                                          "supported.");
                    return NGX_DECLINED;
                }
                rc = ngx_http_plinth_checksum_start(r, ctx, alg, &trailer);
                if (rc != NGX_OK) {
                    return rc;
                }
                continue;
            }

            if (h[i].key.len <= 15
                || ngx_strncasecmp(h[i].key.data,
                                   (u_char *) "x-amz-checksum-", 15) != 0
                || (h[i].key.len == 20
                    && ngx_strncasecmp(h[i].key.data + 15,
                                       (u_char *) "-mode", 5) == 0)
                || (h[i].key.len == 31
                    && ngx_strncasecmp(h[i].key.data + 15,
                                       (u_char *) "-algorithm", 10) == 0)
                || (h[i].key.len == 19
                    && ngx_strncasecmp(h[i].key.data + 15,
                                       (u_char *) "type", 4) == 0))
            {
                continue;
            }

            alg = ngx_http_plinth_checksum_alg(h[i].key.data, h[i].key.len);
            if (alg == NGX_PLINTH_CKS_NONE) {
                ngx_http_plinth_error(r, NGX_PLINTH_ERR_NOT_IMPLEMENTED,
                                      "This checksum algorithm is not "
                                      "supported.");
                return NGX_DECLINED;
            }

            rc = ngx_http_plinth_checksum_start(r, ctx, alg, &h[i].value);
            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    return NGX_OK;
}


/*
 * After the whole body: NGX_OK, or the S3 error to answer (and its
 * message in *message).
 */
ngx_int_t
ngx_http_plinth_body_check(ngx_http_plinth_ctx_t *ctx, ngx_plinth_err_e *err,
    const char **message)
{
    u_char        md[EVP_MAX_MD_SIZE], b64[2 * EVP_MAX_MD_SIZE];
    uint64_t      crc;
    ngx_str_t     src, dst, *want;
    unsigned int  n;

    if (ctx->body_error != NGX_PLINTH_ERR_MAX) {
        *err = ctx->body_error;
        *message = ctx->body_message;
        return NGX_ERROR;
    }

    if (ctx->cks_alg == NGX_PLINTH_CKS_NONE) {
        return NGX_OK;
    }

    /* a trailer brings the value at the end; a header brought it first */
    want = ctx->cks_got.len ? &ctx->cks_got : &ctx->cks_want;

    if (want->len == 13 && ngx_strncmp(want->data, "x-amz-trailer", 13) == 0)
    {
        *err = NGX_PLINTH_ERR_INVALID_REQUEST;
        *message = "The announced checksum trailer was not sent.";
        return NGX_ERROR;
    }

    switch (ctx->cks_alg) {
    case NGX_PLINTH_CKS_CRC32:
    case NGX_PLINTH_CKS_CRC32C:
        crc = ~ctx->cks_crc & 0xffffffff;   /* ngx_crc32_final, too */
        n = 4;
        ngx_http_plinth_crc_bytes(crc, md, n);
        break;
    case NGX_PLINTH_CKS_CRC64NVME:
        crc = ctx->cks_crc;
        n = 8;
        ngx_http_plinth_crc_bytes(crc, md, n);
        break;
    default:
        if (EVP_DigestFinal_ex(ctx->cks_md, md, &n) != 1) {
            *err = NGX_PLINTH_ERR_INTERNAL;
            *message = "The checksum could not be computed.";
            return NGX_ERROR;
        }
    }

    src.data = md;
    src.len = n;
    dst.data = b64;
    ngx_encode_base64(&dst, &src);

    if (dst.len != want->len || ngx_strncmp(dst.data, want->data, dst.len))
    {
        *err = NGX_PLINTH_ERR_BAD_DIGEST;
        *message = "The checksum you specified did not match the "
                   "calculated checksum.";
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A multipart object's checksum from its parts' (base64 values, sizes, in
 * object order), as S3 defines it: COMPOSITE, the checksum of the
 * concatenated raw part checksums, base64, then "-N"; FULL_OBJECT (CRCs
 * only), the part CRCs combined into the CRC of the whole object.
 * NGX_DECLINED when a part's value does not decode to the algorithm's size.
 */
ngx_int_t
ngx_http_plinth_checksum_parts(ngx_pool_t *pool, ngx_uint_t alg,
    ngx_uint_t full, ngx_str_t *parts, off_t *sizes, ngx_uint_t n,
    ngx_str_t *out)
{
    u_char        *cat, md[EVP_MAX_MD_SIZE], raw[EVP_MAX_MD_SIZE];
    size_t         width, k;
    uint32_t       c32;
    uint64_t       crc, poly, v;
    ngx_str_t      src, dst;
    ngx_uint_t     i;
    unsigned int   mdlen;

    width = (alg == NGX_PLINTH_CKS_SHA1) ? 20
            : (alg == NGX_PLINTH_CKS_SHA256) ? 32
            : (alg == NGX_PLINTH_CKS_CRC64NVME) ? 8 : 4;
    poly = (alg == NGX_PLINTH_CKS_CRC32) ? PLINTH_CRC32_POLY
           : (alg == NGX_PLINTH_CKS_CRC32C) ? PLINTH_CRC32C_POLY
           : PLINTH_CRC64NVME_POLY;

    cat = ngx_pnalloc(pool, n * width + 1);
    if (cat == NULL) {
        return NGX_ERROR;
    }

    crc = 0;

    for (i = 0; i < n; i++) {
        dst.data = raw;
        if (parts[i].len > ngx_base64_encoded_length(width)
            || ngx_decode_base64(&dst, &parts[i]) != NGX_OK
            || dst.len != width)
        {
            return NGX_DECLINED;
        }

        ngx_memcpy(cat + i * width, raw, width);

        if (full) {
            for (v = 0, k = 0; k < width; k++) {
                v = (v << 8) | raw[k];
            }
            crc = i ? plinth_crc_combine(poly, (unsigned) width * 8, crc, v,
                                         (uint64_t) sizes[i])
                    : v;
        }
    }

    if (full) {
        mdlen = (unsigned int) width;
        ngx_http_plinth_crc_bytes(crc, md, mdlen);

    } else {
        switch (alg) {
        case NGX_PLINTH_CKS_CRC32:
            ngx_crc32_init(c32);
            ngx_crc32_update(&c32, cat, n * width);
            ngx_crc32_final(c32);
            mdlen = 4;
            ngx_http_plinth_crc_bytes(c32, md, mdlen);
            break;
        case NGX_PLINTH_CKS_CRC32C:
            c32 = ~crc32_iscsi(cat, (int) (n * width), 0xffffffff);
            mdlen = 4;
            ngx_http_plinth_crc_bytes(c32, md, mdlen);
            break;
        case NGX_PLINTH_CKS_CRC64NVME:
            crc = plinth_crc64nvme(PLINTH_CRC64NVME_INIT, cat, n * width);
            mdlen = 8;
            ngx_http_plinth_crc_bytes(crc, md, mdlen);
            break;
        default:
            if (EVP_Digest(cat, n * width, md, &mdlen,
                           alg == NGX_PLINTH_CKS_SHA1 ? EVP_sha1()
                                                      : EVP_sha256(), NULL)
                != 1)
            {
                return NGX_ERROR;
            }
        }
    }

    out->data = ngx_pnalloc(pool, ngx_base64_encoded_length(mdlen)
                                  + 1 + NGX_INT_T_LEN + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    src.data = md;
    src.len = mdlen;
    ngx_encode_base64(out, &src);

    if (!full) {
        out->len = ngx_sprintf(out->data + out->len, "-%ui", n) - out->data;
    }

    out->data[out->len] = '\0';

    return NGX_OK;
}


/* A CRC as S3 prints it: big-endian bytes (then base64). */
void
ngx_http_plinth_crc_bytes(uint64_t crc, u_char *md, ngx_uint_t n)
{
    while (n--) {
        md[n] = (u_char) crc;
        crc >>= 8;
    }
}


static void
ngx_http_plinth_body_fail(ngx_http_plinth_ctx_t *ctx, ngx_plinth_err_e err,
    const char *message)
{
    if (ctx->body_error == NGX_PLINTH_ERR_MAX) {
        ctx->body_error = err;
        ctx->body_message = message;
    }
}
