/*
 * Plinth gateway module: directives, configuration, filters, variables
 * and the worker life cycle. See ngx_plinth.h for the map of the module
 * and README.md for every directive's meaning and default.
 */

#include "ngx_plinth.h"
#include "ngx_plinth_hop.h"


static ngx_int_t ngx_http_plinth_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_plinth_init(ngx_conf_t *cf);
static void *ngx_http_plinth_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_plinth_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_plinth_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_plinth_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_plinth_health(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_plinth_s3(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_plinth_blob_location(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_plinth_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_plinth_hop_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static char *ngx_http_plinth_pg_conninfo(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_plinth_auth_mode(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_plinth_init_process(ngx_cycle_t *cycle);
static void ngx_http_plinth_exit_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_plinth_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_plinth_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_plinth_request_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_plinth_xml_body_filter(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_chain_t *in);
static ngx_int_t ngx_http_plinth_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_conf_enum_t  ngx_http_plinth_auth_modes[] = {
    { ngx_string("off"), NGX_PLINTH_AUTH_OFF },
    { ngx_string("sigv4"), NGX_PLINTH_AUTH_SIGV4 },
    { ngx_null_string, 0 }
};


static ngx_conf_num_bounds_t  ngx_http_plinth_pool_bounds = {
    ngx_conf_check_num_bounds, 1, 1000
};

static ngx_conf_num_bounds_t  ngx_http_plinth_queue_bounds = {
    ngx_conf_check_num_bounds, 0, 1000000
};

static ngx_conf_num_bounds_t  ngx_http_plinth_usage_bounds = {
    ngx_conf_check_num_bounds, 16, 1000000
};

static ngx_conf_num_bounds_t  ngx_http_plinth_coalesce_bounds = {
    ngx_conf_check_num_bounds, 0, 64
};

static ngx_conf_num_bounds_t  ngx_http_plinth_rf_bounds = {
    ngx_conf_check_num_bounds, 1, NGX_PLINTH_MAX_RF
};


static ngx_command_t  ngx_http_plinth_commands[] = {

    { ngx_string("plinth_pg"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_plinth_pg_conninfo,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, pg.conninfo),
      NULL },

    { ngx_string("plinth_pg_pool_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, pg.size),
      &ngx_http_plinth_pool_bounds },

    { ngx_string("plinth_pg_queue_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, pg.queue_max),
      &ngx_http_plinth_queue_bounds },

    { ngx_string("plinth_pg_queue_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, pg.queue_timeout),
      NULL },

    { ngx_string("plinth_pg_query_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, pg.query_timeout),
      NULL },

    { ngx_string("plinth_replication_factor"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, rf),
      &ngx_http_plinth_rf_bounds },

    { ngx_string("plinth_write_quorum"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, w),
      &ngx_http_plinth_rf_bounds },

    { ngx_string("plinth_max_object_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_off_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, max_object_size),
      NULL },

    { ngx_string("plinth_auth"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_plinth_auth_mode,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, auth),
      &ngx_http_plinth_auth_modes },

    { ngx_string("plinth_api_keys"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, api_keys),
      NULL },

    { ngx_string("plinth_region"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, region),
      NULL },

    { ngx_string("plinth_virtual_host_suffix"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, vhost_suffix),
      NULL },

    { ngx_string("plinth_key_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, key_cache),
      NULL },

    { ngx_string("plinth_health_refresh"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, health_refresh),
      NULL },

    { ngx_string("plinth_usage_flush"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, usage_flush),
      NULL },

    { ngx_string("plinth_usage_entries"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, usage_entries),
      &ngx_http_plinth_usage_bounds },

    { ngx_string("plinth_straggler_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, straggler_timeout),
      NULL },

    { ngx_string("plinth_put_linger"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, put_linger),
      NULL },

    { ngx_string("plinth_get_coalesce"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, get_coalesce),
      &ngx_http_plinth_coalesce_bounds },

    { ngx_string("plinth_batch_window"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, batch_window),
      NULL },

    { ngx_string("plinth_stripe_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, stripe_size),
      NULL },

    { ngx_string("plinth_stripe_window"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, stripe_window),
      NULL },

    { ngx_string("plinth_batch_multi_max"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, batch_multi_max),
      NULL },

    { ngx_string("plinth_blob_location"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_plinth_blob_location,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_plinth_main_conf_t, blob_location),
      NULL },

    { ngx_string("plinth_cluster_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_plinth_secret_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("plinth_cluster"),
      NGX_HTTP_UPS_CONF|NGX_CONF_TAKE1,
      ngx_http_plinth_cluster,
      0,
      0,
      NULL },

    { ngx_string("plinth_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_plinth_health,
      NGX_HTTP_LOC_CONF_OFFSET,
      1,
      NULL },

    { ngx_string("plinth_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_plinth_health,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("plinth_s3"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_plinth_s3,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_plinth_module_ctx = {
    ngx_http_plinth_add_variables,         /* preconfiguration */
    ngx_http_plinth_init,                  /* postconfiguration */

    ngx_http_plinth_create_main_conf,      /* create main configuration */
    ngx_http_plinth_init_main_conf,        /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_plinth_create_loc_conf,       /* create location configuration */
    ngx_http_plinth_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_plinth_module = {
    NGX_MODULE_V1,
    &ngx_http_plinth_module_ctx,           /* module context */
    ngx_http_plinth_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_plinth_init_process,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_plinth_exit_process,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


enum {
    NGX_PLINTH_VAR_RANGE = 0,
    NGX_PLINTH_VAR_REQUEST_ID,
    NGX_PLINTH_VAR_OPERATION,
    NGX_PLINTH_VAR_BUCKET,
    NGX_PLINTH_VAR_KEY,
    NGX_PLINTH_VAR_NODES
};


static ngx_http_variable_t  ngx_http_plinth_vars[] = {

    /* subrequests share their parent's variable cache: never cache these */
    { ngx_string("plinth_range"), NULL, ngx_http_plinth_variable,
      NGX_PLINTH_VAR_RANGE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("plinth_request_id"), NULL, ngx_http_plinth_variable,
      NGX_PLINTH_VAR_REQUEST_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("plinth_operation"), NULL, ngx_http_plinth_variable,
      NGX_PLINTH_VAR_OPERATION, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("plinth_bucket"), NULL, ngx_http_plinth_variable,
      NGX_PLINTH_VAR_BUCKET, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("plinth_key"), NULL, ngx_http_plinth_variable,
      NGX_PLINTH_VAR_KEY, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    /* the data nodes that took a write, or sent the bytes of a read */
    { ngx_string("plinth_nodes"), NULL, ngx_http_plinth_variable,
      NGX_PLINTH_VAR_NODES, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    /* the closed internal hop: X-Plinth-Date and X-Plinth-Signature of a
     * data subrequest (ngx_plinth_hop.h) */
    { ngx_string("plinth_hop_date"), NULL, ngx_http_plinth_hop_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("plinth_hop_signature"), NULL, ngx_http_plinth_hop_variable,
      1, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;
static ngx_http_request_body_filter_pt   ngx_http_next_request_body_filter;


static ngx_int_t
ngx_http_plinth_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_plinth_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* "1,3": the nodes that acknowledged a write, or served a read */
static ngx_int_t
ngx_http_plinth_nodes_variable(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_http_variable_value_t *v)
{
    u_char      *p;
    uint32_t    *nodes;
    ngx_uint_t   i, n;

    nodes = ctx->nserved ? ctx->served : ctx->acked_nodes;
    n = ctx->nserved ? ctx->nserved : ctx->acked;

    if (n == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, n * (NGX_INT32_LEN + 1));
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, i ? ",%uD" : "%uD", nodes[i]);
    }

    v->len = p - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_plinth_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    ngx_str_t                 *s;
    ngx_http_plinth_ctx_t     *ctx;
    ngx_http_plinth_sr_ctx_t  *sctx;

    s = NULL;

    if (data == NGX_PLINTH_VAR_RANGE) {
        if (r != r->main) {
            sctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);
            if (sctx && sctx->kind == NGX_PLINTH_CTX_REQUEST) {
                s = &sctx->range;
            }
        }

    } else {
        ctx = ngx_http_get_module_ctx(r->main, ngx_http_plinth_module);

        if (ctx) {
            switch (data) {
            case NGX_PLINTH_VAR_REQUEST_ID:
                s = &ctx->request_id;
                break;
            case NGX_PLINTH_VAR_OPERATION:
                if (ctx->route) {
                    v->data = (u_char *) ctx->route->name;
                    v->len = ngx_strlen(ctx->route->name);
                    v->valid = 1;
                    v->no_cacheable = 1;
                    v->not_found = 0;
                    return NGX_OK;
                }
                break;
            case NGX_PLINTH_VAR_BUCKET:
                s = &ctx->bucket;
                break;
            case NGX_PLINTH_VAR_NODES:
                return ngx_http_plinth_nodes_variable(r, ctx, v);
            default:
                s = &ctx->key;
                break;
            }
        }
    }

    if (s == NULL || s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = s->data;
    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * $plinth_hop_date, $plinth_hop_signature: for a data subrequest, the
 * subrequest's start second and the HMAC of its method, the target the
 * proxy sends ("/blobs/" and what follows plinth_blob_location: the
 * internal location must proxy_pass to ".../blobs/"), that second and
 * the request id. Both from sr->start_sec, so the two headers agree
 * whenever nginx evaluates them; a retry to the next replica re-sends
 * them unchanged, well within the data nodes' window.
 */
static ngx_int_t
ngx_http_plinth_hop_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                       *p, *target;
    size_t                        tlen, rest;
    ngx_http_plinth_ctx_t        *ctx;
    ngx_http_plinth_sr_ctx_t     *sctx;
    ngx_http_plinth_main_conf_t  *pmcf;

    static const char  prefix[] = "/blobs/";

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_plinth_module);
    sctx = r != r->main ? ngx_http_get_module_ctx(r, ngx_http_plinth_module)
                        : NULL;
    ctx = ngx_http_get_module_ctx(r->main, ngx_http_plinth_module);

    if (sctx == NULL || ctx == NULL || pmcf->hop_key == NULL
        || r->uri.len < pmcf->blob_location.len)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    if (data == 0) {
        p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }
        v->data = p;
        v->len = ngx_sprintf(p, "%T", r->start_sec) - p;

    } else {
        rest = r->uri.len - pmcf->blob_location.len;
        tlen = sizeof(prefix) - 1 + rest + (r->args.len ? 1 + r->args.len : 0);
        target = ngx_pnalloc(r->pool, tlen);
        p = ngx_pnalloc(r->pool, PLINTH_HOP_SIG_LEN + 1);
        if (target == NULL || p == NULL) {
            return NGX_ERROR;
        }
        v->data = target;
        v->data = ngx_cpymem(v->data, prefix, sizeof(prefix) - 1);
        v->data = ngx_cpymem(v->data,
                             r->uri.data + pmcf->blob_location.len, rest);
        if (r->args.len) {
            *v->data++ = '?';
            ngx_memcpy(v->data, r->args.data, r->args.len);
        }

        if (plinth_hop_sign(pmcf->hop_key,
                            (char *) r->method_name.data, r->method_name.len,
                            (char *) target, tlen, (int64_t) r->start_sec,
                            (char *) ctx->request_id.data,
                            ctx->request_id.len, (char *) p) != 0)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "plinth: cannot sign the data node request");
            v->not_found = 1;
            return NGX_OK;
        }
        v->data = p;
        v->len = PLINTH_HOP_SIG_LEN;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static void *
ngx_http_plinth_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_plinth_main_conf_t  *pmcf;

    pmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_plinth_main_conf_t));
    if (pmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *     pmcf->pg.conninfo = { 0, NULL };
     *     pmcf->blob_location = { 0, NULL };
     *     pmcf->nodes = NULL; pmcf->ring = NULL; pmcf->upstream = NULL;
     */

    pmcf->pg.size = NGX_CONF_UNSET_UINT;
    pmcf->pg.queue_max = NGX_CONF_UNSET_UINT;
    pmcf->pg.queue_timeout = NGX_CONF_UNSET_MSEC;
    pmcf->pg.query_timeout = NGX_CONF_UNSET_MSEC;
    pmcf->rf = NGX_CONF_UNSET_UINT;
    pmcf->w = NGX_CONF_UNSET_UINT;
    pmcf->max_object_size = NGX_CONF_UNSET;
    pmcf->straggler_timeout = NGX_CONF_UNSET_MSEC;
    pmcf->put_linger = NGX_CONF_UNSET_MSEC;
    pmcf->batch_window = NGX_CONF_UNSET;
    pmcf->stripe_size = NGX_CONF_UNSET_SIZE;
    pmcf->stripe_window = NGX_CONF_UNSET;
    pmcf->batch_multi_max = NGX_CONF_UNSET_SIZE;
    pmcf->health_refresh = NGX_CONF_UNSET_MSEC;
    pmcf->key_cache = NGX_CONF_UNSET_MSEC;
    pmcf->get_coalesce = NGX_CONF_UNSET_UINT;
    pmcf->usage_flush = NGX_CONF_UNSET_MSEC;
    pmcf->usage_entries = NGX_CONF_UNSET_UINT;
    pmcf->auth = NGX_CONF_UNSET_UINT;
    pmcf->api_keys = NGX_CONF_UNSET;

    return pmcf;
}


static char *
ngx_http_plinth_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_plinth_main_conf_t  *pmcf = conf;

    ngx_uint_t  i;

    ngx_conf_init_uint_value(pmcf->pg.size, 4);
    ngx_conf_init_uint_value(pmcf->pg.queue_max, 1024);
    ngx_conf_init_msec_value(pmcf->pg.queue_timeout, 5000);
    ngx_conf_init_msec_value(pmcf->pg.query_timeout, 10000);
    ngx_conf_init_msec_value(pmcf->straggler_timeout, 1000);
    ngx_conf_init_msec_value(pmcf->put_linger, 10);
    ngx_conf_init_value(pmcf->batch_window, 8);
    ngx_conf_init_size_value(pmcf->batch_multi_max, 64 * 1024);

    if (pmcf->batch_multi_max > 1024 * 1024) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "plinth_batch_multi_max must be 0 to 1m");
        return NGX_CONF_ERROR;
    }

    if (pmcf->batch_window < 1 || pmcf->batch_window > 256) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "plinth_batch_window must be 1 to 256");
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_size_value(pmcf->stripe_size, 1024 * 1024);
    ngx_conf_init_value(pmcf->stripe_window, 6);

    if (pmcf->stripe_window < 1 || pmcf->stripe_window > 64) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "plinth_stripe_window must be 1 to 64");
        return NGX_CONF_ERROR;
    }

    if (pmcf->stripe_size && (pmcf->stripe_size < 64 * 1024
                              || pmcf->stripe_size > 64 * 1024 * 1024))
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "plinth_stripe_size must be 0 (off) or 64k to 64m");
        return NGX_CONF_ERROR;
    }
    ngx_conf_init_msec_value(pmcf->health_refresh, 3000);
    ngx_conf_init_msec_value(pmcf->key_cache, 5000);
    ngx_conf_init_uint_value(pmcf->get_coalesce, 1);
    ngx_conf_init_msec_value(pmcf->usage_flush, 5000);
    ngx_conf_init_uint_value(pmcf->usage_entries, 10000);
    ngx_conf_init_uint_value(pmcf->auth, NGX_PLINTH_AUTH_SIGV4);
    ngx_conf_init_value(pmcf->api_keys, 0);

    if (pmcf->region.data == NULL) {
        ngx_str_set(&pmcf->region, "us-east-1");
    }

    if (pmcf->vhost_suffix.len
        && (pmcf->vhost_suffix.data[0] == '.'
            || ngx_strlchr(pmcf->vhost_suffix.data,
                           pmcf->vhost_suffix.data + pmcf->vhost_suffix.len,
                           ':')
            || ngx_strlchr(pmcf->vhost_suffix.data,
                           pmcf->vhost_suffix.data + pmcf->vhost_suffix.len,
                           '/')))
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "invalid plinth_virtual_host_suffix \"%V\": a domain "
                      "name without a leading dot, port or path",
                      &pmcf->vhost_suffix);
        return NGX_CONF_ERROR;
    }

    if (pmcf->region.len == 0 || pmcf->region.len > 64
        || ngx_strlchr(pmcf->region.data,
                       pmcf->region.data + pmcf->region.len, '/'))
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "invalid plinth_region \"%V\"", &pmcf->region);
        return NGX_CONF_ERROR;
    }
    ngx_conf_init_uint_value(pmcf->rf, 3);
    ngx_conf_init_uint_value(pmcf->w, 2);
    if (pmcf->max_object_size == NGX_CONF_UNSET) {
        pmcf->max_object_size = (off_t) 5 * 1024 * 1024 * 1024;
    }

    if (pmcf->blob_location.data == NULL) {
        ngx_str_set(&pmcf->blob_location, "/_plinth/blobs/");
    }

    if (pmcf->upstream && pmcf->hop_key == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "plinth_cluster needs plinth_cluster_secret_file: "
                      "data nodes serve only requests signed with the "
                      "cluster secret");
        return NGX_CONF_ERROR;
    }

    pmcf->pg.reconnect_min = 100;
    pmcf->pg.reconnect_max = 5000;
    pmcf->pg.stmts = ngx_http_plinth_stmts;
    pmcf->pg.nstmts = ngx_http_plinth_nstmts;

    /* a statement index without its row is a build mistake: say so here */
    for (i = 0; i < pmcf->pg.nstmts; i++) {
        if (pmcf->pg.stmts[i].name == NULL || pmcf->pg.stmts[i].sql == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "plinth: SQL statement %ui has no text", i);
            return NGX_CONF_ERROR;
        }
    }

    if (pmcf->w > pmcf->rf) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "plinth_write_quorum %ui is larger than "
                      "plinth_replication_factor %ui", pmcf->w, pmcf->rf);
        return NGX_CONF_ERROR;
    }

    if (pmcf->max_object_size <= 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "plinth_max_object_size must be positive");
        return NGX_CONF_ERROR;
    }

    if (pmcf->nodes && pmcf->nodes->nelts < pmcf->rf) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "plinth_replication_factor %ui needs at least %ui "
                      "data nodes, the cluster file has %ui",
                      pmcf->rf, pmcf->rf, pmcf->nodes->nelts);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_plinth_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_plinth_loc_conf_t  *plcf;

    plcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_plinth_loc_conf_t));
    if (plcf == NULL) {
        return NULL;
    }

    plcf->enable = NGX_CONF_UNSET;

    return plcf;
}


