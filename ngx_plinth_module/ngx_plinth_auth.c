/*
 * Authentication: who is calling.
 *
 * With `plinth_auth sigv4` (the default) a request is signed with AWS
 * Signature Version 4, in the Authorization header or as a presigned URL,
 * or it is anonymous (no signature: it may only read public-read buckets
 * and objects). The access key's secret and user come from PostgreSQL
 * (one prepared statement); the signature is checked by the pure functions
 * of ngx_plinth_sigv4.c, compared in constant time. A payload hash
 * announced in x-amz-content-sha256 is checked against the body as it
 * arrives (ngx_plinth_module.c's request body filter).
 *
 * With `plinth_auth off` every caller is the user "anonymous", which owns
 * the buckets it creates: only for tests and trusted networks, and only
 * when configured so explicitly.
 *
 * Secrets and signatures are never logged.
 */

#include "ngx_plinth.h"
#include "ngx_plinth_sigv4.h"
#include <openssl/crypto.h>


typedef struct {
    plinth_sigv4_auth_t           auth;
    plinth_sigv4_payload_t        payload;
    ngx_str_t                     payload_hash;
    ngx_str_t                     api_secret;  /* API-key mode */
    unsigned                      api_key:1;
} ngx_http_plinth_auth_t;


/*
 * Access keys, cached per worker for plinth_key_cache (5 s by default):
 * most requests then need no statement to know their caller. A key
 * deleted or disabled stops working within that time. Direct-mapped by a
 * hash of the key id; only keys found are kept; longer fields than the
 * slots hold are simply not cached.
 */
#define NGX_PLINTH_KEY_CACHE   512
#define NGX_PLINTH_KEY_FIELD   128

typedef struct {
    u_char                        id[NGX_PLINTH_KEY_FIELD];
    u_char                        secret[NGX_PLINTH_KEY_FIELD];
    u_char                        user[NGX_PLINTH_KEY_FIELD];
    u_char                        name[NGX_PLINTH_KEY_FIELD];
    size_t                        id_len, secret_len, user_len, name_len;
    ngx_msec_t                    expires;
    ngx_uint_t                    used;
} ngx_http_plinth_key_t;

static ngx_http_plinth_key_t  *ngx_http_plinth_keys;


/*
 * SigV4 signing keys, per worker. A signing key depends only on the
 * secret, the date, the region and the service, so a client signs with the
 * same one all day: its four HMACs are made once, not on every request.
 * Direct-mapped by a hash of the four; an entry is used only when all four
 * are the same bytes (each held with its length); fields longer than 255
 * bytes, or together longer than a slot, are not cached.
 */
#define NGX_PLINTH_SIGNING_KEYS  64
#define NGX_PLINTH_SCOPE_MAX     256

typedef struct {
    u_char                        scope[NGX_PLINTH_SCOPE_MAX];
    size_t                        len;
    u_char                        key[32];
} ngx_http_plinth_signing_key_t;

static ngx_http_plinth_signing_key_t  *ngx_http_plinth_signing_keys;


