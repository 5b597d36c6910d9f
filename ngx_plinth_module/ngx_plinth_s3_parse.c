/*
 * DeleteObjects, CompleteMultipartUpload and PutBucketVersioning documents
 * in pure C (libxml2, no nginx), so that fuzz/xml.c runs exactly the code
 * the gateway runs (ngx_plinth_s3_parse.h). Each array literal is sized by
 * a first walk of the tree and written by a second: every element's text
 * may double when escaped, plus its quotes and a comma.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "ngx_plinth_s3_parse.h"
#include "ngx_plinth_pgarray.h"
#include "ngx_plinth_xmlread.h"


/* the longest decimal a part number may be written as (an int64) */
#define PLINTH_PARSE_INT_LEN  (sizeof("-9223372036854775808") - 1)


const char  *const plinth_cks_algorithms[] = {
    "", "CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME", NULL
};


/* An element's text's length (0 without text). */
static size_t
plinth_parse_text_len(xmlNodePtr node)
{
    size_t    len;
    xmlChar  *text;

    text = xmlNodeGetContent(node);
    len = text ? (size_t) xmlStrlen(text) : 0;
    xmlFree(text);

    return len;
}


/*
 * Appends an element's text as one element of a PostgreSQL array literal;
 * no element (node NULL) is SQL NULL. p must have room for twice the
 * text's length plus 4 bytes.
 */
static unsigned char *
plinth_parse_array_node(unsigned char *p, xmlNodePtr node)
{
    xmlChar  *text;

    if (node == NULL) {
        memcpy(p, "NULL", 4);
        return p + 4;
    }

    text = xmlNodeGetContent(node);
    p = plinth_pg_array_elem(p, text ? text : (const xmlChar *) "",
                             text ? (size_t) xmlStrlen(text) : 0);
    xmlFree(text);

    return p;
}


/*
 * A decimal of digits only, as nginx's ngx_atoi() reads one: -1 when empty,
 * with another character, or over INT64_MAX.
 */
static int64_t
plinth_parse_int(const xmlChar *s, size_t len)
{
    int64_t  v;

    if (len == 0) {
        return -1;
    }

    for (v = 0; len--; s++) {
        if (*s < '0' || *s > '9') {
            return -1;
        }
        if (v > (INT64_MAX - (*s - '0')) / 10) {
            return -1;
        }
        v = v * 10 + (*s - '0');
    }

    return v;
}


plinth_parse_err_e
plinth_delete_parse(const unsigned char *xml, size_t len, int options,
    plinth_parse_alloc_pt alloc, void *ctx, plinth_delete_doc_t *d, int *dtd)
{
    size_t               size, vsize, count;
    xmlChar             *text;
    xmlDocPtr            doc;
    xmlNodePtr           root, obj, f, knode, vnode;
    unsigned char       *p, *v;
    plinth_parse_err_e   rc;

    d->keys = NULL;
    d->vids = NULL;
    d->quiet = 0;

    doc = plinth_xml_read(xml, len, options, dtd);
    if (doc == NULL) {
        return PLINTH_PARSE_MALFORMED_XML;
    }

    rc = PLINTH_PARSE_MALFORMED_XML;
    root = xmlDocGetRootElement(doc);

    if (root == NULL || !plinth_xml_is(root, "Delete")) {
        goto done;
    }

    count = 0;
    size = 3;
    vsize = 3;

    for (obj = root->children; obj; obj = obj->next) {
        if (obj->type != XML_ELEMENT_NODE) {
            continue;
        }

        if (plinth_xml_is(obj, "Quiet")) {
            text = xmlNodeGetContent(obj);
            d->quiet = (text && xmlStrcmp(text, (xmlChar *) "true") == 0);
            xmlFree(text);
            continue;
        }

        if (!plinth_xml_is(obj, "Object")) {
            goto done;
        }

        knode = NULL;
        vnode = NULL;
        for (f = obj->children; f; f = f->next) {
            if (plinth_xml_is(f, "Key")) {
                if (knode) {
                    goto done;
                }
                knode = f;

            } else if (plinth_xml_is(f, "VersionId")) {
                if (vnode) {
                    goto done;
                }
                vnode = f;
            }
        }

        if (knode == NULL) {
            goto done;
        }

        size += 2 * plinth_parse_text_len(knode) + 3;
        vsize += (vnode ? 2 * plinth_parse_text_len(vnode) : 4) + 3;
        count++;
    }

    if (count == 0 || count > PLINTH_DELETE_MAX_KEYS) {
        goto done;
    }

    d->keys = alloc(ctx, size + 1);
    d->vids = alloc(ctx, vsize + 1);
    if (d->keys == NULL || d->vids == NULL) {
        rc = PLINTH_PARSE_INTERNAL;
        goto done;
    }

    p = (unsigned char *) d->keys;
    *p++ = '{';
    v = (unsigned char *) d->vids;
    *v++ = '{';

    for (obj = root->children; obj; obj = obj->next) {
        if (!plinth_xml_is(obj, "Object")) {
            continue;
        }

        knode = NULL;
        vnode = NULL;
        for (f = obj->children; f; f = f->next) {
            if (plinth_xml_is(f, "Key")) {
                knode = f;
            } else if (plinth_xml_is(f, "VersionId")) {
                vnode = f;
            }
        }

        if (p[-1] != '{') {
            *p++ = ',';
            *v++ = ',';
        }

        p = plinth_parse_array_node(p, knode);
        v = plinth_parse_array_node(v, vnode);
    }

    *p++ = '}';
    *p = '\0';
    *v++ = '}';
    *v = '\0';

    rc = PLINTH_PARSE_OK;

done:

    xmlFreeDoc(doc);

    return rc;
}


