/*
 * Batch GET's body (POST /{bucket}?batch) in pure C (libjansson, libxml2,
 * no nginx), so that fuzz/batch.c runs exactly the code the gateway runs.
 * ngx_plinth_s3_batch.c calls it with its pool and turns an error code
 * into its S3 answer.
 *
 * JSON:
 *   {"entries": [{"key": "a/1.jpg"},
 *                {"key": "b", "versionId": "...", "range": "bytes=0-99",
 *                 "name": "b.head", "bucket": "other-bucket"}, ...],
 *    "continueOnError": false}
 * or the same list as XML (libxml2, no network, no DTD so no entities):
 *   <Batch><ContinueOnError>true</ContinueOnError>
 *     <Entry><Key>k</Key><Bucket/><VersionId/><Range/><Name/></Entry>...
 *   </Batch>
 *
 * Malformed JSON, a wrong shape, no entries or more than 10,000: S3's
 * MalformedXML (as DeleteObjects answers); a key longer than max_key
 * bytes: KeyTooLongError; a bad version id or a range that does not parse:
 * InvalidArgument.
 */

#include <stdint.h>
#include <string.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "ngx_plinth_batch_parse.h"
#include "ngx_plinth_xmlread.h"


/* an entry's members, by index, in JSON and XML alike */
enum {
    PLINTH_BF_KEY = 0, PLINTH_BF_BUCKET, PLINTH_BF_VID,
    PLINTH_BF_NAME, PLINTH_BF_RANGE, PLINTH_BATCH_FIELDS
};

static const char  *plinth_batch_fields[] = {
    "key", "bucket", "versionId", "name", "range"
};

static const char  *plinth_batch_xml_fields[] = {
    "Key", "Bucket", "VersionId", "Name", "Range"
};


/* A copy of len bytes at s, NUL-terminated, in out; 0: no memory. */
static int
plinth_batch_copy(const plinth_batch_conf_t *conf, const void *s, size_t len,
    plinth_batch_str_t *out)
{
    out->len = len;
    out->data = conf->alloc(conf->ctx, len + 1);
    if (out->data == NULL) {
        return 0;
    }

    if (len) {
        memcpy(out->data, s, len);
    }
    out->data[len] = '\0';

    return 1;
}


/*
 * One entry from its members (data NULL: absent), validated; the error
 * when one is wrong.
 */
static plinth_parse_err_e
plinth_batch_fill(const plinth_batch_conf_t *conf, plinth_batch_item_t *e,
    plinth_batch_str_t *f, const char **message)
{
    e->ra = -1;
    e->rb = -1;

    if (f[PLINTH_BF_KEY].data == NULL || f[PLINTH_BF_KEY].len == 0) {
        *message = "Every entry needs a non-empty key.";
        return PLINTH_PARSE_MALFORMED_XML;
    }
    if (f[PLINTH_BF_KEY].len > conf->max_key) {
        *message = NULL;
        return PLINTH_PARSE_KEY_TOO_LONG;
    }
    e->key = f[PLINTH_BF_KEY];

    if (f[PLINTH_BF_BUCKET].data == NULL) {
        e->bucket.data = NULL;
        e->bucket.len = 0;
    } else if (f[PLINTH_BF_BUCKET].len == 0) {
        *message = "An entry's bucket must be a bucket name.";
        return PLINTH_PARSE_MALFORMED_XML;
    } else {
        e->bucket = f[PLINTH_BF_BUCKET];
    }

    if (f[PLINTH_BF_VID].data) {
        if (!conf->vid_valid(f[PLINTH_BF_VID].data, f[PLINTH_BF_VID].len)) {
            *message = "Invalid version id specified";
            return PLINTH_PARSE_INVALID_ARGUMENT;
        }
        e->vid = f[PLINTH_BF_VID];
    }

    if (f[PLINTH_BF_NAME].data == NULL) {
        e->name = e->key;
    } else if (f[PLINTH_BF_NAME].len == 0
               || f[PLINTH_BF_NAME].len > PLINTH_BATCH_MAX_NAME)
    {
        *message = "An entry's name must have 1 to 4096 bytes.";
        return PLINTH_PARSE_MALFORMED_XML;
    } else {
        e->name = f[PLINTH_BF_NAME];
    }

    if (f[PLINTH_BF_RANGE].data
        && !plinth_batch_range(f[PLINTH_BF_RANGE].data, f[PLINTH_BF_RANGE].len,
                               e))
    {
        *message = "A batch entry's range must be \"bytes=first-last\", "
                   "\"bytes=first-\" or \"bytes=-suffix\".";
        return PLINTH_PARSE_INVALID_ARGUMENT;
    }

    return PLINTH_PARSE_OK;
}