static void ngx_http_plinth_auth_key_done(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_auth_known(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_str_t *secret);
static ngx_http_plinth_key_t *ngx_http_plinth_key_slot(const u_char *id,
    size_t len);
static void ngx_http_plinth_auth_fail(ngx_http_request_t *r,
    plinth_sigv4_rc_t rc, ngx_uint_t presigned);
static ngx_int_t ngx_http_plinth_auth_verify(ngx_http_request_t *r,
    ngx_http_plinth_auth_t *a, ngx_str_t *secret);
static void ngx_http_plinth_sha256_cleanup(void *data);
static plinth_sigv4_rc_t ngx_http_plinth_signing_key(ngx_str_t *secret,
    plinth_sigv4_auth_t *auth, u_char key[32]);


#define ngx_plinth_sv(s)  (plinth_sv_str_t) { (s)->data, (s)->len }

static u_char  ngx_http_plinth_empty_sha256[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";


/*
 * Starts authentication; the request continues in ngx_http_plinth_dispatch
 * once the caller is known, or ends with an S3 error.
 */
ngx_int_t
ngx_http_plinth_authenticate(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    u_char                       *p;
    ngx_str_t                     q;
    ngx_str_t                     secret;
    const char                   *params[1];
    plinth_sigv4_rc_t             rc;
    ngx_table_elt_t              *h, *date, *sha, *api;
    ngx_http_plinth_key_t        *k;
    ngx_http_plinth_auth_t       *a;
    ngx_http_plinth_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);

    if (pmcf->auth == NGX_PLINTH_AUTH_OFF) {
        ngx_str_set(&ctx->identity, NGX_PLINTH_ANONYMOUS);
        return ngx_http_plinth_dispatch(r, ctx);
    }

    a = ngx_pcalloc(r->pool, sizeof(ngx_http_plinth_auth_t));
    if (a == NULL) {
        return NGX_ERROR;
    }

    h = r->headers_in.authorization;
    q = r->args;

    api = pmcf->api_keys ? ngx_http_plinth_header_in(r, "X-Plinth-Api-Key")
                         : NULL;

    if (api) {
        /* "<access key id>:<secret>": for internal tools, over TLS */
        p = ngx_strlchr(api->value.data, api->value.data + api->value.len,
                        ':');
        if (p == NULL || p == api->value.data
            || p == api->value.data + api->value.len - 1)
        {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                                  "X-Plinth-Api-Key is <access key id>:"
                                  "<secret>.");
            return NGX_OK;
        }

        a->api_key = 1;
        a->auth.access_key.data = api->value.data;
        a->auth.access_key.len = p - api->value.data;
        a->api_secret.data = p + 1;
        a->api_secret.len = api->value.data + api->value.len - (p + 1);

    } else if (h) {
        rc = plinth_sigv4_parse_authorization(ngx_plinth_sv(&h->value),
                                              &a->auth);
        if (rc != PLINTH_SIGV4_OK) {
            ngx_http_plinth_auth_fail(r, rc, 0);
            return NGX_OK;
        }

        date = ngx_http_plinth_header_in(r, "x-amz-date");
        if (date == NULL) {
            ngx_http_plinth_auth_fail(r, PLINTH_SIGV4_ERR_DATE, 0);
            return NGX_OK;
        }

        rc = plinth_sigv4_set_date(&a->auth, ngx_plinth_sv(&date->value));
        if (rc == PLINTH_SIGV4_OK) {
            rc = plinth_sigv4_check_skew(a->auth.time, ngx_time());
        }
        if (rc != PLINTH_SIGV4_OK) {
            ngx_http_plinth_auth_fail(r, rc, 0);
            return NGX_OK;
        }

        sha = ngx_http_plinth_header_in(r, "x-amz-content-sha256");
        if (sha == NULL) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_REQUEST,
                                  "Missing required header for this "
                                  "request: x-amz-content-sha256");
            return NGX_OK;
        }

        a->payload_hash = sha->value;
        a->payload = plinth_sigv4_payload_kind(ngx_plinth_sv(&sha->value));

        if (a->payload == PLINTH_SIGV4_PAYLOAD_INVALID) {
            ngx_http_plinth_auth_fail(r, PLINTH_SIGV4_ERR_CONTENT_SHA256, 0);
            return NGX_OK;
        }

        if (a->payload == PLINTH_SIGV4_PAYLOAD_UNSUPPORTED) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_NOT_IMPLEMENTED,
                                  "This payload signing method is not "
                                  "supported.");
            return NGX_OK;
        }

    } else if (plinth_sigv4_is_presigned(ngx_plinth_sv(&q))) {
        a->auth.presigned = 1;

        rc = plinth_sigv4_parse_presigned(ngx_plinth_sv(&q),
                                          ngx_pnalloc(r->pool, q.len + 1),
                                          q.len + 1, &a->auth);
        if (rc == PLINTH_SIGV4_OK) {
            rc = plinth_sigv4_check_presigned_time(&a->auth, ngx_time());
        }
        if (rc != PLINTH_SIGV4_OK) {
            ngx_http_plinth_auth_fail(r, rc, 1);
            return NGX_OK;
        }

        ngx_str_set(&a->payload_hash, "UNSIGNED-PAYLOAD");
        a->payload = PLINTH_SIGV4_PAYLOAD_UNSIGNED;

    } else {
        /* no signature: anonymous, may read what is public */
        ctx->anonymous = 1;
        ctx->identity.len = 0;
        ctx->identity.data = (u_char *) "";
        return ngx_http_plinth_dispatch(r, ctx);
    }

    if (!a->api_key
        && (a->auth.service.len != 2
        || ngx_strncmp(a->auth.service.data, "s3", 2) != 0
        || a->auth.region.len != pmcf->region.len
        || ngx_strncmp(a->auth.region.data, pmcf->region.data,
                       pmcf->region.len) != 0))
    {
        ngx_http_plinth_error(r, a->auth.presigned
                                 ? NGX_PLINTH_ERR_AUTH_QUERY
                                 : NGX_PLINTH_ERR_AUTH_MALFORMED,
                              "The credential's region or service is "
                              "wrong for this endpoint.");
        return NGX_OK;
    }

    ctx->auth = a;

    k = ngx_http_plinth_key_slot(a->auth.access_key.data,
                                 a->auth.access_key.len);

    if (k && k->used && pmcf->key_cache
        && (ngx_msec_int_t) (k->expires - ngx_current_msec) > 0
        && k->id_len == a->auth.access_key.len
        && ngx_memcmp(k->id, a->auth.access_key.data, k->id_len) == 0)
    {
        /* copies: the slot may be refilled while this request runs */
        ctx->identity.len = k->user_len;
        ctx->identity.data = ngx_pstrdup(r->pool, &(ngx_str_t) { k->user_len,
                                                               k->user });
        ctx->display_name.len = k->name_len;
        ctx->display_name.data = ngx_pstrdup(r->pool,
                                     &(ngx_str_t) { k->name_len, k->name });
        if (ctx->identity.data == NULL || ctx->display_name.data == NULL) {
            return NGX_ERROR;
        }

        secret.data = k->secret;
        secret.len = k->secret_len;

        ngx_http_plinth_auth_known(r, ctx, &secret);
        return NGX_OK;
    }

    params[0] = (char *) ngx_pnalloc(r->pool, a->auth.access_key.len + 1);
    if (params[0] == NULL) {
        return NGX_ERROR;
    }
    *ngx_cpymem((u_char *) params[0], a->auth.access_key.data,
                a->auth.access_key.len) = '\0';

    return ngx_http_plinth_pg(r, NGX_PLINTH_SQL_ACCESS_KEY, 1, params,
                              ngx_http_plinth_auth_key_done);
}


