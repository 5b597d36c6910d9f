/*
 * PutBucketLifecycleConfiguration's document: the tree walk, the rules'
 * validation (as S3 validates them) and the PostgreSQL array literals, in
 * pure C (libxml2, no nginx), so that fuzz/lifecycle.c runs exactly the
 * code the gateway runs. ngx_plinth_s3_lifecycle.c calls it with its pool
 * and turns an error code into its S3 answer.
 *
 * Supported in a Rule: ID, Status, Filter with Prefix (or an empty
 * Filter), the legacy Rule-level Prefix, Transition (Days, StorageClass),
 * Expiration (Days), NoncurrentVersionExpiration (NoncurrentDays). What
 * S3 has and Plinth does not carry out (Date, tags, object sizes,
 * ExpiredObjectDeleteMarker, NoncurrentVersionTransition,
 * AbortIncompleteMultipartUpload, NewerNoncurrentVersions) is 501
 * NotImplemented, never accepted and ignored.
 */

#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "ngx_plinth_lifecycle_parse.h"
#include "ngx_plinth_pgarray.h"
#include "ngx_plinth_xmlread.h"


#define PLINTH_LC_NONE  (-1)


typedef struct {
    xmlChar      *id;
    xmlChar      *prefix;
    unsigned      enabled;
    long          ia;           /* Transition days to STANDARD_IA */
    long          glacier;
    long          deep;
    long          expire;       /* Expiration days */
    long          noncurrent;   /* NoncurrentVersionExpiration days */
} plinth_lc_rule_t;


/*
 * A Days value: decimal digits, at most 9 of them (S3's schema: an
 * integer). PLINTH_LC_NONE when it is not one.
 */
static long
plinth_lc_days(xmlNodePtr n)
{
    xmlChar  *text;
    long      v;
    size_t    len, i;

    text = xmlNodeGetContent(n);
    if (text == NULL) {
        return PLINTH_LC_NONE;
    }

    len = xmlStrlen(text);
    v = (len == 0 || len > 9) ? PLINTH_LC_NONE : 0;

    for (i = 0; v != PLINTH_LC_NONE && i < len; i++) {
        if (text[i] < '0' || text[i] > '9') {
            v = PLINTH_LC_NONE;
            break;
        }
        v = v * 10 + (text[i] - '0');
    }

    xmlFree(text);

    return v;
}


/* The text of the one element n, or NULL (with *dup set) when repeated. */
static xmlChar *
plinth_lc_text(xmlNodePtr n, xmlChar *had, unsigned *dup)
{
    if (had) {
        *dup = 1;
        return had;
    }

    return xmlNodeGetContent(n);
}


/* v in decimal (v >= 0, at most 9 digits) */
static unsigned char *
plinth_lc_decimal(unsigned char *p, long v)
{
    unsigned char  tmp[24], *t;

    t = tmp + sizeof(tmp);

    do {
        *--t = (unsigned char) ('0' + v % 10);
        v /= 10;
    } while (v);

    while (t < tmp + sizeof(tmp)) {
        *p++ = *t++;
    }

    return p;
}