/* A Part's <ChecksumCRC32> (and the others): whether it is one. */
static int
plinth_parse_is_checksum(xmlNodePtr f)
{
    size_t  a;

    if (f->type != XML_ELEMENT_NODE
        || xmlStrncmp(f->name, (xmlChar *) "Checksum", 8) != 0)
    {
        return 0;
    }

    /* element names are case-sensitive: ChecksumCRC32, not Checksumcrc32 */
    for (a = 1; plinth_cks_algorithms[a]; a++) {
        if (strcmp((const char *) f->name + 8, plinth_cks_algorithms[a])
            == 0)
        {
            return 1;
        }
    }

    return 0;
}


plinth_parse_err_e
plinth_complete_parse(const unsigned char *xml, size_t len, int options,
    plinth_parse_alloc_pt alloc, void *ctx, plinth_complete_doc_t *c,
    const char **message, int *dtd)
{
    size_t               plen, elen, count;
    int64_t              n;
    xmlChar             *text;
    xmlDocPtr            doc;
    xmlNodePtr           root, part, f, pnode, enode, cnode;
    unsigned char       *pp, *ep, *cp;
    plinth_parse_err_e   rc;

    c->parts = NULL;
    c->etags = NULL;
    c->cks = NULL;
    *message = NULL;

    doc = plinth_xml_read(xml, len, options, dtd);
    if (doc == NULL) {
        return PLINTH_PARSE_MALFORMED_XML;
    }

    rc = PLINTH_PARSE_MALFORMED_XML;
    root = xmlDocGetRootElement(doc);

    if (root == NULL || !plinth_xml_is(root, "CompleteMultipartUpload")) {
        goto done;
    }

    count = 0;
    plen = 2;
    elen = 2;

    for (part = root->children; part; part = part->next) {
        if (part->type != XML_ELEMENT_NODE) {
            continue;
        }
        if (!plinth_xml_is(part, "Part")) {
            goto done;
        }
        count++;
        plen += PLINTH_PARSE_INT_LEN + 1;
        for (f = part->children; f; f = f->next) {
            if (plinth_xml_is(f, "ETag") || plinth_parse_is_checksum(f)) {
                elen += 2 * plinth_parse_text_len(f) + 3;
            }
        }
        elen += 5;      /* NULL, for a part without a checksum */
    }

    if (count == 0 || count > PLINTH_MPU_MAX_PARTS) {
        goto done;
    }

    c->parts = alloc(ctx, plen + 1);
    c->etags = alloc(ctx, elen + 1);
    c->cks = alloc(ctx, elen + 1);
    if (c->parts == NULL || c->etags == NULL || c->cks == NULL) {
        rc = PLINTH_PARSE_INTERNAL;
        goto done;
    }

    pp = (unsigned char *) c->parts;
    ep = (unsigned char *) c->etags;
    cp = (unsigned char *) c->cks;
    *pp++ = '{';
    *ep++ = '{';
    *cp++ = '{';

    for (part = root->children; part; part = part->next) {
        if (part->type != XML_ELEMENT_NODE) {
            continue;
        }

        pnode = NULL;
        enode = NULL;
        cnode = NULL;

        for (f = part->children; f; f = f->next) {
            if (plinth_xml_is(f, "PartNumber")) {
                if (pnode) {
                    goto done;
                }
                pnode = f;

            } else if (plinth_xml_is(f, "ETag")) {
                if (enode) {
                    goto done;
                }
                enode = f;

            } else if (plinth_parse_is_checksum(f)) {
                if (cnode) {
                    goto done;
                }
                cnode = f;
            }
        }

        if (pnode == NULL || enode == NULL) {
            goto done;
        }

        text = xmlNodeGetContent(pnode);
        n = text ? plinth_parse_int(text, xmlStrlen(text)) : -1;
        xmlFree(text);

        if (n < 0) {
            goto done;
        }

        if (n < 1 || n > PLINTH_MPU_MAX_PARTS) {
            *message = "Part number must be an integer between 1 and 10000, "
                       "inclusive";
            rc = PLINTH_PARSE_INVALID_ARGUMENT;
            goto done;
        }

        if (pp[-1] != '{') {
            *pp++ = ',';
            *ep++ = ',';
            *cp++ = ',';
        }

        pp += snprintf((char *) pp, PLINTH_PARSE_INT_LEN + 1, "%d", (int) n);

        ep = plinth_parse_array_node(ep, enode);
        cp = plinth_parse_array_node(cp, cnode);
    }

    *pp++ = '}';
    *pp = '\0';
    *ep++ = '}';
    *ep = '\0';
    *cp++ = '}';
    *cp = '\0';

    rc = PLINTH_PARSE_OK;

done:

    xmlFreeDoc(doc);

    return rc;
}