static void
ngx_http_plinth_auth_key_done(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    ngx_str_t                     secret;
    ngx_http_plinth_key_t        *k;
    ngx_http_plinth_ctx_t        *ctx;
    ngx_http_plinth_auth_t       *a;
    ngx_http_plinth_main_conf_t  *pmcf;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);
    a = ctx->auth;

    if (PQntuples(res) != 1) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ACCESS_KEY, NULL);
        return;
    }

    secret.data = (u_char *) PQgetvalue(res, 0, 0);
    secret.len = PQgetlength(res, 0, 0);

    if (ngx_http_plinth_copy_value(r->pool, res, 0, 1, &ctx->identity)
        != NGX_OK
        || ngx_http_plinth_copy_value(r->pool, res, 0, 2, &ctx->display_name)
           == NGX_ERROR)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* kept for the next requests of this worker (before any check: the
     * key exists; whether this request's signature is right is its own) */
    pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);
    k = ngx_http_plinth_key_slot(a->auth.access_key.data,
                                 a->auth.access_key.len);

    if (k && pmcf->key_cache
        && a->auth.access_key.len <= NGX_PLINTH_KEY_FIELD
        && secret.len <= NGX_PLINTH_KEY_FIELD
        && ctx->identity.len <= NGX_PLINTH_KEY_FIELD
        && ctx->display_name.len <= NGX_PLINTH_KEY_FIELD)
    {
        k->id_len = a->auth.access_key.len;
        ngx_memcpy(k->id, a->auth.access_key.data, k->id_len);
        k->secret_len = secret.len;
        ngx_memcpy(k->secret, secret.data, secret.len);
        k->user_len = ctx->identity.len;
        ngx_memcpy(k->user, ctx->identity.data, ctx->identity.len);
        k->name_len = ctx->display_name.len;
        ngx_memcpy(k->name, ctx->display_name.data, ctx->display_name.len);
        k->expires = ngx_current_msec + pmcf->key_cache;
        k->used = 1;
    }

    ngx_http_plinth_auth_known(r, ctx, &secret);
}