plinth_parse_err_e
plinth_lifecycle_parse(const unsigned char *xml, size_t len, int options,
    plinth_parse_alloc_pt alloc, void *ctx, char *arrays[PLINTH_LC_ARRAYS],
    const char **message)
{
    unsigned char     *p[PLINTH_LC_ARRAYS];
    size_t              size, nrules, i, j, k;
    xmlChar            *text, *cls;
    xmlDocPtr           doc;
    xmlNodePtr          root, rule, n, m;
    long                days, *slot, maxt;
    unsigned            dup, status, filter, action;
    plinth_parse_err_e  err;
    plinth_lc_rule_t   *rules, *ru;

    *message = NULL;

    /* not well-formed, or with a DTD (ngx_plinth_xmlread.h) */
    doc = plinth_xml_read(xml, len, options, NULL);
    if (doc == NULL) {
        return PLINTH_PARSE_MALFORMED_XML;
    }

    err = PLINTH_PARSE_MALFORMED_XML;
    rules = NULL;
    nrules = 0;

    root = xmlDocGetRootElement(doc);
    if (root == NULL || !plinth_xml_is(root, "LifecycleConfiguration")) {
        goto failed;
    }

    for (n = root->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) {
            continue;
        }
        if (!plinth_xml_is(n, "Rule")) {
            goto failed;
        }
        nrules++;
    }

    if (nrules == 0 || nrules > PLINTH_LIFECYCLE_MAX_RULES) {
        goto failed;
    }

    rules = calloc(nrules, sizeof(plinth_lc_rule_t));
    if (rules == NULL) {
        err = PLINTH_PARSE_INTERNAL;
        goto failed;
    }

    i = 0;
    for (rule = root->children; rule; rule = rule->next) {
        if (rule->type != XML_ELEMENT_NODE) {
            continue;
        }

        ru = &rules[i++];
        ru->ia = ru->glacier = ru->deep = PLINTH_LC_NONE;
        ru->expire = ru->noncurrent = PLINTH_LC_NONE;
        dup = 0;
        status = 0;
        filter = 0;
        action = 0;

        for (n = rule->children; n; n = n->next) {
            if (n->type != XML_ELEMENT_NODE) {
                continue;
            }

            if (plinth_xml_is(n, "ID")) {
                ru->id = plinth_lc_text(n, ru->id, &dup);
                if (ru->id && xmlStrlen(ru->id) > 255) {
                    err = PLINTH_PARSE_INVALID_ARGUMENT;
                    *message = "ID length should not exceed allowed limit "
                               "of 255";
                    goto failed;
                }

            } else if (plinth_xml_is(n, "Status")) {
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

            } else if (plinth_xml_is(n, "Prefix")) {
                /* the legacy form: Prefix directly in the Rule */
                if (filter++) {
                    goto failed;
                }
                ru->prefix = xmlNodeGetContent(n);

            } else if (plinth_xml_is(n, "Filter")) {
                if (filter++) {
                    goto failed;
                }
                for (m = n->children; m; m = m->next) {
                    if (m->type != XML_ELEMENT_NODE) {
                        continue;
                    }
                    if (plinth_xml_is(m, "Prefix")) {
                        ru->prefix = plinth_lc_text(m, ru->prefix, &dup);
                    } else if (plinth_xml_is(m, "Tag")
                               || plinth_xml_is(m, "And")
                               || plinth_xml_is(m, "ObjectSizeGreaterThan")
                               || plinth_xml_is(m, "ObjectSizeLessThan"))
                    {
                        err = PLINTH_PARSE_NOT_IMPLEMENTED;
                        *message = "Lifecycle filters other than Prefix "
                                   "are not supported.";
                        goto failed;
                    } else {
                        goto failed;
                    }
                }

            } else if (plinth_xml_is(n, "Transition")) {
                action = 1;
                days = PLINTH_LC_NONE;
                cls = NULL;
                k = 0;
                for (m = n->children; m; m = m->next) {
                    if (m->type != XML_ELEMENT_NODE) {
                        continue;
                    }
                    if (plinth_xml_is(m, "Days")) {
                        if (k++) {
                            goto failed_cls;
                        }
                        days = plinth_lc_days(m);
                        if (days == PLINTH_LC_NONE) {
                            err = PLINTH_PARSE_INVALID_ARGUMENT;
                            *message = "'Days' for Transition action must "
                                       "be a nonnegative integer";
                            goto failed_cls;
                        }
                    } else if (plinth_xml_is(m, "StorageClass")) {
                        cls = plinth_lc_text(m, cls, &dup);
                    } else if (plinth_xml_is(m, "Date")) {
                        err = PLINTH_PARSE_NOT_IMPLEMENTED;
                        *message = "Transition by Date is not supported; "
                                   "use Days.";
                        goto failed_cls;
                    } else {
                        goto failed_cls;
                    }
                }
                if (days == PLINTH_LC_NONE || cls == NULL || dup) {
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
                    err = PLINTH_PARSE_INVALID_ARGUMENT;
                    *message = "'StorageClass' of a Transition must be "
                               "different from STANDARD";
                    goto failed_cls;
                } else {
                    err = PLINTH_PARSE_INVALID_STORAGE_CLASS;
                    goto failed_cls;
                }
                xmlFree(cls);
                if (*slot != PLINTH_LC_NONE) {
                    err = PLINTH_PARSE_INVALID_ARGUMENT;
                    *message = "'StorageClass' must be different for "
                               "'Transition' actions in same 'Rule'";
                    goto failed;
                }
                *slot = days;
                continue;

            failed_cls:
                xmlFree(cls);
                goto failed;

            } else if (plinth_xml_is(n, "Expiration")) {
                if (ru->expire != PLINTH_LC_NONE) {
                    goto failed;
                }
                action = 1;
                for (m = n->children; m; m = m->next) {
                    if (m->type != XML_ELEMENT_NODE) {
                        continue;
                    }
                    if (plinth_xml_is(m, "Days")
                        && ru->expire == PLINTH_LC_NONE)
                    {
                        ru->expire = plinth_lc_days(m);
                        if (ru->expire <= 0) {
                            err = PLINTH_PARSE_INVALID_ARGUMENT;
                            *message = "'Days' for Expiration action must "
                                       "be a positive integer";
                            goto failed;
                        }
                    } else if (plinth_xml_is(m, "Date")
                               || plinth_xml_is(m,
                                      "ExpiredObjectDeleteMarker"))
                    {
                        err = PLINTH_PARSE_NOT_IMPLEMENTED;
                        *message = "Expiration supports Days only.";
                        goto failed;
                    } else {
                        goto failed;
                    }
                }
                if (ru->expire == PLINTH_LC_NONE) {
                    goto failed;
                }

            } else if (plinth_xml_is(n, "NoncurrentVersionExpiration")) {
                if (ru->noncurrent != PLINTH_LC_NONE) {
                    goto failed;
                }
                action = 1;
                for (m = n->children; m; m = m->next) {
                    if (m->type != XML_ELEMENT_NODE) {
                        continue;
                    }
                    if (plinth_xml_is(m, "NoncurrentDays")
                        && ru->noncurrent == PLINTH_LC_NONE)
                    {
                        ru->noncurrent = plinth_lc_days(m);
                        if (ru->noncurrent <= 0) {
                            err = PLINTH_PARSE_INVALID_ARGUMENT;
                            *message = "'NoncurrentDays' for "
                                       "NoncurrentVersionExpiration action "
                                       "must be a positive integer";
                            goto failed;
                        }
                    } else if (plinth_xml_is(m, "NewerNoncurrentVersions")) {
                        err = PLINTH_PARSE_NOT_IMPLEMENTED;
                        *message = "NewerNoncurrentVersions is not "
                                   "supported.";
                        goto failed;
                    } else {
                        goto failed;
                    }
                }
                if (ru->noncurrent == PLINTH_LC_NONE) {
                    goto failed;
                }

            } else if (plinth_xml_is(n, "NoncurrentVersionTransition")
                       || plinth_xml_is(n, "AbortIncompleteMultipartUpload"))
            {
                err = PLINTH_PARSE_NOT_IMPLEMENTED;
                *message = "Lifecycle actions other than Transition, "
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
            err = PLINTH_PARSE_INVALID_REQUEST;
            *message = "At least one action needs to be specified in a rule";
            goto failed;
        }

        /* deeper classes later; expiration after every transition */
        maxt = PLINTH_LC_NONE;
        if ((ru->ia != PLINTH_LC_NONE && ru->glacier != PLINTH_LC_NONE
             && ru->glacier <= ru->ia)
            || (ru->ia != PLINTH_LC_NONE && ru->deep != PLINTH_LC_NONE
                && ru->deep <= ru->ia)
            || (ru->glacier != PLINTH_LC_NONE && ru->deep != PLINTH_LC_NONE
                && ru->deep <= ru->glacier))
        {
            err = PLINTH_PARSE_INVALID_ARGUMENT;
            *message = "'Days' of a Transition to a colder class must be "
                       "greater than those of a Transition to a warmer one";
            goto failed;
        }
        if (ru->ia > maxt) {
            maxt = ru->ia;
        }
        if (ru->glacier > maxt) {
            maxt = ru->glacier;
        }
        if (ru->deep > maxt) {
            maxt = ru->deep;
        }
        if (ru->expire != PLINTH_LC_NONE && maxt >= ru->expire) {
            err = PLINTH_PARSE_INVALID_ARGUMENT;
            *message = "'Days' in the Expiration action must be greater "
                       "than 'Days' in the Transition action";
            goto failed;
        }
    }

    /* IDs are unique within the configuration */
    for (i = 0; i < nrules; i++) {
        for (j = i + 1; rules[i].id && j < nrules; j++) {
            if (rules[j].id && xmlStrcmp(rules[i].id, rules[j].id) == 0) {
                err = PLINTH_PARSE_INVALID_ARGUMENT;
                *message = "Rule ID must be unique. Found same ID for more "
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
    for (k = 0; k < PLINTH_LC_ARRAYS; k++) {
        p[k] = alloc(ctx, (k < 2 ? size : 12 * nrules) + 3);
        if (p[k] == NULL) {
            err = PLINTH_PARSE_INTERNAL;
            goto failed;
        }
        arrays[k] = (char *) p[k];
        *p[k]++ = '{';
    }

    for (i = 0; i < nrules; i++) {
        ru = &rules[i];
        if (i) {
            for (k = 0; k < PLINTH_LC_ARRAYS; k++) {
                *p[k]++ = ',';
            }
        }
        if (ru->id) {
            p[0] = plinth_pg_array_elem(p[0], ru->id, xmlStrlen(ru->id));
        } else {
            memcpy(p[0], "NULL", 4);
            p[0] += 4;
        }
        p[1] = plinth_pg_array_elem(p[1],
                                    ru->prefix ? ru->prefix
                                               : (xmlChar *) "",
                                    ru->prefix ? xmlStrlen(ru->prefix) : 0);
        *p[2]++ = ru->enabled ? 't' : 'f';
        for (k = 3; k < PLINTH_LC_ARRAYS; k++) {
            days = (k == 3) ? ru->ia : (k == 4) ? ru->glacier
                 : (k == 5) ? ru->deep : (k == 6) ? ru->expire
                 : ru->noncurrent;
            if (days == PLINTH_LC_NONE) {
                memcpy(p[k], "NULL", 4);
                p[k] += 4;
            } else {
                p[k] = plinth_lc_decimal(p[k], days);
            }
        }
    }

    for (k = 0; k < PLINTH_LC_ARRAYS; k++) {
        *p[k]++ = '}';
        *p[k] = '\0';
    }

    for (i = 0; i < nrules; i++) {
        xmlFree(rules[i].id);
        xmlFree(rules[i].prefix);
    }
    free(rules);
    xmlFreeDoc(doc);

    return PLINTH_PARSE_OK;

failed:

    for (i = 0; rules && i < nrules; i++) {
        xmlFree(rules[i].id);
        xmlFree(rules[i].prefix);
    }
    free(rules);
    xmlFreeDoc(doc);

    return err;
}
