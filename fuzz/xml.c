/*
 * Fuzz target: the XML request bodies the gateway reads — DeleteObjects
 * (<Delete>), CompleteMultipartUpload and PutBucketVersioning
 * (<VersioningConfiguration>) — parsed exactly as the gateway parses them:
 * xmlReadMemory() with XML_PARSE_NONET | XML_PARSE_NOERROR |
 * XML_PARSE_NOWARNING on the body as read (NUL-terminated copy, length
 * without the NUL), a document with a DTD refused
 * (ngx_http_plinth_xml_parse()), then the same tree walk.
 *
 * The walks live in nginx-typed functions (ngx_http_request_t, ngx_pool_t,
 * ngx_http_plinth_error()) that cannot be linked without nginx, so they are
 * MIRRORED here, line for line, from
 *     ngx_plinth_s3_delete.c     ngx_http_plinth_delete_parse()
 *     ngx_plinth_s3_multipart.c  ngx_http_plinth_complete_parse(),
 *                                ngx_http_plinth_complete_checksum()
 *     ngx_plinth_s3_bucket.c     ngx_http_plinth_versioning_parse()
 *     ngx_plinth_xml.c           ngx_http_plinth_xml_is(),
 *                                ngx_plinth_pg_array_node(),
 *                                ngx_plinth_pg_array_elem()
 * with the pool allocations replaced by exact-size malloc() (so ASan sees
 * any write past the size the first pass computed) and error answers by
 * return codes. Keep them in step with those files.
 *
 * The whole input is one body; it goes through all three walks (each
 * rejects a document whose root is not its own). Checked beyond memory
 * safety: the array literals written fill their buffers to exactly the
 * length written, braces balanced.
 */

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "fuzz.h"
#include "fuzz_libxml.h"


#define DELETE_MAX_KEYS  1000
#define MPU_MAX_PARTS    10000
#define INT_T_LEN        (sizeof("-9223372036854775808") - 1)

#define R_OK          0
#define R_MALFORMED   1
#define R_ARGUMENT    2
#define R_NOT_IMPL    3


static const char  *cks_algorithms[] = {
    "", "CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME", NULL
};


/* ngx_http_plinth_xml_is() */
static int
xml_is(xmlNodePtr node, const char *name)
{
    return node->type == XML_ELEMENT_NODE
           && xmlStrcmp(node->name, (const xmlChar *) name) == 0;
}


/* ngx_plinth_pg_array_elem() */
static uint8_t *
pg_array_elem(uint8_t *p, const uint8_t *s, size_t len)
{
    *p++ = '"';

    while (len--) {
        if (*s == '"' || *s == '\\') {
            *p++ = '\\';
        }
        *p++ = *s++;
    }

    *p++ = '"';

    return p;
}


/* ngx_plinth_pg_array_node() */
static uint8_t *
pg_array_node(uint8_t *p, xmlNodePtr node)
{
    xmlChar  *text;

    if (node == NULL) {
        memcpy(p, "NULL", 4);
        return p + 4;
    }

    text = xmlNodeGetContent(node);
    p = pg_array_elem(p, text ? text : (xmlChar *) "",
                      text ? (size_t) xmlStrlen(text) : 0);
    xmlFree(text);

    return p;
}


/* ngx_atoi(): decimal digits only, NGX_ERROR (-1) on anything else */
static int64_t
ngx_atoi_mirror(const xmlChar *line, size_t n)
{
    int64_t  value, cutoff, cutlim;

    if (n == 0) {
        return -1;
    }

    cutoff = INT64_MAX / 10;
    cutlim = INT64_MAX % 10;

    for (value = 0; n--; line++) {
        if (*line < '0' || *line > '9') {
            return -1;
        }

        if (value >= cutoff && (value > cutoff || *line - '0' > cutlim)) {
            return -1;
        }

        value = value * 10 + (*line - '0');
    }

    return value;
}


static void
check_literal(const uint8_t *buf, const uint8_t *end, size_t size)
{
    /* wrote exactly what fits: the '\0' is the last byte of the buffer */
    FUZZ_ASSERT(end >= buf && (size_t) (end - buf) < size);
    FUZZ_ASSERT(buf[0] == '{' && end[-1] == '}' && end[0] == '\0');
}