static char *
ngx_http_plinth_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_plinth_loc_conf_t  *prev = parent;
    ngx_http_plinth_loc_conf_t  *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);

    return NGX_CONF_OK;
}


static char *
ngx_http_plinth_s3(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_plinth_loc_conf_t  *plcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (plcf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    plcf->enable = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_plinth_s3_handler;

    return NGX_CONF_OK;
}


/*
 * plinth_health: this location answers the cluster's health (JSON);
 * plinth_metrics (cmd->offset 1): the gateway's Prometheus metrics.
 */
static char *
ngx_http_plinth_health(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate, or the location has another handler";
    }

    clcf->handler = cmd->offset ? ngx_http_plinth_metrics_handler
                                : ngx_http_plinth_health_handler;

    return NGX_CONF_OK;
}


/* nginx's enum slot says only "invalid value": name the choices. */
static char *
ngx_http_plinth_auth_mode(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_plinth_main_conf_t  *pmcf = conf;

    ngx_str_t        *value;
    ngx_conf_enum_t  *e;

    if (pmcf->auth != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (e = cmd->post; e->name.len; e++) {
        if (e->name.len == value[1].len
            && ngx_strcmp(e->name.data, value[1].data) == 0)
        {
            pmcf->auth = e->value;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid plinth_auth \"%V\": it must be \"sigv4\" "
                       "or \"off\"", &value[1]);
    return NGX_CONF_ERROR;
}


/* A typo in the connection string fails nginx -t, not every request. */
static char *
ngx_http_plinth_pg_conninfo(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char               *rv, *err;
    u_char             *ci;
    ngx_str_t          *value;
    PQconninfoOption   *opts;

    rv = ngx_conf_set_str_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    value = cf->args->elts;

    ci = ngx_pnalloc(cf->pool, value[1].len + 1);
    if (ci == NULL) {
        return NGX_CONF_ERROR;
    }
    ngx_cpystrn(ci, value[1].data, value[1].len + 1);

    err = NULL;
    opts = PQconninfoParse((char *) ci, &err);

    if (opts == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid plinth_pg connection string: %s",
                           err ? err : "out of memory");
        if (err) {
            PQfreemem(err);
        }
        return NGX_CONF_ERROR;
    }

    PQconninfoFree(opts);

    return NGX_CONF_OK;
}


static void
ngx_http_plinth_hop_key_free(void *data)
{
    plinth_hop_key_free(data);
}


/* plinth_cluster_secret_file FILE: read now, by the master (as root). */
static char *
ngx_http_plinth_secret_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_plinth_main_conf_t  *pmcf = conf;

    int                  n;
    char                 err[512];
    u_char               secret[PLINTH_HOP_SECRET_MAX];
    ngx_str_t           *value, path;
    ngx_pool_cleanup_t  *cln;

    if (pmcf->hop_key) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];
    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    /* path from ngx_conf_full_name is NUL-terminated */
    n = plinth_hop_secret_load((char *) path.data, secret, sizeof(secret),
                               err, sizeof(err));
    if (n < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    pmcf->hop_key = plinth_hop_key_new(secret, n);
    ngx_explicit_memzero(secret, sizeof(secret));
    if (pmcf->hop_key == NULL) {
        return NGX_CONF_ERROR;
    }

    /* freed with the configuration (reload, exit) */
    cln->handler = ngx_http_plinth_hop_key_free;
    cln->data = pmcf->hop_key;

    return NGX_CONF_OK;
}


