/*
 * Bucket lifecycle configuration (?lifecycle): Put, Get and
 * DeleteBucketLifecycleConfiguration. The owner only. The document is
 * parsed with libxml2 and validated as S3 validates it; its rules are
 * stored one row each (sql/017: lifecycle_rules) for repaird, which
 * carries them out, and the document itself is what GET answers.
 *
 * Supported in a Rule: ID, Status, Filter with Prefix (or an empty
 * Filter), the legacy Rule-level Prefix, Transition (Days, StorageClass),
 * Expiration (Days), NoncurrentVersionExpiration (NoncurrentDays). What
 * S3 has and Plinth does not carry out (Date, tags, object sizes,
 * ExpiredObjectDeleteMarker, NoncurrentVersionTransition,
 * AbortIncompleteMultipartUpload, NewerNoncurrentVersions) is 501
 * NotImplemented, never accepted and ignored.
 */

#include "ngx_plinth.h"
#include <libxml/parser.h>


#define NGX_PLINTH_LIFECYCLE_MAX_XML    (256 * 1024)
#define NGX_PLINTH_LIFECYCLE_MAX_RULES  1000
#define NGX_PLINTH_LC_NONE              (-1)


typedef struct {
    xmlChar      *id;
    xmlChar      *prefix;
    ngx_uint_t    enabled;
    ngx_int_t     ia;           /* Transition days to STANDARD_IA */
    ngx_int_t     glacier;
    ngx_int_t     deep;
    ngx_int_t     expire;       /* Expiration days */
    ngx_int_t     noncurrent;   /* NoncurrentVersionExpiration days */
} ngx_plinth_lc_rule_t;


typedef struct {
    u_char       *xml;
    size_t        len;
} ngx_plinth_lc_body_t;


static void ngx_http_plinth_lifecycle_body(ngx_http_request_t *r);
static void ngx_http_plinth_lifecycle_owned(ngx_http_request_t *r,
    void *data, PGresult *res, ngx_int_t rc);
static ngx_int_t ngx_http_plinth_lifecycle_parse(ngx_http_request_t *r,
    u_char *xml, size_t len, const char **params);
static void ngx_http_plinth_lifecycle_got(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_http_plinth_lifecycle_done(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc);


ngx_int_t
ngx_http_plinth_get_bucket_lifecycle(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    const char  *params[2];

    if (ctx->anonymous) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ACCESS_DENIED, NULL);
        return NGX_OK;
    }

    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    params[1] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);
    if (params[0] == NULL || params[1] == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_plinth_pg(r, NGX_PLINTH_SQL_GET_LIFECYCLE, 2, params,
                              ngx_http_plinth_lifecycle_got);
}


static void
ngx_http_plinth_lifecycle_got(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    ngx_plinth_xml_t  x;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    if (PQntuples(res) == 0) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_NO_SUCH_LIFECYCLE, NULL);
        return;
    }

    ngx_plinth_xml_init(&x, r->pool);
    ngx_plinth_xml_raw(&x, (u_char *) PQgetvalue(res, 0, 0),
                       PQgetlength(res, 0, 0));
    ngx_http_plinth_send_xml(r, &x);
}


ngx_int_t
ngx_http_plinth_delete_bucket_lifecycle(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    const char  *params[2];

    if (ctx->anonymous) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ACCESS_DENIED, NULL);
        return NGX_OK;
    }

    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    params[1] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);
    if (params[0] == NULL || params[1] == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_plinth_pg(r, NGX_PLINTH_SQL_DELETE_LIFECYCLE, 2, params,
                              ngx_http_plinth_lifecycle_done);
}


/* Put (200) and Delete (204) answer with no body. */
static void
ngx_http_plinth_lifecycle_done(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    ngx_int_t  sent;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    sent = ngx_http_plinth_send_body(r, r->method == NGX_HTTP_DELETE
                                        ? NGX_HTTP_NO_CONTENT : NGX_HTTP_OK,
                                     NULL, NULL);
    ngx_http_plinth_finalize(r, sent);
}


ngx_int_t
ngx_http_plinth_put_bucket_lifecycle(ngx_http_request_t *r,
    ngx_http_plinth_ctx_t *ctx)
{
    if (ctx->anonymous) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_ACCESS_DENIED, NULL);
        return NGX_OK;
    }

    /* capped before it is read, as every XML body (ngx_plinth_s3.c) */
    ngx_http_plinth_read_xml_body(r, NGX_PLINTH_LIFECYCLE_MAX_XML,
                                  ngx_http_plinth_lifecycle_body);

    return NGX_OK;
}


