/*
 * Response bodies for S3: an append-only chain of pool buffers with XML
 * escaping. A writer never fails midway: the first allocation failure sets
 * x->error and later calls do nothing, so callers check once at the end.
 * Bodies are built once per response and never copied again: the chain is
 * what nginx sends.
 */

#include "ngx_plinth.h"
#include <libxml/parser.h>



#define NGX_PLINTH_XML_CHUNK  8192


static u_char *ngx_plinth_xml_reserve(ngx_plinth_xml_t *x, size_t len);


void
ngx_plinth_xml_init(ngx_plinth_xml_t *x, ngx_pool_t *pool)
{
    x->pool = pool;
    x->first = NULL;
    x->last = NULL;
    x->error = 0;
}


static u_char *
ngx_plinth_xml_reserve(ngx_plinth_xml_t *x, size_t len)
{
    size_t        size;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (x->error) {
        return NULL;
    }

    if (x->last && (size_t) (x->last->buf->end - x->last->buf->last) >= len) {
        return x->last->buf->last;
    }

    size = len > NGX_PLINTH_XML_CHUNK ? len : NGX_PLINTH_XML_CHUNK;

    b = ngx_create_temp_buf(x->pool, size);
    cl = ngx_alloc_chain_link(x->pool);
    if (b == NULL || cl == NULL) {
        x->error = 1;
        return NULL;
    }

    cl->buf = b;
    cl->next = NULL;

    if (x->last) {
        x->last->next = cl;
    } else {
        x->first = cl;
    }

    x->last = cl;

    return b->last;
}


void
ngx_plinth_xml_raw(ngx_plinth_xml_t *x, const u_char *s, size_t len)
{
    u_char  *p;

    p = ngx_plinth_xml_reserve(x, len);
    if (p == NULL) {
        return;
    }

    x->last->buf->last = ngx_cpymem(p, s, len);
}


void
ngx_plinth_xml_lit(ngx_plinth_xml_t *x, const char *s)
{
    ngx_plinth_xml_raw(x, (const u_char *) s, ngx_strlen(s));
}


void
ngx_plinth_xml_text(ngx_plinth_xml_t *x, const u_char *s, size_t len)
{
    u_char  *p;

    /* worst case: every byte becomes "&#xHH;" */
    p = ngx_plinth_xml_reserve(x, len * 6);
    if (p == NULL) {
        return;
    }

    while (len--) {
        switch (*s) {
        case '&':
            p = ngx_cpymem(p, "&amp;", 5);
            break;
        case '<':
            p = ngx_cpymem(p, "&lt;", 4);
            break;
        case '>':
            p = ngx_cpymem(p, "&gt;", 4);
            break;
        case '"':
            p = ngx_cpymem(p, "&quot;", 6);
            break;
        case '\'':
            p = ngx_cpymem(p, "&apos;", 6);
            break;
        default:
            if (*s < 0x20 && *s != '\t' && *s != '\n') {
                /* not representable in XML 1.0: S3 escapes it the same */
                p = ngx_sprintf(p, "&#x%02xd;", (unsigned) *s);
            } else {
                *p++ = *s;
            }
        }
        s++;
    }

    x->last->buf->last = p;
}


void
ngx_plinth_xml_elem_url(ngx_plinth_xml_t *x, const char *name,
    const u_char *s, size_t len, ngx_uint_t url)
{
    u_char  *p, *enc;
    size_t   n;

    ngx_plinth_xml_lit(x, "<");
    ngx_plinth_xml_lit(x, name);
    ngx_plinth_xml_lit(x, ">");

    if (url) {
        /* encoding-type=url: what the AWS SDKs decode with unquote_plus */
        n = ngx_escape_uri(NULL, (u_char *) s, len, NGX_ESCAPE_ARGS);
        enc = ngx_pnalloc(x->pool, len + 2 * n);
        if (enc == NULL) {
            x->error = 1;
            return;
        }
        p = (u_char *) ngx_escape_uri(enc, (u_char *) s, len,
                                      NGX_ESCAPE_ARGS);
        ngx_plinth_xml_text(x, enc, p - enc);

    } else {
        ngx_plinth_xml_text(x, s, len);
    }

    ngx_plinth_xml_lit(x, "</");
    ngx_plinth_xml_lit(x, name);
    ngx_plinth_xml_lit(x, ">");
}


void
ngx_plinth_xml_elem(ngx_plinth_xml_t *x, const char *name, const u_char *s,
    size_t len)
{
    ngx_plinth_xml_elem_url(x, name, s, len, 0);
}


void
ngx_plinth_xml_elem_int(ngx_plinth_xml_t *x, const char *name, int64_t v)
{
    u_char  buf[NGX_INT64_LEN + 1], *p;

    p = ngx_sprintf(buf, "%L", v);
    ngx_plinth_xml_elem(x, name, buf, p - buf);
}