static char *
ngx_http_plinth_blob_location(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_plinth_main_conf_t  *pmcf = conf;

    ngx_str_t  *value;

    if (pmcf->blob_location.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len < 2 || value[1].data[0] != '/'
        || value[1].data[value[1].len - 1] != '/')
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid plinth_blob_location \"%V\": it must "
                           "start and end with \"/\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    pmcf->blob_location = value[1];

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_plinth_init(ngx_conf_t *cf)
{
    ngx_uint_t                    used;
    ngx_http_handler_pt          *h;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_plinth_main_conf_t  *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_plinth_module);

    /* a gateway configuration needs both halves */
    used = (pmcf->pg.conninfo.len != 0 || pmcf->upstream != NULL);

    if (used) {
        if (pmcf->pg.conninfo.len == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "plinth needs \"plinth_pg\" (the metadata "
                          "database's connection string)");
            return NGX_ERROR;
        }

        if (pmcf->upstream == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "plinth needs \"plinth_cluster\" in the upstream "
                          "block of the data nodes");
            return NGX_ERROR;
        }

        /* metrics: the shared counters, and a count of every request */
        if (ngx_http_plinth_metrics_conf(cf) != NGX_OK) {
            return NGX_ERROR;
        }

        cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
        h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
        if (h == NULL) {
            return NGX_ERROR;
        }
        *h = ngx_http_plinth_metrics_log;

        /* usage: egress and reads per object, in a zone of their own */
        if (ngx_http_plinth_usage_conf(cf, pmcf) != NGX_OK) {
            return NGX_ERROR;
        }

        h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
        if (h == NULL) {
            return NGX_ERROR;
        }
        *h = ngx_http_plinth_usage_log_phase;
    }

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_plinth_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_plinth_body_filter;

    ngx_http_next_request_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_plinth_request_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_plinth_init_process(ngx_cycle_t *cycle)
{
    ngx_http_plinth_main_conf_t  *pmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_plinth_module);

    if (pmcf == NULL || pmcf->pg.conninfo.len == 0) {
        return NGX_OK;
    }

    if (ngx_plinth_pg_init(cycle, &pmcf->pg) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_plinth_health_init(cycle, pmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_plinth_usage_init(cycle, pmcf);
}


static void
ngx_http_plinth_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_plinth_health_exit();
    ngx_http_plinth_usage_exit();
    ngx_plinth_pg_exit(cycle);
}


