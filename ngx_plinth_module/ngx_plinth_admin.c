/*
 * The admin API: JSON reports for administrators (users.is_admin), signed
 * like any S3 request. Rows of the routing table with a fixed path
 * (path-style requests only):
 *
 *   GET /admin/v1/cost[?bucket=NAME]
 *       stored bytes per tier, storage cost per month, egress bytes and
 *       cost, reads: per bucket and in total (sql/016 plinth_cost_report)
 *   GET /admin/v1/access?bucket=NAME[&hottest=N|&coldest=N]
 *       a bucket's hottest objects (most reads) or coldest (least recently
 *       read or written); N is 1..1000, 10 when neither is given (hottest)
 *
 * Unsigned or not an administrator: 403 AccessDenied. No such bucket: 404
 * NoSuchBucket. A parameter missing, empty, unknown or out of range: 400
 * InvalidArgument. The database decides who is an administrator (the same
 * query that answers), so no cached identity can widen it.
 */

#include "ngx_plinth.h"


static void ngx_http_plinth_admin_done(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);


/*
 * Every query argument must be one of `allowed` (or a presigned URL's
 * X-Amz-*): NGX_OK, else the request was answered InvalidArgument.
 */
static ngx_int_t
ngx_http_plinth_admin_args(ngx_http_request_t *r, const char **allowed)
{
    u_char      *p, *end, *amp, *eq;
    size_t       len;
    ngx_uint_t   i;

    if (r->args.len == 0) {
        return NGX_OK;      /* no query: its data may be NULL (no offset) */
    }

    p = r->args.data;
    end = p + r->args.len;

    while (p < end) {
        amp = ngx_strlchr(p, end, '&');
        if (amp == NULL) {
            amp = end;
        }

        eq = ngx_strlchr(p, amp, '=');
        len = (eq ? eq : amp) - p;

        if (len == 0 || (len > 6 && ngx_strncmp(p, "X-Amz-", 6) == 0)) {
            p = amp + 1;
            continue;
        }

        for (i = 0; allowed[i]; i++) {
            if (ngx_strlen(allowed[i]) == len
                && ngx_strncmp(p, allowed[i], len) == 0)
            {
                break;
            }
        }

        if (allowed[i] == NULL) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                                  "Unknown query parameter.");
            return NGX_DECLINED;
        }

        p = amp + 1;
    }

    return NGX_OK;
}


/* ?name=: NGX_OK with a non-empty value, NGX_DECLINED absent; an empty
 * value was answered InvalidArgument (NGX_ERROR) */
static ngx_int_t
ngx_http_plinth_admin_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    if (ngx_http_plinth_arg(r, name, value) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (value->len == 0) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                              "A query parameter is empty.");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_plinth_admin_caller(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    if (ctx->anonymous || ctx->identity.len == 0) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ACCESS_DENIED, NULL);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_plinth_admin_cost(ngx_http_request_t *r, ngx_http_plinth_ctx_t *ctx)
{
    u_char                       *rf;
    ngx_int_t                     rc;
    ngx_str_t                     bucket;
    const char                   *params[3];
    ngx_http_plinth_main_conf_t  *pmcf;

    static const char  *allowed[] = { "bucket", NULL };

    if (ngx_http_plinth_admin_caller(r, ctx) != NGX_OK
        || ngx_http_plinth_admin_args(r, allowed) != NGX_OK)
    {
        return NGX_OK;
    }

    rc = ngx_http_plinth_admin_arg(r, "bucket", &bucket);
    if (rc == NGX_ERROR) {
        return NGX_OK;
    }

    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);
    params[1] = NULL;
    if (rc == NGX_OK) {
        ctx->bucket = bucket;
        params[1] = (char *) ngx_http_plinth_cstr(r->pool, &bucket);
        if (params[1] == NULL) {
            return NGX_ERROR;
        }
    }

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);
    rf = ngx_pnalloc(r->pool, NGX_INT_T_LEN + 1);
    if (params[0] == NULL || rf == NULL) {
        return NGX_ERROR;
    }
    *ngx_sprintf(rf, "%ui", pmcf->rf) = '\0';
    params[2] = (char *) rf;

    return ngx_http_plinth_pg(r, NGX_PLINTH_SQL_ADMIN_COST, 3, params,
                              ngx_http_plinth_admin_done);
}


ngx_int_t
ngx_http_plinth_admin_access(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    ngx_int_t    n, rc_hot, rc_cold;
    ngx_str_t    bucket, hot, cold, *nv;
    const char  *params[4];
    u_char      *num;

    static const char  *allowed[] = { "bucket", "hottest", "coldest", NULL };

    if (ngx_http_plinth_admin_caller(r, ctx) != NGX_OK
        || ngx_http_plinth_admin_args(r, allowed) != NGX_OK)
    {
        return NGX_OK;
    }

    switch (ngx_http_plinth_admin_arg(r, "bucket", &bucket)) {
    case NGX_DECLINED:
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                              "The bucket parameter is required.");
        return NGX_OK;
    case NGX_ERROR:
        return NGX_OK;
    }

    rc_hot = ngx_http_plinth_admin_arg(r, "hottest", &hot);
    rc_cold = ngx_http_plinth_admin_arg(r, "coldest", &cold);

    if (rc_hot == NGX_ERROR || rc_cold == NGX_ERROR) {
        return NGX_OK;
    }

    if (rc_hot == NGX_OK && rc_cold == NGX_OK) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                              "Give hottest or coldest, not both.");
        return NGX_OK;
    }

    n = 10;
    nv = (rc_cold == NGX_OK) ? &cold : (rc_hot == NGX_OK ? &hot : NULL);

    if (nv) {
        n = (nv->len <= 4) ? ngx_atoi(nv->data, nv->len) : NGX_ERROR;
        if (n < 1 || n > 1000) {
            ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_ARGUMENT,
                                  "hottest and coldest take a number from "
                                  "1 to 1000.");
            return NGX_OK;
        }
    }

    ctx->bucket = bucket;

    num = ngx_pnalloc(r->pool, NGX_INT_T_LEN + 1);
    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);
    params[1] = (char *) ngx_http_plinth_cstr(r->pool, &bucket);
    params[2] = (rc_cold == NGX_OK) ? "coldest" : "hottest";
    params[3] = (char *) num;

    if (num == NULL || params[0] == NULL || params[1] == NULL) {
        return NGX_ERROR;
    }

    *ngx_sprintf(num, "%i", n) = '\0';

    return ngx_http_plinth_pg(r, NGX_PLINTH_SQL_ADMIN_ACCESS, 4, params,
                              ngx_http_plinth_admin_done);
}


/* the report is one JSON value: sent as PostgreSQL wrote it */
static void
ngx_http_plinth_admin_done(ngx_http_request_t *r, void *data, PGresult *res,
    ngx_int_t rc)
{
    size_t        len;
    ngx_int_t     sent;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    len = PQgetlength(res, 0, 0);

    b = ngx_create_temp_buf(r->pool, len + 1);
    cl = ngx_alloc_chain_link(r->pool);
    if (b == NULL || cl == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    b->last = ngx_cpymem(b->pos, PQgetvalue(res, 0, 0), len);
    *b->last++ = '\n';
    cl->buf = b;
    cl->next = NULL;

    sent = ngx_http_plinth_send_body(r, NGX_HTTP_OK, cl, "application/json");
    ngx_http_plinth_finalize(r, sent);
}