/* ngx_http_plinth_delete_parse() */
static int
delete_parse(xmlDocPtr doc)
{
    uint8_t     *p, *v, *keys, *vids;
    size_t       size, vsize;
    xmlChar     *text;
    xmlNodePtr   root, obj, f, knode, vnode;
    unsigned     count, quiet;

    root = xmlDocGetRootElement(doc);

    if (root == NULL || !xml_is(root, "Delete")) {
        return R_MALFORMED;
    }

    count = 0;
    size = 3;
    vsize = 3;
    quiet = 0;

    for (obj = root->children; obj; obj = obj->next) {
        if (obj->type != XML_ELEMENT_NODE) {
            continue;
        }

        if (xml_is(obj, "Quiet")) {
            text = xmlNodeGetContent(obj);
            quiet = (text && xmlStrcmp(text, (xmlChar *) "true") == 0);
            xmlFree(text);
            continue;
        }

        if (!xml_is(obj, "Object")) {
            return R_MALFORMED;
        }

        knode = NULL;
        vnode = NULL;
        for (f = obj->children; f; f = f->next) {
            if (xml_is(f, "Key")) {
                if (knode) {
                    return R_MALFORMED;
                }
                knode = f;

            } else if (xml_is(f, "VersionId")) {
                if (vnode) {
                    return R_MALFORMED;
                }
                vnode = f;
            }
        }

        if (knode == NULL) {
            return R_MALFORMED;
        }

        text = xmlNodeGetContent(knode);
        size += (text ? 2 * (size_t) xmlStrlen(text) : 0) + 3;
        xmlFree(text);

        text = vnode ? xmlNodeGetContent(vnode) : NULL;
        vsize += (text ? 2 * (size_t) xmlStrlen(text) : 4) + 3;
        xmlFree(text);

        count++;
    }

    (void) quiet;

    if (count == 0 || count > DELETE_MAX_KEYS) {
        return R_MALFORMED;
    }

    keys = fuzz_dup("", size + 1);
    vids = fuzz_dup("", vsize + 1);

    p = keys;
    *p++ = '{';
    v = vids;
    *v++ = '{';

    for (obj = root->children; obj; obj = obj->next) {
        if (!xml_is(obj, "Object")) {
            continue;
        }

        knode = NULL;
        vnode = NULL;
        for (f = obj->children; f; f = f->next) {
            if (xml_is(f, "Key")) {
                knode = f;
            } else if (xml_is(f, "VersionId")) {
                vnode = f;
            }
        }

        if (p[-1] != '{') {
            *p++ = ',';
            *v++ = ',';
        }

        p = pg_array_node(p, knode);
        v = pg_array_node(v, vnode);
    }

    *p++ = '}';
    *p = '\0';
    *v++ = '}';
    *v = '\0';

    check_literal(keys, p, size + 1);
    check_literal(vids, v, vsize + 1);

    free(keys);
    free(vids);

    return R_OK;
}


/* ngx_http_plinth_complete_checksum() */
static unsigned
complete_checksum(xmlNodePtr f)
{
    unsigned  a;
    char      name[32];

    for (a = 1; cks_algorithms[a]; a++) {
        snprintf(name, sizeof(name), "Checksum%s", cks_algorithms[a]);
        if (xml_is(f, name)) {
            return a;
        }
    }

    return 0;
}