static plinth_parse_err_e
plinth_batch_parse_xml(const unsigned char *body, size_t len,
    const plinth_batch_conf_t *conf, plinth_batch_item_t **items, size_t *nitems,
    unsigned *continue_on_error, const char **message)
{
    size_t               n, i, f;
    xmlChar             *text;
    xmlDocPtr            doc;
    xmlNodePtr           root, node, fnode;
    plinth_batch_str_t   fields[PLINTH_BATCH_FIELDS];
    plinth_parse_err_e   ret, rc;
    plinth_batch_item_t *entries;

    /* not well-formed, or with a DTD (ngx_plinth_xmlread.h) */
    doc = plinth_xml_read(body, len, conf->xml_options, NULL);
    if (doc == NULL) {
        return PLINTH_PARSE_MALFORMED_XML;
    }

    ret = PLINTH_PARSE_MALFORMED_XML;
    root = xmlDocGetRootElement(doc);

    if (root == NULL || !plinth_xml_is(root, "Batch")) {
        goto done;
    }

    n = 0;
    for (node = root->children; node; node = node->next) {
        if (node->type != XML_ELEMENT_NODE) {
            continue;
        }
        if (plinth_xml_is(node, "Entry")) {
            n++;
        } else if (plinth_xml_is(node, "ContinueOnError")) {
            text = xmlNodeGetContent(node);
            if (text && xmlStrcmp(text, (xmlChar *) "true") == 0) {
                *continue_on_error = 1;
            } else if (text == NULL
                       || xmlStrcmp(text, (xmlChar *) "false") != 0)
            {
                xmlFree(text);
                goto done;
            }
            xmlFree(text);
        } else {
            goto done;
        }
    }

    if (n == 0 || n > PLINTH_BATCH_MAX_ENTRIES) {
        *message = "A batch has 1 to 10000 entries.";
        goto done;
    }

    entries = conf->alloc(conf->ctx, n * sizeof(plinth_batch_item_t));
    if (entries == NULL) {
        ret = PLINTH_PARSE_INTERNAL;
        goto done;
    }
    memset(entries, 0, n * sizeof(plinth_batch_item_t));

    i = 0;
    for (node = root->children; node; node = node->next) {
        if (node->type != XML_ELEMENT_NODE
            || !plinth_xml_is(node, "Entry"))
        {
            continue;
        }

        memset(fields, 0, sizeof(fields));

        for (fnode = node->children; fnode; fnode = fnode->next) {
            if (fnode->type != XML_ELEMENT_NODE) {
                continue;
            }

            for (f = 0; f < PLINTH_BATCH_FIELDS; f++) {
                if (plinth_xml_is(fnode, plinth_batch_xml_fields[f])) {
                    break;
                }
            }

            if (f == PLINTH_BATCH_FIELDS || fields[f].data) {
                goto done;
            }

            text = xmlNodeGetContent(fnode);
            if (!plinth_batch_copy(conf, text ? text : (xmlChar *) "",
                                   text ? (size_t) xmlStrlen(text) : 0,
                                   &fields[f]))
            {
                xmlFree(text);
                ret = PLINTH_PARSE_INTERNAL;
                goto done;
            }
            xmlFree(text);
        }

        rc = plinth_batch_fill(conf, &entries[i++], fields, message);
        if (rc != PLINTH_PARSE_OK) {
            ret = rc;
            goto done;
        }
    }

    *items = entries;
    *nitems = n;
    ret = PLINTH_PARSE_OK;

done:

    xmlFreeDoc(doc);
    return ret;
}


