/*
 * Cluster file parsing (libyaml's document API). The file is small (one
 * entry per data node) and read at configuration time only, never on the
 * request path. Unknown keys and bad values are errors, so a typo cannot
 * silently leave a node out of the ring.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <yaml.h>

#include "ngx_plinth_cluster.h"


static char *ngx_plinth_cluster_node(ngx_pool_t *pool, const char *name,
    yaml_document_t *doc, yaml_node_t *map, ngx_plinth_cluster_node_t *node);
static char *ngx_plinth_cluster_err(ngx_pool_t *pool, const char *name,
    yaml_node_t *n, const char *fmt, const char *arg);
static ngx_int_t ngx_plinth_cluster_scalar(ngx_pool_t *pool, yaml_node_t *n,
    ngx_str_t *out);


char *
ngx_plinth_cluster_load(ngx_pool_t *pool, ngx_str_t *path,
    ngx_array_t **nodes)
{
    FILE                       *f;
    char                       *err, *name;
    u_char                     *p;
    ngx_uint_t                  i, j;
    yaml_node_t                *root, *key, *val, *item;
    yaml_parser_t               parser;
    yaml_document_t             doc;
    yaml_node_pair_t           *pair;
    yaml_node_item_t           *it;
    ngx_plinth_cluster_node_t  *node, *all;

    name = (char *) ngx_pnalloc(pool, path->len + 1);
    if (name == NULL) {
        return "out of memory";
    }
    ngx_cpystrn((u_char *) name, path->data, path->len + 1);

    f = fopen(name, "r");
    if (f == NULL) {
        p = ngx_pnalloc(pool, path->len + 128);
        if (p == NULL) {
            return "out of memory";
        }
        ngx_sprintf(p, "cannot open cluster file \"%s\": %s%Z", name,
                    strerror(errno));
        return (char *) p;
    }

    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        return "cannot initialize the YAML parser";
    }

    yaml_parser_set_input_file(&parser, f);

    if (!yaml_parser_load(&parser, &doc)) {
        p = ngx_pnalloc(pool, path->len + 256);
        if (p != NULL) {
            ngx_sprintf(p, "cluster file \"%s\", line %uz: %s%Z", name,
                        parser.problem_mark.line + 1,
                        parser.problem ? parser.problem : "invalid YAML");
        }
        yaml_parser_delete(&parser);
        fclose(f);
        return p ? (char *) p : "out of memory";
    }

    err = NULL;
    *nodes = ngx_array_create(pool, 8, sizeof(ngx_plinth_cluster_node_t));
    if (*nodes == NULL) {
        err = "out of memory";
        goto done;
    }

    root = yaml_document_get_root_node(&doc);
    if (root == NULL || root->type != YAML_MAPPING_NODE) {
        err = "cluster file: the top level must be a mapping with \"nodes\"";
        goto done;
    }

    val = NULL;

    for (pair = root->data.mapping.pairs.start;
         pair < root->data.mapping.pairs.top;
         pair++)
    {
        key = yaml_document_get_node(&doc, pair->key);
        if (key->type == YAML_SCALAR_NODE
            && ngx_strcmp(key->data.scalar.value, "nodes") == 0)
        {
            val = yaml_document_get_node(&doc, pair->value);
            continue;
        }

        err = ngx_plinth_cluster_err(pool, name, key, "unknown key \"%s\"",
                  key->type == YAML_SCALAR_NODE
                  ? (char *) key->data.scalar.value : "?");
        goto done;
    }

    if (val == NULL || val->type != YAML_SEQUENCE_NODE) {
        err = "cluster file: \"nodes\" must be a list of nodes";
        goto done;
    }

    for (it = val->data.sequence.items.start;
         it < val->data.sequence.items.top;
         it++)
    {
        item = yaml_document_get_node(&doc, *it);

        node = ngx_array_push(*nodes);
        if (node == NULL) {
            err = "out of memory";
            goto done;
        }

        err = ngx_plinth_cluster_node(pool, name, &doc, item, node);
        if (err) {
            goto done;
        }
    }

    if ((*nodes)->nelts == 0) {
        err = "cluster file: no nodes";
        goto done;
    }

    all = (*nodes)->elts;

    for (i = 0; i < (*nodes)->nelts; i++) {
        for (j = i + 1; j < (*nodes)->nelts; j++) {
            if (all[i].id == all[j].id) {
                err = "cluster file: duplicate node id";
                goto done;
            }
        }
    }

done:

    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);

    return err;
}


static char *
ngx_plinth_cluster_node(ngx_pool_t *pool, const char *name,
    yaml_document_t *doc, yaml_node_t *map, ngx_plinth_cluster_node_t *node)
{
    ngx_int_t          n;
    ngx_str_t          v;
    yaml_node_t       *key, *val;
    yaml_node_pair_t  *pair;

    if (map->type != YAML_MAPPING_NODE) {
        return ngx_plinth_cluster_err(pool, name, map,
                                      "a node must be a mapping%s", "");
    }

    ngx_memzero(node, sizeof(ngx_plinth_cluster_node_t));
    node->weight = 1;
    ngx_str_set(&node->tier, "hot");

    for (pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top;
         pair++)
    {
        key = yaml_document_get_node(doc, pair->key);
        val = yaml_document_get_node(doc, pair->value);

        if (key->type != YAML_SCALAR_NODE) {
            return ngx_plinth_cluster_err(pool, name, key, "bad key%s", "");
        }

        if (ngx_plinth_cluster_scalar(pool, val, &v) != NGX_OK) {
            return ngx_plinth_cluster_err(pool, name, val,
                                          "\"%s\" must be a scalar",
                                          (char *) key->data.scalar.value);
        }

        if (ngx_strcmp(key->data.scalar.value, "id") == 0) {
            n = ngx_atoi(v.data, v.len);
            if (n <= 0 || n > 65535) {
                return ngx_plinth_cluster_err(pool, name, val,
                           "invalid node id \"%s\" (1..65535)",
                           (char *) v.data);
            }
            node->id = (uint32_t) n;

        } else if (ngx_strcmp(key->data.scalar.value, "address") == 0) {
            node->address = v;

        } else if (ngx_strcmp(key->data.scalar.value, "zone") == 0) {
            node->zone = v;

        } else if (ngx_strcmp(key->data.scalar.value, "tier") == 0) {
            if (ngx_strcmp(v.data, "hot") != 0
                && ngx_strcmp(v.data, "warm") != 0
                && ngx_strcmp(v.data, "cold") != 0)
            {
                return ngx_plinth_cluster_err(pool, name, val,
                           "invalid tier \"%s\" (hot, warm or cold)",
                           (char *) v.data);
            }
            node->tier = v;

        } else if (ngx_strcmp(key->data.scalar.value, "weight") == 0) {
            n = ngx_atoi(v.data, v.len);
            if (n <= 0 || n > 100000) {
                return ngx_plinth_cluster_err(pool, name, val,
                           "invalid weight \"%s\" (1..100000)",
                           (char *) v.data);
            }
            node->weight = (uint32_t) n;

        } else {
            return ngx_plinth_cluster_err(pool, name, key, "unknown node key \"%s\"",
                                          (char *) key->data.scalar.value);
        }
    }

    if (node->id == 0) {
        return ngx_plinth_cluster_err(pool, name, map, "a node has no id%s", "");
    }

    if (node->address.len == 0) {
        return ngx_plinth_cluster_err(pool, name, map,
                                      "a node has no address%s", "");
    }

    return NULL;
}


static ngx_int_t
ngx_plinth_cluster_scalar(ngx_pool_t *pool, yaml_node_t *n, ngx_str_t *out)
{
    if (n->type != YAML_SCALAR_NODE) {
        return NGX_ERROR;
    }

    out->len = n->data.scalar.length;
    out->data = ngx_pnalloc(pool, out->len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, n->data.scalar.value, out->len);
    out->data[out->len] = '\0';

    return NGX_OK;
}


static char *
ngx_plinth_cluster_err(ngx_pool_t *pool, const char *name, yaml_node_t *n,
    const char *fmt, const char *arg)
{
    u_char  *p, *last;

    p = ngx_pnalloc(pool, 512 + ngx_strlen(name));
    if (p == NULL) {
        return "out of memory";
    }

    last = ngx_snprintf(p, 400 + ngx_strlen(name),
                        "cluster file \"%s\", line %uz: ", name,
                        n->start_mark.line + 1);
    last = ngx_snprintf(last, 100, fmt, arg);
    *last = '\0';

    return (char *) p;
}