/* The caller's key is known: check the signature (or API secret), go on. */
static void
ngx_http_plinth_auth_known(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx,
    ngx_str_t *secret)
{
    ngx_http_plinth_auth_t  *a = ctx->auth;

    if (a->api_key) {
        /* constant time: no early exit on the first differing byte */
        if (a->api_secret.len != secret->len
            || CRYPTO_memcmp(a->api_secret.data, secret->data, secret->len)
               != 0)
        {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_SIGNATURE,
                                  "The API key's secret is wrong.");
            return;
        }

    } else if (ngx_http_plinth_auth_verify(r, a, secret) != NGX_OK) {
        return;
    }

    if (ngx_http_plinth_dispatch(r, ctx) != NGX_OK) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


/* Checks the signature; on failure answers and returns NGX_DECLINED. */
static ngx_int_t
ngx_http_plinth_auth_verify(ngx_http_request_t *r, ngx_http_plinth_auth_t *a,
    ngx_str_t *secret)
{
    u_char                 *p, *end, key[32], sig[64];
    size_t                  size, n;
    ngx_int_t               rc2;
    ngx_str_t               date, scope;
    ngx_uint_t              i, nh;
    ngx_list_part_t        *part;
    ngx_table_elt_t        *h;
    plinth_sigv4_rc_t       rc;
    plinth_sv_header_t     *hs;
    ngx_http_plinth_ctx_t  *ctx;
    plinth_sigv4_request_t  req;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    nh = 0;
    for (part = &r->headers_in.headers.part; part; part = part->next) {
        nh += part->nelts;
    }

    hs = ngx_palloc(r->pool, (nh + 1) * sizeof(plinth_sv_header_t));
    if (hs == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    nh = 0;
    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;
        for (i = 0; i < part->nelts; i++) {
            hs[nh].name = ngx_plinth_sv(&h[i].key);
            hs[nh].value = ngx_plinth_sv(&h[i].value);
            nh++;
        }
    }

    p = r->unparsed_uri.data;
    end = p + r->unparsed_uri.len;
    for ( /* void */ ; p < end && *p != '?'; p++) { /* void */ }

    ngx_memzero(&req, sizeof(plinth_sigv4_request_t));
    req.method = ngx_plinth_sv(&r->method_name);
    req.path.data = r->unparsed_uri.data;
    req.path.len = p - r->unparsed_uri.data;
    req.query.data = (p < end) ? p + 1 : p;
    req.query.len = (p < end) ? (size_t) (end - p - 1) : 0;
    req.headers = hs;
    req.nheaders = nh;
    req.payload_hash = ngx_plinth_sv(&a->payload_hash);
    req.flags = a->auth.presigned ? PLINTH_SIGV4_PRESIGNED : 0;

    rc = ngx_http_plinth_signing_key(secret, &a->auth, key);
    if (rc != PLINTH_SIGV4_OK) {
        ngx_http_plinth_auth_fail(r, rc, a->auth.presigned);
        return NGX_DECLINED;
    }

    /* the canonical request's size first, then the check */
    size = 0;
    rc = plinth_sigv4_canonical_request(&req, &a->auth, NULL, 0, &size);
    if (rc != PLINTH_SIGV4_OK && rc != PLINTH_SIGV4_ERR_BUFFER) {
        ngx_http_plinth_auth_fail(r, rc, a->auth.presigned);
        return NGX_DECLINED;
    }

    n = size + 1;
    p = ngx_pnalloc(r->pool, n);
    if (p == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    rc = plinth_sigv4_verify(&req, &a->auth, key, p, n, sig);

    if (rc == PLINTH_SIGV4_OK
        && (a->payload == PLINTH_SIGV4_PAYLOAD_STREAMING
            || a->payload == PLINTH_SIGV4_PAYLOAD_STREAMING_TRAILER
            || a->payload == PLINTH_SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER))
    {
        /* the request's signature seeds the chain of chunk signatures */
        date.data = (u_char *) a->auth.amz_date.data;
        date.len = a->auth.amz_date.len;
        scope.data = (u_char *) a->auth.scope.data;
        scope.len = a->auth.scope.len;

        rc2 = ngx_http_plinth_body_chunked(r, ctx, a->payload,
                  a->payload == PLINTH_SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER
                  ? NULL : key, &date, &scope, sig);
        ngx_memzero(key, sizeof(key));

        if (rc2 == NGX_DECLINED) {
            return NGX_DECLINED;
        }
        if (rc2 != NGX_OK) {
            ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    ngx_memzero(key, sizeof(key));

    if (rc != PLINTH_SIGV4_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "plinth: signature check failed for access key "
                      "\"%*s\": %s", a->auth.access_key.len,
                      a->auth.access_key.data, plinth_sigv4_strerror(rc));
        ngx_http_plinth_auth_fail(r, rc, a->auth.presigned);
        return NGX_DECLINED;
    }

    if (a->payload == PLINTH_SIGV4_PAYLOAD_SHA256
        && (a->payload_hash.len != 64
            || ngx_strncasecmp(a->payload_hash.data,
                               ngx_http_plinth_empty_sha256, 64) != 0))
    {
        /* a body is hashed as it arrives by the operations that read it */
        if (r->headers_in.content_length_n <= 0 && !r->headers_in.chunked) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_SHA256_MISMATCH, NULL);
            return NGX_DECLINED;
        }

        ctx->want_sha256 = a->payload_hash;
    }

    return NGX_OK;
}