/* Data subrequests: accept or refuse a replica's answer (GET). */
static ngx_int_t
ngx_http_plinth_header_filter(ngx_http_request_t *r)
{
    ngx_http_plinth_sr_ctx_t  *sctx;

    if (r != r->main) {
        sctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

        if (sctx && sctx->kind == NGX_PLINTH_CTX_REQUEST && sctx->get) {
            return ngx_http_plinth_sr_header_filter(r, sctx);
        }

        if (sctx && sctx->kind == NGX_PLINTH_CTX_REQUEST && sctx->multi) {
            return ngx_http_plinth_batch_multi_header(r, sctx);
        }
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_plinth_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_int_t                  rc;
    ngx_http_plinth_sr_ctx_t  *sctx;

    if (r != r->main && in) {
        sctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

        if (sctx && sctx->kind == NGX_PLINTH_CTX_REQUEST && sctx->get) {
            rc = ngx_http_plinth_sr_body_filter(r, sctx, in);
            if (rc == NGX_DONE) {
                return NGX_OK;
            }
        }

        if (sctx && sctx->kind == NGX_PLINTH_CTX_REQUEST && sctx->multi) {
            return ngx_http_plinth_batch_multi_body(r, sctx, in);
        }
    }

    return ngx_http_next_body_filter(r, in);
}


/*
 * XML bodies: at most ctx->xml_max bytes go on to be kept. Past it (a
 * chunked body, whose length is not known before), the bytes are dropped
 * as they arrive and only the end of the body is passed on, so that nginx
 * finishes reading it; the handler then answers "too large".
 */
static ngx_int_t
ngx_http_plinth_xml_body_filter(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx, ngx_chain_t *in)
{
    ngx_chain_t  *cl, *last;

    last = NULL;

    for (cl = in; cl; cl = cl->next) {
        ctx->xml_seen += ngx_buf_size(cl->buf);

        if (cl->buf->last_buf) {
            last = cl;
        }
    }

    if (ctx->xml_seen <= ctx->xml_max && !ctx->xml_over) {
        return ngx_http_next_request_body_filter(r, in);
    }

    if (!ctx->xml_over) {
        ctx->xml_over = 1;
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "plinth: XML body over %O bytes, dropping the rest",
                      ctx->xml_max);
    }

    for (cl = in; cl; cl = cl->next) {
        if (ngx_buf_in_memory(cl->buf)) {
            cl->buf->pos = cl->buf->last;
        }
    }

    if (last == NULL) {
        /* still called: it writes what it holds to the temp file when
         * nginx's buffer is full, so that the buffer can be reused */
        return ngx_http_next_request_body_filter(r, NULL);
    }

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cl->buf = ngx_calloc_buf(r->pool);
    if (cl->buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* an empty last buffer that still points somewhere: nginx 1.22's
     * ngx_write_chain_to_file() writes even a zero-size buffer, offsetting
     * its pos, and a NULL pos is undefined behaviour (UBSan, t/88 under
     * SAN=1) */
    cl->buf->pos = (u_char *) "";
    cl->buf->last = cl->buf->pos;
    cl->buf->last_buf = 1;
    cl->next = NULL;

    return ngx_http_next_request_body_filter(r, cl);
}


/* Write bodies, as the bytes arrive: ngx_plinth_body.c. */
static ngx_int_t
ngx_http_plinth_request_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_int_t               rc;
    ngx_chain_t            *out;
    ngx_http_plinth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (ctx && ctx->xml_max && r == r->main) {
        return ngx_http_plinth_xml_body_filter(r, ctx, in);
    }

    if (ctx && ctx->hash_body && r == r->main) {
        rc = ngx_http_plinth_request_body(r, ctx, in, &out);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_next_request_body_filter(r, out);
    }

    return ngx_http_next_request_body_filter(r, in);
}

