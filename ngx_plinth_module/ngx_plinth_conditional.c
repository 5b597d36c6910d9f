/*
 * Conditional requests, as S3 evaluates them (RFC 9110 order):
 *
 * GET/HEAD: If-Match (412 unless the ETag is listed, or "*"), then
 * If-Unmodified-Since (412 if modified after it; ignored when If-Match
 * was sent), then If-None-Match (304 if the ETag is listed), then
 * If-Modified-Since (304 if not modified after it; ignored when
 * If-None-Match was sent). nginx's own not-modified filter is kept out:
 * it answers with HTML and knows nothing of the replica stream.
 *
 * PUT: If-None-Match: * (create only) and If-Match: <etag> are parsed
 * here and decided by the database at commit (sql/004), atomically.
 */

#include "ngx_plinth.h"


static ngx_uint_t ngx_http_plinth_etag_listed(ngx_str_t *list,
    ngx_str_t *etag);
static ngx_int_t ngx_http_plinth_not_modified(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx);


/*
 * NGX_OK: serve the object; NGX_DONE: answered (304 or 412). The object's
 * ETag and modification time are in ctx->obj.
 */
ngx_int_t
ngx_http_plinth_get_conditions(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    time_t            t;
    ngx_table_elt_t  *h;

    h = r->headers_in.if_match;

    if (h) {
        if (!ngx_http_plinth_etag_listed(&h->value, &ctx->obj.etag)) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_PRECONDITION_FAILED,
                                  NULL);
            return NGX_DONE;
        }

    } else if (r->headers_in.if_unmodified_since) {
        h = r->headers_in.if_unmodified_since;
        t = ngx_parse_http_time(h->value.data, h->value.len);

        if (t != NGX_ERROR && ctx->obj.mtime > t) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_PRECONDITION_FAILED,
                                  NULL);
            return NGX_DONE;
        }
    }

    h = r->headers_in.if_none_match;

    if (h) {
        if (ngx_http_plinth_etag_listed(&h->value, &ctx->obj.etag)) {
            return ngx_http_plinth_not_modified(r, ctx);
        }

    } else if (r->headers_in.if_modified_since) {
        h = r->headers_in.if_modified_since;
        t = ngx_parse_http_time(h->value.data, h->value.len);

        if (t != NGX_ERROR && ctx->obj.mtime <= t) {
            return ngx_http_plinth_not_modified(r, ctx);
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_plinth_not_modified(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    ngx_int_t  rc;
    ngx_str_t  v;

    v.len = ctx->obj.etag.len + 2;
    v.data = ngx_pnalloc(r->pool, v.len);
    if (v.data == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_DONE;
    }

    v.data[0] = '"';
    ngx_memcpy(v.data + 1, ctx->obj.etag.data, ctx->obj.etag.len);
    v.data[v.len - 1] = '"';

    if (ngx_http_plinth_add_header(r, "ETag", &v) != NGX_OK) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_DONE;
    }

    r->headers_out.last_modified_time = ctx->obj.mtime;

    rc = ngx_http_plinth_send_body(r, NGX_HTTP_NOT_MODIFIED, NULL, NULL);
    ngx_http_plinth_finalize(r, rc);

    return NGX_DONE;
}


/*
 * Is etag (hex, unquoted) in the header's list of entity tags? "*" lists
 * every one; W/ prefixes are ignored (S3's ETags are strong); unquoted
 * tags, which some clients send, are accepted.
 */
static ngx_uint_t
ngx_http_plinth_etag_listed(ngx_str_t *list, ngx_str_t *etag)
{
    u_char  *p, *last, *start, *end;

    p = list->data;
    last = p + list->len;

    while (p < last) {
        while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        if (p == last) {
            break;
        }

        if (*p == '*') {
            return 1;
        }

        if (last - p >= 2 && p[0] == 'W' && p[1] == '/') {
            p += 2;
        }

        start = p;

        if (p < last && *p == '"') {
            start = ++p;
            while (p < last && *p != '"') {
                p++;
            }
            end = p;
            if (p < last) {
                p++;
            }

        } else {
            while (p < last && *p != ',' && *p != ' ') {
                p++;
            }
            end = p;
        }

        if ((size_t) (end - start) == etag->len
            && ngx_strncasecmp(start, etag->data, etag->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * PutObject's preconditions, before the body is read: If-None-Match must
 * be "*" (S3 supports nothing else on writes), If-Match one entity tag.
 * NGX_DECLINED after answering.
 */
ngx_int_t
ngx_http_plinth_put_conditions(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    u_char           *p, *last;
    ngx_table_elt_t  *h;

    h = r->headers_in.if_none_match;

    if (h) {
        if (h->value.len != 1 || h->value.data[0] != '*') {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_NOT_IMPLEMENTED,
                                  "If-None-Match on a write takes only "
                                  "\"*\".");
            return NGX_DECLINED;
        }
        ctx->if_none_match = 1;
    }

    h = r->headers_in.if_match;

    if (h) {
        p = h->value.data;
        last = p + h->value.len;

        while (p < last && *p == ' ') {
            p++;
        }
        if (last - p >= 2 && p[0] == 'W' && p[1] == '/') {
            p += 2;
        }
        if (p < last && *p == '"') {
            p++;
            if (last > p && last[-1] == '"') {
                last--;
            }
        }

        if (p == last || ngx_strlchr(p, last, '"')
            || ngx_strlchr(p, last, ','))
        {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                                  "If-Match on a write takes one ETag.");
            return NGX_DECLINED;
        }

        ctx->if_match.data = ngx_pnalloc(r->pool, last - p + 1);
        if (ctx->if_match.data == NULL) {
            return NGX_ERROR;
        }

        ctx->if_match.len = last - p;
        *ngx_cpymem(ctx->if_match.data, p, last - p) = '\0';
    }

    return NGX_OK;
}