static void
ngx_http_plinth_auth_fail(ngx_http_request_t *r, plinth_sigv4_rc_t rc,
    ngx_uint_t presigned)
{
    const char        *code;
    ngx_plinth_err_e   err;

    code = plinth_sigv4_s3_error(rc, (int) presigned);

    if (ngx_strcmp(code, "SignatureDoesNotMatch") == 0) {
        err = NGX_PLINTH_ERR_SIGNATURE;
    } else if (ngx_strcmp(code, "AuthorizationHeaderMalformed") == 0) {
        err = NGX_PLINTH_ERR_AUTH_MALFORMED;
    } else if (ngx_strcmp(code, "AuthorizationQueryParametersError") == 0) {
        err = NGX_PLINTH_ERR_AUTH_QUERY;
    } else if (ngx_strcmp(code, "RequestTimeTooSkewed") == 0) {
        err = NGX_PLINTH_ERR_TIME_SKEWED;
    } else if (ngx_strcmp(code, "AccessDenied") == 0) {
        err = NGX_PLINTH_ERR_ACCESS_DENIED;
    } else if (ngx_strcmp(code, "InvalidURI") == 0) {
        err = NGX_PLINTH_ERR_INVALID_URI;
    } else if (ngx_strcmp(code, "InvalidArgument") == 0) {
        err = NGX_PLINTH_ERR_INVALID_ARGUMENT;
    } else {
        err = NGX_PLINTH_ERR_INTERNAL;
    }

    ngx_http_plinth_error(r, err, plinth_sigv4_strerror(rc));
}


/*
 * x-amz-content-sha256 of a PUT body: a SHA-256 context freed with the
 * request, fed by the request body filter.
 */