/*
 * The request body in one NUL-terminated buffer (nginx may have spooled
 * it to a temp file), at most max bytes. NULL with *len over max when too
 * large. For small control documents (XML), never object bodies.
 */
u_char *
ngx_http_plinth_read_body(ngx_http_request_t *r, size_t max, size_t *len)
{
    off_t                   size;
    u_char                 *buf, *p;
    ssize_t                 n;
    ngx_buf_t              *b;
    ngx_chain_t            *cl;
    ngx_http_plinth_ctx_t  *ctx;

    *len = 0;

    ctx = ngx_http_get_module_ctx(r, ngx_http_plinth_module);

    if (ctx && ctx->xml_over) {
        /* the request body filter dropped what was over the cap */
        *len = max + 1;
        return NULL;
    }

    if (r->request_body == NULL) {
        return NULL;
    }

    size = 0;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        size += ngx_buf_size(cl->buf);
    }

    if (size > (off_t) max) {
        *len = (size_t) size;
        return NULL;
    }

    buf = ngx_pnalloc(r->pool, (size_t) size + 1);
    if (buf == NULL) {
        return NULL;
    }

    p = buf;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        if (b->in_file && b->file_last > b->file_pos) {
            n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "plinth: could not read the request body back "
                              "from its temp file");
                return NULL;
            }
            p += n;
        }
    }

    *p = '\0';
    *len = p - buf;

    return buf;
}


/* Memory for the pure body parsers (ngx_plinth_s3_parse.h and the
 * others): from the request's pool, aligned. */
void *
ngx_http_plinth_pool_alloc(void *pool, size_t size)
{
    return ngx_palloc(pool, size);
}


/*
 * Answers a pure body parser's error (ngx_plinth_parse.h): its S3 error
 * with message (NULL: the code's own), or 500 when memory ran out. A
 * document with a DTD is refused as malformed, and logged.
 */
void
ngx_http_plinth_parse_error(ngx_http_request_t *r, plinth_parse_err_e rc,
    const char *message, int dtd)
{
    ngx_plinth_err_e  err;

    if (dtd) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "plinth: an XML body with a DTD refused");
    }

    switch (rc) {

    case PLINTH_PARSE_INTERNAL:
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;

    case PLINTH_PARSE_INVALID_ARGUMENT:
        err = NGX_PLINTH_ERR_INVALID_ARGUMENT;
        break;

    case PLINTH_PARSE_NOT_IMPLEMENTED:
        err = NGX_PLINTH_ERR_NOT_IMPLEMENTED;
        break;

    case PLINTH_PARSE_INVALID_REQUEST:
        err = NGX_PLINTH_ERR_INVALID_REQUEST;
        break;

    case PLINTH_PARSE_INVALID_STORAGE_CLASS:
        err = NGX_PLINTH_ERR_INVALID_STORAGE_CLASS;
        break;

    case PLINTH_PARSE_KEY_TOO_LONG:
        err = NGX_PLINTH_ERR_KEY_TOO_LONG;
        break;

    default: /* PLINTH_PARSE_MALFORMED_XML */
        err = NGX_PLINTH_ERR_MALFORMED_XML;
        break;
    }

    ngx_http_plinth_error(r, err, message);
}


/*
 * Content-MD5, when the request carries one, against digest (the MD5 of
 * the body received): NGX_OK when there is none or it matches; otherwise
 * the S3 error is answered (InvalidDigest: not 16 bytes in base64;
 * BadDigest: another digest) and NGX_DECLINED returned.
 */
ngx_int_t
ngx_http_plinth_check_content_md5(ngx_http_request_t *r, const u_char *digest)
{
    ngx_str_t         want;
    ngx_table_elt_t  *h;

    h = ngx_http_plinth_header_in(r, "Content-MD5");
    if (h == NULL) {
        return NGX_OK;
    }

    want.data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(h->value.len));
    if (want.data == NULL) {
        ngx_http_plinth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_DECLINED;
    }

    if (ngx_decode_base64(&want, &h->value) != NGX_OK || want.len != 16) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_INVALID_DIGEST, NULL);
        return NGX_DECLINED;
    }

    if (ngx_memcmp(want.data, digest, 16) != 0) {
        ngx_http_plinth_error(r, NGX_PLINTH_ERR_BAD_DIGEST, NULL);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* The same for a control document held whole (its MD5 made only when the
 * request has a Content-MD5). */
ngx_int_t
ngx_http_plinth_check_body_md5(ngx_http_request_t *r, const u_char *body,
    size_t len)
{
    u_char     digest[16];
    ngx_md5_t  md5;

    if (ngx_http_plinth_header_in(r, "Content-MD5") == NULL) {
        return NGX_OK;
    }

    ngx_md5_init(&md5);
    ngx_md5_update(&md5, body, len);
    ngx_md5_final(digest, &md5);

    return ngx_http_plinth_check_content_md5(r, digest);
}