/*
 * The body is read; Content-MD5 (when sent) checked; then ownership is
 * checked before the document is judged, so that a caller who may not
 * write the bucket learns nothing from its errors (AccessDenied first).
 */
static void
ngx_http_plinth_lifecycle_body(ngx_http_request_t *r)
{
    u_char                 *xml;
    size_t                  len;
    const char             *params[2];
    ngx_plinth_lc_body_t   *body;
    ngx_http_plinth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (ctx->finalized) {
        return;
    }

    xml = ngx_http_plinth_read_body(r, NGX_PLINTH_LIFECYCLE_MAX_XML, &len);
    if (xml == NULL) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_MALFORMED_XML, NULL);
        return;
    }

    if (ngx_http_plinth_check_body_md5(r, xml, len) != NGX_OK) {
        return;
    }

    body = ngx_palloc(r->pool, sizeof(ngx_plinth_lc_body_t));
    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    params[1] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);

    if (body == NULL || params[0] == NULL || params[1] == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    body->xml = xml;
    body->len = len;
    ctx->lifecycle = body;

    if (ngx_http_plinth_pg(r, NGX_PLINTH_SQL_BUCKET_OWNED, 2, params,
                           ngx_http_plinth_lifecycle_owned)
        != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


static void
ngx_http_plinth_lifecycle_owned(ngx_http_request_t *r, void *data,
    PGresult *res, ngx_int_t rc)
{
    const char             *params[11];
    ngx_plinth_lc_body_t   *body;
    ngx_http_plinth_ctx_t  *ctx;

    if (rc != NGX_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_http_plinth_pg_error(r, res, rc);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);
    body = ctx->lifecycle;

    if (ngx_http_plinth_lifecycle_parse(r, body->xml, body->len, params)
        != NGX_OK)
    {
        return;
    }

    params[0] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->bucket);
    params[1] = (char *) ngx_http_plinth_cstr(r->pool, &ctx->identity);
    params[2] = (char *) body->xml;

    if (params[0] == NULL || params[1] == NULL
        || ngx_http_plinth_pg(r, NGX_PLINTH_SQL_SET_LIFECYCLE, 11, params,
                              ngx_http_plinth_lifecycle_done)
           != NGX_OK)
    {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


/*
 * A Days value: decimal digits, at most 9 of them (S3's schema: an
 * integer). NGX_PLINTH_LC_NONE when it is not one.
 */
static ngx_int_t
ngx_http_plinth_lc_days(xmlNodePtr n)
{
    xmlChar    *text;
    ngx_int_t   v;
    size_t      len;

    text = xmlNodeGetContent(n);
    if (text == NULL) {
        return NGX_PLINTH_LC_NONE;
    }

    len = xmlStrlen(text);
    v = (len == 0 || len > 9) ? NGX_ERROR : ngx_atoi(text, len);
    xmlFree(text);

    return v == NGX_ERROR ? NGX_PLINTH_LC_NONE : v;
}


/* The text of the one element n, or NULL (with *dup set) when repeated. */
static xmlChar *
ngx_http_plinth_lc_text(xmlNodePtr n, xmlChar *had, ngx_uint_t *dup)
{
    if (had) {
        *dup = 1;
        return had;
    }

    return xmlNodeGetContent(n);
}


/*
 * Parses <LifecycleConfiguration><Rule>...</Rule>...</...> into the
 * PostgreSQL array literals params[3..10] of plinth_set_lifecycle.
 * NGX_DECLINED once the error was answered.
 */
static ngx_int_t
ngx_http_plinth_lifecycle_parse(ngx_http_request_t *r, u_char *xml,
    size_t len, const char **params)
{
    u_char                *p[8];
    size_t                 size;
    xmlChar               *text, *cls;
    xmlDocPtr              doc;
    xmlNodePtr             root, rule, n, m;
    ngx_int_t              days, *slot, maxt;
    ngx_uint_t             nrules, i, j, k, dup, status, filter, action;
    ngx_plinth_err_e       err;
    const char            *message;
    ngx_plinth_lc_rule_t  *rules, *ru;

    /* as every XML body: a document with a DTD is refused (ngx_plinth_xml.c) */
    doc = ngx_http_plinth_xml_parse(r, xml, len);
    if (doc == NULL) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_MALFORMED_XML, NULL);
        return NGX_DECLINED;
    }

    err = NGX_PLINTH_ERR_MALFORMED_XML;
    message = NULL;
    rules = NULL;
    nrules = 0;

    root = xmlDocGetRootElement(doc);
    if (root == NULL
        || !ngx_http_plinth_xml_is(root, "LifecycleConfiguration"))
    {
        goto failed;
    }

    for (n = root->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) {
            continue;
        }
        if (!ngx_http_plinth_xml_is(n, "Rule")) {
            goto failed;
        }
        nrules++;
    }

    if (nrules == 0 || nrules > NGX_PLINTH_LIFECYCLE_MAX_RULES) {
        goto failed;
    }

    rules = ngx_pcalloc(r->pool, nrules * sizeof(ngx_plinth_lc_rule_t));
    if (rules == NULL) {
        err = NGX_PLINTH_ERR_INTERNAL;
        goto failed;
    }

    i = 0;
    for (rule = root->children; rule; rule = rule->next) {
        if (rule->type != XML_ELEMENT_NODE) {
            continue;
        }

        ru = &rules[i++];
        ru->ia = ru->glacier = ru->deep = NGX_PLINTH_LC_NONE;
        ru->expire = ru->noncurrent = NGX_PLINTH_LC_NONE;
        dup = 0;
        status = 0;
        filter = 0;
        action = 0;

        for (n = rule->children; n; n = n->next) {
            if (n->type != XML_ELEMENT_NODE) {
                continue;
            }

            if (ngx_http_plinth_xml_is(n, "ID")) {
                ru->id = ngx_http_plinth_lc_text(n, ru->id, &dup);
                if (ru->id && xmlStrlen(ru->id) > 255) {
                    err = NGX_PLINTH_ERR_INVALID_ARGUMENT;
                    message = "ID length should not exceed allowed limit "
                              "of 255";
                    goto failed;
                }

            } else if (ngx_http_plinth_xml_is(n, "Status")) {
                if (status++) {
                    goto failed;
                }
                text = xmlNodeGetContent(n);
                if (text && xmlStrcmp(text, (xmlChar *) "Enabled") == 0) {
                    ru->enabled = 1;
                } else if (text == NULL
                           || xmlStrcmp(text, (xmlChar *) "Disabled") != 0)
                {
                    xmlFree(text);
                    goto failed;
                }
                xmlFree(text);

            } else if (ngx_http_plinth_xml_is(n, "Prefix")) {
                /* the legacy form: Prefix directly in the Rule */
                if (filter++) {
                    goto failed;
                }
                ru->prefix = xmlNodeGetContent(n);

            } else if (ngx_http_plinth_xml_is(n, "Filter")) {
                if (filter++) {
                    goto failed;
                }
                for (m = n->children; m; m = m->next) {
                    if (m->type != XML_ELEMENT_NODE) {
                        continue;
                    }
                    if (ngx_http_plinth_xml_is(m, "Prefix")) {
                        ru->prefix = ngx_http_plinth_lc_text(m, ru->prefix,
                                                             &dup);
                    } else if (ngx_http_plinth_xml_is(m, "Tag")
                               || ngx_http_plinth_xml_is(m, "And")
                               || ngx_http_plinth_xml_is(m,
                                      "ObjectSizeGreaterThan")
                               || ngx_http_plinth_xml_is(m,
                                      "ObjectSizeLessThan"))
                    {
                        err = NGX_PLINTH_ERR_NOT_IMPLEMENTED;
                        message = "Lifecycle filters other than Prefix "
                                  "are not supported.";
                        goto failed;
                    } else {
                        goto failed;
                    }
                }

            } else if (ngx_http_plinth_xml_is(n, "Transition")) {
                action = 1;
                days = NGX_PLINTH_LC_NONE;
                cls = NULL;
                k = 0;
                for (m = n->children; m; m = m->next) {
                    if (m->type != XML_ELEMENT_NODE) {
                        continue;
                    }
                    if (ngx_http_plinth_xml_is(m, "Days")) {
                        if (k++) {
                            goto failed_cls;
                        }
                        days = ngx_http_plinth_lc_days(m);
                        if (days == NGX_PLINTH_LC_NONE) {
                            err = NGX_PLINTH_ERR_INVALID_ARGUMENT;
                            message = "'Days' for Transition action must "
                                      "be a nonnegative integer";
                            goto failed_cls;
                        }
                    } else if (ngx_http_plinth_xml_is(m, "StorageClass")) {
                        cls = ngx_http_plinth_lc_text(m, cls, &dup);
                    } else if (ngx_http_plinth_xml_is(m, "Date")) {
                        err = NGX_PLINTH_ERR_NOT_IMPLEMENTED;
                        message = "Transition by Date is not supported; "
                                  "use Days.";
                        goto failed_cls;
                    } else {
                        goto failed_cls;
                    }
                }
                if (days == NGX_PLINTH_LC_NONE || cls == NULL || dup) {
                    goto failed_cls;
                }
                if (xmlStrcmp(cls, (xmlChar *) "STANDARD_IA") == 0
                    || xmlStrcmp(cls, (xmlChar *) "ONEZONE_IA") == 0)
                {
                    slot = &ru->ia;
                } else if (xmlStrcmp(cls, (xmlChar *) "GLACIER") == 0
                           || xmlStrcmp(cls, (xmlChar *) "GLACIER_IR") == 0)
                {
                    slot = &ru->glacier;
                } else if (xmlStrcmp(cls, (xmlChar *) "DEEP_ARCHIVE") == 0) {
                    slot = &ru->deep;
                } else if (xmlStrcmp(cls, (xmlChar *) "STANDARD") == 0) {
                    err = NGX_PLINTH_ERR_INVALID_ARGUMENT;
                    message = "'StorageClass' of a Transition must be "
                              "different from STANDARD";
                    goto failed_cls;
                } else {
                    err = NGX_PLINTH_ERR_INVALID_STORAGE_CLASS;
                    goto failed_cls;
                }
                xmlFree(cls);
                if (*slot != NGX_PLINTH_LC_NONE) {
                    err = NGX_PLINTH_ERR_INVALID_ARGUMENT;
                    message = "'StorageClass' must be different for "
                              "'Transition' actions in same 'Rule'";
                    goto failed;
                }
                *slot = days;
                continue;

            failed_cls:
                xmlFree(cls);
                goto failed;

            } else if (ngx_http_plinth_xml_is(n, "Expiration")) {
                if (ru->expire != NGX_PLINTH_LC_NONE) {
                    goto failed;
                }
                action = 1;
                for (m = n->children; m; m = m->next) {
                    if (m->type != XML_ELEMENT_NODE) {
                        continue;
                    }
                    if (ngx_http_plinth_xml_is(m, "Days")
                        && ru->expire == NGX_PLINTH_LC_NONE)
                    {
                        ru->expire = ngx_http_plinth_lc_days(m);
                        if (ru->expire <= 0) {
                            err = NGX_PLINTH_ERR_INVALID_ARGUMENT;
                            message = "'Days' for Expiration action must "
                                      "be a positive integer";
                            goto failed;
                        }
                    } else if (ngx_http_plinth_xml_is(m, "Date")
                               || ngx_http_plinth_xml_is(m,
                                      "ExpiredObjectDeleteMarker"))
                    {
                        err = NGX_PLINTH_ERR_NOT_IMPLEMENTED;
                        message = "Expiration supports Days only.";
                        goto failed;
                    } else {
                        goto failed;
                    }
                }
                if (ru->expire == NGX_PLINTH_LC_NONE) {
                    goto failed;
                }

            } else if (ngx_http_plinth_xml_is(n,
                           "NoncurrentVersionExpiration"))
            {
                if (ru->noncurrent != NGX_PLINTH_LC_NONE) {
                    goto failed;
                }
                action = 1;
                for (m = n->children; m; m = m->next) {
                    if (m->type != XML_ELEMENT_NODE) {
                        continue;
                    }
                    if (ngx_http_plinth_xml_is(m, "NoncurrentDays")
                        && ru->noncurrent == NGX_PLINTH_LC_NONE)
                    {
                        ru->noncurrent = ngx_http_plinth_lc_days(m);
                        if (ru->noncurrent <= 0) {
                            err = NGX_PLINTH_ERR_INVALID_ARGUMENT;
                            message = "'NoncurrentDays' for "
                                      "NoncurrentVersionExpiration action "
                                      "must be a positive integer";
                            goto failed;
                        }
                    } else if (ngx_http_plinth_xml_is(m,
                                   "NewerNoncurrentVersions"))
                    {
                        err = NGX_PLINTH_ERR_NOT_IMPLEMENTED;
                        message = "NewerNoncurrentVersions is not "
                                  "supported.";
                        goto failed;
                    } else {
                        goto failed;
                    }
                }
                if (ru->noncurrent == NGX_PLINTH_LC_NONE) {
                    goto failed;
                }

            } else if (ngx_http_plinth_xml_is(n,
                           "NoncurrentVersionTransition")
                       || ngx_http_plinth_xml_is(n,
                           "AbortIncompleteMultipartUpload"))
            {
                err = NGX_PLINTH_ERR_NOT_IMPLEMENTED;
                message = "Lifecycle actions other than Transition, "
                          "Expiration and NoncurrentVersionExpiration are "
                          "not supported.";
                goto failed;

            } else {
                goto failed;
            }

            if (dup) {
                goto failed;
            }
        }

        if (!status || !filter) {
            goto failed;
        }

        if (!action) {
            err = NGX_PLINTH_ERR_INVALID_REQUEST;
            message = "At least one action needs to be specified in a rule";
            goto failed;
        }

        /* deeper classes later; expiration after every transition */
        maxt = NGX_PLINTH_LC_NONE;
        if ((ru->ia != NGX_PLINTH_LC_NONE && ru->glacier != NGX_PLINTH_LC_NONE
             && ru->glacier <= ru->ia)
            || (ru->ia != NGX_PLINTH_LC_NONE && ru->deep != NGX_PLINTH_LC_NONE
                && ru->deep <= ru->ia)
            || (ru->glacier != NGX_PLINTH_LC_NONE
                && ru->deep != NGX_PLINTH_LC_NONE
                && ru->deep <= ru->glacier))
        {
            err = NGX_PLINTH_ERR_INVALID_ARGUMENT;
            message = "'Days' of a Transition to a colder class must be "
                      "greater than those of a Transition to a warmer one";
            goto failed;
        }
        maxt = ngx_max(maxt, ru->ia);
        maxt = ngx_max(maxt, ru->glacier);
        maxt = ngx_max(maxt, ru->deep);
        if (ru->expire != NGX_PLINTH_LC_NONE && maxt >= ru->expire) {
            err = NGX_PLINTH_ERR_INVALID_ARGUMENT;
            message = "'Days' in the Expiration action must be greater "
                      "than 'Days' in the Transition action";
            goto failed;
        }
    }

    /* IDs are unique within the configuration */
    for (i = 0; i < nrules; i++) {
        for (j = i + 1; rules[i].id && j < nrules; j++) {
            if (rules[j].id && xmlStrcmp(rules[i].id, rules[j].id) == 0) {
                err = NGX_PLINTH_ERR_INVALID_ARGUMENT;
                message = "Rule ID must be unique. Found same ID for more "
                          "than one rule";
                goto failed;
            }
        }
    }

    /* the array literals: two text arrays (escaped), six of integers or
     * booleans */
    size = 0;
    for (i = 0; i < nrules; i++) {
        size += 2 * (rules[i].id ? xmlStrlen(rules[i].id) : 0) + 8;
        size += 2 * (rules[i].prefix ? xmlStrlen(rules[i].prefix) : 0) + 8;
    }
    for (k = 0; k < 8; k++) {
        p[k] = ngx_pnalloc(r->pool, (k < 2 ? size : 12 * nrules) + 3);
        if (p[k] == NULL) {
            err = NGX_PLINTH_ERR_INTERNAL;
            goto failed;
        }
        params[3 + k] = (const char *) p[k];
        *p[k]++ = '{';
    }

    for (i = 0; i < nrules; i++) {
        ru = &rules[i];
        if (i) {
            for (k = 0; k < 8; k++) {
                *p[k]++ = ',';
            }
        }
        p[0] = ru->id ? ngx_plinth_pg_array_elem(p[0], ru->id,
                                                 xmlStrlen(ru->id))
                      : ngx_cpymem(p[0], "NULL", 4);
        p[1] = ngx_plinth_pg_array_elem(p[1],
                                        ru->prefix ? ru->prefix
                                                   : (xmlChar *) "",
                                        ru->prefix ? xmlStrlen(ru->prefix)
                                                   : 0);
        *p[2]++ = ru->enabled ? 't' : 'f';
        for (k = 3; k < 8; k++) {
            days = (k == 3) ? ru->ia : (k == 4) ? ru->glacier
                 : (k == 5) ? ru->deep : (k == 6) ? ru->expire
                 : ru->noncurrent;
            p[k] = days == NGX_PLINTH_LC_NONE
                   ? ngx_cpymem(p[k], "NULL", 4)
                   : ngx_sprintf(p[k], "%i", days);
        }
    }

    for (k = 0; k < 8; k++) {
        *p[k]++ = '}';
        *p[k] = '\0';
    }

    for (i = 0; i < nrules; i++) {
        xmlFree(rules[i].id);
        xmlFree(rules[i].prefix);
    }
    xmlFreeDoc(doc);

    return NGX_OK;

failed:

    for (i = 0; rules && i < nrules; i++) {
        xmlFree(rules[i].id);
        xmlFree(rules[i].prefix);
    }
    xmlFreeDoc(doc);

    if (err == NGX_PLINTH_ERR_INTERNAL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    } else {
        ngx_http_plinth_error(r, err, message);
    }

    return NGX_DECLINED;
}