ngx_int_t
ngx_http_plinth_sha256_start(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    ctx->sha256 = EVP_MD_CTX_new();
    if (ctx->sha256 == NULL
        || plinth_sigv4_sha256_init(ctx->sha256) != PLINTH_SIGV4_OK)
    {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_plinth_sha256_cleanup;
    cln->data = ctx->sha256;

    return NGX_OK;
}


void
ngx_http_plinth_sha256_update(ngx_http_plinth_ctx_t *ctx, u_char *p,
    size_t len)
{
    (void) plinth_sigv4_sha256_update(ctx->sha256, p, len);
}


/* NGX_OK when the body hashes to what x-amz-content-sha256 announced. */
ngx_int_t
ngx_http_plinth_sha256_check(ngx_http_plinth_ctx_t *ctx)
{
    u_char  md[32], hex[64];

    if (plinth_sigv4_sha256_final(ctx->sha256, md) != PLINTH_SIGV4_OK) {
        return NGX_ERROR;
    }

    plinth_sigv4_hex(md, 32, hex);

    if (ctx->want_sha256.len != 64
        || ngx_strncasecmp(ctx->want_sha256.data, hex, 64) != 0)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static void
ngx_http_plinth_sha256_cleanup(void *data)
{
    EVP_MD_CTX_free(data);
}


/* The signing key of secret for auth's scope, from the cache or made. */
static plinth_sigv4_rc_t
ngx_http_plinth_signing_key(ngx_str_t *secret, plinth_sigv4_auth_t *auth,
    u_char key[32])
{
    u_char                         scope[NGX_PLINTH_SCOPE_MAX], *p;
    size_t                         len, i;
    plinth_sv_str_t                f[4];
    plinth_sigv4_rc_t              rc;
    ngx_http_plinth_signing_key_t  *k;

    f[0] = ngx_plinth_sv(secret);
    f[1] = auth->date;
    f[2] = auth->region;
    f[3] = auth->service;

    len = 0;
    for (i = 0; i < 4; i++) {
        if (f[i].len > 255) {
            len = NGX_PLINTH_SCOPE_MAX + 1;
            break;
        }
        len += 1 + f[i].len;
    }

    if (len > NGX_PLINTH_SCOPE_MAX) {
        return plinth_sigv4_signing_key(f[0], f[1], f[2], f[3], key);
    }

    p = scope;
    for (i = 0; i < 4; i++) {
        *p++ = (u_char) f[i].len;
        p = ngx_cpymem(p, f[i].data, f[i].len);
    }

    if (ngx_http_plinth_signing_keys == NULL) {
        ngx_http_plinth_signing_keys = ngx_calloc(NGX_PLINTH_SIGNING_KEYS
                                       * sizeof(ngx_http_plinth_signing_key_t),
                                       ngx_cycle->log);
    }

    k = NULL;
    if (ngx_http_plinth_signing_keys) {
        k = &ngx_http_plinth_signing_keys[ngx_hash_key(scope, len)
                                          % NGX_PLINTH_SIGNING_KEYS];
        if (k->len == len && ngx_memcmp(k->scope, scope, len) == 0) {
            ngx_memcpy(key, k->key, 32);
            ngx_explicit_memzero(scope, len);
            return PLINTH_SIGV4_OK;
        }
    }

    rc = plinth_sigv4_signing_key(f[0], f[1], f[2], f[3], key);

    if (rc == PLINTH_SIGV4_OK && k) {
        ngx_memcpy(k->scope, scope, len);
        k->len = len;
        ngx_memcpy(k->key, key, 32);
    }

    ngx_explicit_memzero(scope, len);

    return rc;
}


/* The cache slot of a key id (the cache is made on first use). */
static ngx_http_plinth_key_t *
ngx_http_plinth_key_slot(const u_char *id, size_t len)
{
    if (ngx_http_plinth_keys == NULL) {
        ngx_http_plinth_keys = ngx_calloc(NGX_PLINTH_KEY_CACHE
                                          * sizeof(ngx_http_plinth_key_t),
                                          ngx_cycle->log);
        if (ngx_http_plinth_keys == NULL) {
            return NULL;
        }
    }

    return &ngx_http_plinth_keys[ngx_hash_key((u_char *) id, len)
                                 % NGX_PLINTH_KEY_CACHE];
}