/* ngx_http_plinth_complete_parse() */
static int
complete_parse(xmlDocPtr doc)
{
    int          rc;
    uint8_t     *pp, *ep, *cp, *parts, *etags, *cks;
    size_t       plen, elen;
    int64_t      n;
    xmlChar     *text;
    xmlNodePtr   root, part, f, pnode, enode, cnode;
    unsigned     count, a;

    root = xmlDocGetRootElement(doc);

    if (root == NULL || !xml_is(root, "CompleteMultipartUpload")) {
        return R_MALFORMED;
    }

    count = 0;
    plen = 2;
    elen = 2;

    for (part = root->children; part; part = part->next) {
        if (part->type != XML_ELEMENT_NODE) {
            continue;
        }
        if (!xml_is(part, "Part")) {
            return R_MALFORMED;
        }
        count++;
        plen += INT_T_LEN + 1;
        for (f = part->children; f; f = f->next) {
            if (xml_is(f, "ETag") || complete_checksum(f)) {
                text = xmlNodeGetContent(f);
                /* each byte may be escaped, plus quotes and a comma */
                elen += (text ? 2 * xmlStrlen(text) : 0) + 3;
                xmlFree(text);
            }
        }
        elen += 5;      /* NULL, for a part without a checksum */
    }

    if (count == 0 || count > MPU_MAX_PARTS) {
        return R_MALFORMED;
    }

    parts = fuzz_dup("", plen + 1);
    etags = fuzz_dup("", elen + 1);
    cks = fuzz_dup("", elen + 1);

    pp = parts;
    ep = etags;
    cp = cks;
    *pp++ = '{';
    *ep++ = '{';
    *cp++ = '{';

    rc = R_OK;

    for (part = root->children; part; part = part->next) {
        if (part->type != XML_ELEMENT_NODE) {
            continue;
        }

        pnode = NULL;
        enode = NULL;
        cnode = NULL;

        for (f = part->children; f; f = f->next) {
            if (xml_is(f, "PartNumber")) {
                if (pnode) {
                    rc = R_MALFORMED;
                    goto done;
                }
                pnode = f;

            } else if (xml_is(f, "ETag")) {
                if (enode) {
                    rc = R_MALFORMED;
                    goto done;
                }
                enode = f;

            } else if ((a = complete_checksum(f))) {
                if (cnode) {
                    rc = R_MALFORMED;
                    goto done;
                }
                cnode = f;
            }
        }

        if (pnode == NULL || enode == NULL) {
            rc = R_MALFORMED;
            goto done;
        }

        text = xmlNodeGetContent(pnode);
        n = text ? ngx_atoi_mirror(text, xmlStrlen(text)) : -1;
        xmlFree(text);

        if (n == -1) {
            rc = R_MALFORMED;
            goto done;
        }

        if (n < 1 || n > MPU_MAX_PARTS) {
            rc = R_ARGUMENT;
            goto done;
        }

        if (pp[-1] != '{') {
            *pp++ = ',';
            *ep++ = ',';
            *cp++ = ',';
        }

        pp += sprintf((char *) pp, "%lld", (long long) n);

        ep = pg_array_node(ep, enode);
        cp = pg_array_node(cp, cnode);
    }

    *pp++ = '}';
    *pp = '\0';
    *ep++ = '}';
    *ep = '\0';
    *cp++ = '}';
    *cp = '\0';

    check_literal(parts, pp, plen + 1);
    check_literal(etags, ep, elen + 1);
    check_literal(cks, cp, elen + 1);

done:

    free(parts);
    free(etags);
    free(cks);

    return rc;
}


/* ngx_http_plinth_versioning_parse() */
static int
versioning_parse(xmlDocPtr doc)
{
    xmlChar      *text;
    xmlNodePtr    root, n;
    const char   *status;
    unsigned      mfa, seen;

    status = NULL;
    mfa = 0;
    seen = 0;
    root = xmlDocGetRootElement(doc);

    if (root == NULL || !xml_is(root, "VersioningConfiguration")) {
        return R_MALFORMED;
    }

    for (n = root->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) {
            continue;
        }

        if (xml_is(n, "Status")) {
            if (seen++) {
                return R_MALFORMED;
            }
            text = xmlNodeGetContent(n);
            if (text && xmlStrcmp(text, (xmlChar *) "Enabled") == 0) {
                status = "Enabled";
            } else if (text && xmlStrcmp(text, (xmlChar *) "Suspended") == 0) {
                status = "Suspended";
            }
            xmlFree(text);
            if (status == NULL) {
                return R_MALFORMED;
            }
            continue;
        }

        if (xml_is(n, "MfaDelete")) {
            text = xmlNodeGetContent(n);
            if (text && xmlStrcmp(text, (xmlChar *) "Enabled") == 0) {
                mfa = 1;
            } else if (text == NULL
                       || xmlStrcmp(text, (xmlChar *) "Disabled") != 0)
            {
                xmlFree(text);
                return R_MALFORMED;
            }
            xmlFree(text);
            continue;
        }

        return R_MALFORMED;
    }

    if (mfa) {
        return R_NOT_IMPL;
    }

    return status ? R_OK : R_MALFORMED;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t    *body;
    xmlDocPtr   doc;

    if (size > INT32_MAX) {
        return 0;
    }

    /* as ngx_http_plinth_read_body() hands it over: NUL after the end */
    body = malloc(size + 1);
    FUZZ_ASSERT(body != NULL);
    memcpy(body, data, size);
    body[size] = '\0';

    doc = xmlReadMemory((const char *) body, (int) size, NULL, NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR
                        | XML_PARSE_NOWARNING);

    /* ngx_http_plinth_xml_parse(): a document with a DTD is refused */
    if (doc != NULL && (doc->intSubset || doc->extSubset)) {
        xmlFreeDoc(doc);
        doc = NULL;
    }

    if (doc != NULL) {
        (void) delete_parse(doc);
        (void) complete_parse(doc);
        (void) versioning_parse(doc);
        xmlFreeDoc(doc);
    }

    free(body);

    return 0;
}
