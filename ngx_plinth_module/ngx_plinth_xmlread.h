/*
 * Reading an S3 control document (XML body) with libxml2, as every body
 * parser of the gateway does it (ngx_plinth_xml.c, and the nginx-free
 * parsers ngx_plinth_lifecycle_parse.c and ngx_plinth_batch_parse.c, which
 * the fuzz targets link): no nginx headers.
 *
 * S3's documents never have a DTD, and without one no entity can be
 * declared: nothing expands (billion laughs) and nothing is fetched
 * (external entities, external DTDs). The caller's options are the
 * gateway's NGX_PLINTH_XML_PARSE_OPTIONS: no XML_PARSE_NOENT,
 * XML_PARSE_DTDLOAD or XML_PARSE_HUGE (libxml2's depth limit of 256 and
 * its size limits hold), with XML_PARSE_NONET.
 */

#ifndef PLINTH_XMLREAD_H
#define PLINTH_XMLREAD_H

#include <stddef.h>
#include <libxml/parser.h>


/*
 * The document, or NULL: not well-formed, or (*dtd set to 1) it has a DTD
 * and is refused. dtd may be NULL.
 */
static inline xmlDocPtr
plinth_xml_read(const unsigned char *xml, size_t len, int options, int *dtd)
{
    xmlDocPtr  doc;

    if (dtd) {
        *dtd = 0;
    }

    doc = xmlReadMemory((const char *) xml, (int) len, NULL, NULL, options);
    if (doc == NULL) {
        return NULL;
    }

    if (doc->intSubset || doc->extSubset) {
        xmlFreeDoc(doc);
        if (dtd) {
            *dtd = 1;
        }
        return NULL;
    }

    return doc;
}


/* Whether node is the element name (names are case-sensitive). */
static inline int
plinth_xml_is(xmlNodePtr node, const char *name)
{
    return node->type == XML_ELEMENT_NODE
           && xmlStrcmp(node->name, (const xmlChar *) name) == 0;
}

#endif /* PLINTH_XMLREAD_H */