plinth_parse_err_e
plinth_batch_parse(const unsigned char *body, size_t len,
    const plinth_batch_conf_t *conf, plinth_batch_item_t **items, size_t *nitems,
    unsigned *continue_on_error, const char **message)
{
    size_t                n, i, f;
    json_t               *root, *list, *item, *coe, *value, *v;
    const char           *field;
    json_error_t          error;
    plinth_batch_str_t    fields[PLINTH_BATCH_FIELDS];
    plinth_parse_err_e    ret, rc;
    plinth_batch_item_t  *entries;

    *message = NULL;
    *items = NULL;
    *nitems = 0;
    *continue_on_error = 0;

    /* XML or JSON, by the first character that is not white space */
    for (i = 0; i < len
                && (body[i] == ' ' || body[i] == '\n'
                    || body[i] == '\r' || body[i] == '\t');
         i++)
    {
        /* void */
    }

    if (i < len && body[i] == '<') {
        return plinth_batch_parse_xml(body, len, conf, items, nitems,
                                      continue_on_error, message);
    }

    root = json_loadb((const char *) body, len, JSON_REJECT_DUPLICATES,
                      &error);
    if (root == NULL) {
        *message = "The batch request body is not valid JSON.";
        return PLINTH_PARSE_MALFORMED_XML;
    }

    ret = PLINTH_PARSE_MALFORMED_XML;

    if (!json_is_object(root)) {
        *message = "The batch request body must be a JSON object.";
        goto done;
    }

    json_object_foreach(root, field, value) {
        if (strcmp(field, "entries") != 0
            && strcmp(field, "continueOnError") != 0)
        {
            *message = "Unknown member in the batch request body.";
            goto done;
        }
    }

    coe = json_object_get(root, "continueOnError");
    if (coe && !json_is_boolean(coe)) {
        *message = "continueOnError must be true or false.";
        goto done;
    }
    *continue_on_error = (coe && json_is_true(coe));

    list = json_object_get(root, "entries");
    if (list == NULL || !json_is_array(list)) {
        *message = "The batch request body must have an \"entries\" array.";
        goto done;
    }

    n = json_array_size(list);
    if (n == 0 || n > PLINTH_BATCH_MAX_ENTRIES) {
        *message = "A batch has 1 to 10000 entries.";
        goto done;
    }

    entries = conf->alloc(conf->ctx, n * sizeof(plinth_batch_item_t));
    if (entries == NULL) {
        ret = PLINTH_PARSE_INTERNAL;
        goto done;
    }
    memset(entries, 0, n * sizeof(plinth_batch_item_t));

    json_array_foreach(list, i, item) {

        if (!json_is_object(item)) {
            *message = "Every entry must be a JSON object.";
            goto done;
        }

        json_object_foreach(item, field, value) {
            if (strcmp(field, "key") != 0
                && strcmp(field, "bucket") != 0
                && strcmp(field, "versionId") != 0
                && strcmp(field, "range") != 0
                && strcmp(field, "name") != 0)
            {
                *message = "Unknown member in a batch entry.";
                goto done;
            }
        }

        for (f = 0; f < PLINTH_BATCH_FIELDS; f++) {
            v = json_object_get(item, plinth_batch_fields[f]);
            if (v == NULL || json_is_null(v)) {
                fields[f].data = NULL;
                fields[f].len = 0;
                continue;
            }
            if (!json_is_string(v)) {
                *message = "Every member of a batch entry is a string.";
                goto done;
            }
            if (!plinth_batch_copy(conf, json_string_value(v),
                                   json_string_length(v), &fields[f]))
            {
                ret = PLINTH_PARSE_INTERNAL;
                goto done;
            }
        }

        rc = plinth_batch_fill(conf, &entries[i], fields, message);
        if (rc != PLINTH_PARSE_OK) {
            ret = rc;
            goto done;
        }
    }

    *items = entries;
    *nitems = n;
    ret = PLINTH_PARSE_OK;

done:

    json_decref(root);
    return ret;
}


int
plinth_batch_range(const unsigned char *s, size_t len, plinth_batch_item_t *e)
{
    const unsigned char  *p, *last;
    int64_t               a, b;

    p = s;
    last = p + len;

    if (len < 8 || strncmp((const char *) p, "bytes=", 6) != 0) {
        return 0;
    }

    p += 6;
    a = -1;
    b = -1;

    if (*p != '-') {
        for (a = 0; p < last && *p >= '0' && *p <= '9'; p++) {
            if (a >= (INT64_MAX - 9) / 10) {
                return 0;
            }
            a = a * 10 + (*p - '0');
        }
    }

    if (p == last || *p++ != '-') {
        return 0;
    }

    if (p < last) {
        for (b = 0; p < last && *p >= '0' && *p <= '9'; p++) {
            if (b >= (INT64_MAX - 9) / 10) {
                return 0;
            }
            b = b * 10 + (*p - '0');
        }
        if (p != last) {
            return 0;
        }
    }

    if (a < 0 && b < 0) {
        return 0;
    }

    if (a >= 0 && b >= 0 && b < a) {
        return 0;
    }

    e->ranged = 1;
    e->suffix = (a < 0);
    e->ra = a;
    e->rb = b;

    return 1;
}