plinth_parse_err_e
plinth_versioning_parse(const unsigned char *xml, size_t len, int options,
    const char **status, const char **message, int *dtd)
{
    int                  mfa, seen;
    xmlChar             *text;
    xmlDocPtr            doc;
    xmlNodePtr           root, n;
    plinth_parse_err_e   rc;

    *status = NULL;
    *message = NULL;

    doc = plinth_xml_read(xml, len, options, dtd);
    if (doc == NULL) {
        return PLINTH_PARSE_MALFORMED_XML;
    }

    rc = PLINTH_PARSE_MALFORMED_XML;
    mfa = 0;
    seen = 0;
    root = xmlDocGetRootElement(doc);

    if (root == NULL || !plinth_xml_is(root, "VersioningConfiguration")) {
        goto done;
    }

    for (n = root->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) {
            continue;
        }

        if (plinth_xml_is(n, "Status")) {
            if (seen++) {
                goto done;
            }
            text = xmlNodeGetContent(n);
            if (text && xmlStrcmp(text, (xmlChar *) "Enabled") == 0) {
                *status = "Enabled";
            } else if (text && xmlStrcmp(text, (xmlChar *) "Suspended") == 0) {
                *status = "Suspended";
            }
            xmlFree(text);
            if (*status == NULL) {
                goto done;
            }
            continue;
        }

        if (plinth_xml_is(n, "MfaDelete")) {
            text = xmlNodeGetContent(n);
            if (text && xmlStrcmp(text, (xmlChar *) "Enabled") == 0) {
                mfa = 1;
            } else if (text == NULL
                       || xmlStrcmp(text, (xmlChar *) "Disabled") != 0)
            {
                xmlFree(text);
                goto done;
            }
            xmlFree(text);
            continue;
        }

        goto done;
    }

    if (mfa) {
        *message = "MFA delete is not supported.";
        rc = PLINTH_PARSE_NOT_IMPLEMENTED;

    } else if (*status) {
        rc = PLINTH_PARSE_OK;
    }

done:

    xmlFreeDoc(doc);

    if (rc != PLINTH_PARSE_OK) {
        *status = NULL;
    }

    return rc;
}
