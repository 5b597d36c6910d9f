/*
 * config.c -- repaird's configuration (a flat YAML mapping) and the
 * cluster file (the same file the gateways read).
 *
 *     pg: "host=127.0.0.1 port=5432 dbname=plinth user=plinth"   required
 *     cluster: /etc/plinth/cluster.yaml                           required
 *     listen: 127.0.0.1:9190      /metrics; optional
 *     instance: repaird-a         name in logs; default host:pid
 *     pid_file: /run/plinth-repaird.pid
 *     log_level: info             debug | info | warn | error
 *     replication_factor: 3       as the gateways' plinth_replication_factor
 *     health_interval: 5s         probe every data node this often
 *     probe_timeout: 2s
 *     offline_after: 30s          silence after which a node is offline
 *     lock_retry: 5s              a standby retries the lock this often
 *     repair_interval: 60s        full repair pass this often
 *     repair_batch: 500           blobs per repair step
 *     repair_rate: 50             copies per second (0: unlimited)
 *     scrub_interval: 5m          a full scrub of every node this often (0: off)
 *     scrub_batch: 100            blobs verified per scrub request
 *     scrub_grace: 60s            blobs younger than this are not "missing"
 *     http_timeout: 60s           one pull or scrub request
 *     gc_interval: 60s            garbage collection step this often (0: off)
 *     gc_grace: 1h                dead versions and garbage_blobs rows wait this long
 *     pending_grace: 24h          a write pending this long never commits
 *     upload_max_age: 7d          open multipart uploads older are aborted
 *     orphan_grace: 24h           blob files nothing names, older than this, go
 *     gc_batch: 500               versions or garbage rows per step
 *     rebalance_interval: 60s     a rebalancing pass this often (0: off)
 *     rebalance_rate: 10          copies per second for moves (0: unlimited)
 *     lifecycle_interval: 1h      lifecycle and access-tiering pass (0: off);
 *                                 tier moves copy at rebalance_rate
 *     lifecycle_day_seconds: 86400  the length of a rule's "day" (for tests)
 *
 * Durations: a number of seconds, or with a unit: 250ms, 5s, 2m, 1h, 7d.
 * Unknown keys, repeated keys and bad values are errors naming the line.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "repaird.h"


static int
rd_duration(const char *v, double *out)
{
    char    *end;
    double   d;

    errno = 0;
    d = strtod(v, &end);
    if (end == v || errno != 0 || d < 0 || !isfinite(d)) {
        return -1;
    }
    if (strcmp(end, "") == 0 || strcmp(end, "s") == 0) {
        /* seconds */
    } else if (strcmp(end, "ms") == 0) {
        d /= 1000;
    } else if (strcmp(end, "m") == 0) {
        d *= 60;
    } else if (strcmp(end, "h") == 0) {
        d *= 3600;
    } else if (strcmp(end, "d") == 0) {
        d *= 86400;
    } else {
        return -1;
    }
    if (d > 86400 * 365) {
        return -1;
    }
    *out = d;
    return 0;
}


static int
rd_uint(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
    char                *end;
    unsigned long long   n;

    if (v[0] < '0' || v[0] > '9') {
        return -1;
    }
    errno = 0;
    n = strtoull(v, &end, 10);
    if (*end != '\0' || errno != 0 || n < min || n > max) {
        return -1;
    }
    *out = n;
    return 0;
}


static int
rd_doc_load(const char *path, yaml_document_t *doc, char *err, size_t len)
{
    FILE           *f;
    yaml_parser_t   parser;
    int             rc = 0;

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, len, "cannot open \"%s\": %s", path, strerror(errno));
        return -1;
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        snprintf(err, len, "cannot initialize the YAML parser");
        return -1;
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, doc)) {
        snprintf(err, len, "%s, line %zu: %s", path,
                 parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "invalid YAML");
        rc = -1;
    } else if (yaml_document_get_root_node(doc) == NULL) {
        snprintf(err, len, "%s: empty file", path);
        yaml_document_delete(doc);
        rc = -1;
    }
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}


int
rd_config_load(const char *path, rd_config *cf, char *err, size_t len)
{
    yaml_document_t    doc;
    yaml_node_t       *root, *k, *v;
    yaml_node_pair_t  *p, *q;
    const char        *key, *val;
    uint64_t           n;
    double             d;
    int                rc = -1;
    size_t             line;
    char             **str;

    memset(cf, 0, sizeof(*cf));
    cf->log_level = RD_LOG_INFO;
    cf->rf = 3;
    cf->health_interval = 5;
    cf->probe_timeout = 2;
    cf->offline_after = 30;
    cf->lock_retry = 5;
    cf->repair_interval = 60;
    cf->repair_batch = 500;
    cf->repair_rate = 50;
    cf->scrub_interval = 300;
    cf->scrub_batch = 100;
    cf->scrub_grace = 60;
    cf->http_timeout = 60;
    cf->gc_interval = 60;
    cf->gc_grace = 3600;
    cf->pending_grace = 86400;
    cf->upload_max_age = 7 * 86400;
    cf->orphan_grace = 86400;
    cf->gc_batch = 500;
    cf->rebalance_interval = 60;
    cf->rebalance_rate = 10;
    cf->lifecycle_interval = 3600;
    cf->lifecycle_day_seconds = 86400;

    if (rd_doc_load(path, &doc, err, len) != 0) {
        return -1;
    }
    root = yaml_document_get_root_node(&doc);
    if (root->type != YAML_MAPPING_NODE) {
        snprintf(err, len, "%s: the top level must be a mapping", path);
        goto done;
    }

    for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++)
    {
        k = yaml_document_get_node(&doc, p->key);
        v = yaml_document_get_node(&doc, p->value);
        line = k->start_mark.line + 1;
        if (k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE) {
            snprintf(err, len, "%s, line %zu: keys and values must be "
                     "scalars", path, line);
            goto done;
        }
        key = (const char *) k->data.scalar.value;
        val = (const char *) v->data.scalar.value;
        for (q = root->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = yaml_document_get_node(&doc, q->key);
            if (strcmp((const char *) k2->data.scalar.value, key) == 0) {
                snprintf(err, len, "%s, line %zu: \"%s\" repeated", path,
                         line, key);
                goto done;
            }
        }

        str = NULL;
        if (strcmp(key, "pg") == 0) {
            str = &cf->pg;
        } else if (strcmp(key, "cluster") == 0) {
            str = &cf->cluster;
        } else if (strcmp(key, "listen") == 0) {
            str = &cf->listen;
        } else if (strcmp(key, "instance") == 0) {
            str = &cf->instance;
        } else if (strcmp(key, "pid_file") == 0) {
            str = &cf->pid_file;
        } else if (strcmp(key, "cluster_secret_file") == 0) {
            str = &cf->cluster_secret_file;
        } else if (strcmp(key, "tls_ca") == 0) {
            str = &cf->tls_ca;
        }
        if (str != NULL) {
            if (val[0] == '\0') {
                continue;           /* empty: the default */
            }
            *str = strdup(val);
            if (*str == NULL) {
                snprintf(err, len, "out of memory");
                goto done;
            }
            continue;
        }

        if (strcmp(key, "log_level") == 0) {
            cf->log_level = rd_log_level_parse(val);
            if (cf->log_level < 0) {
                goto bad;
            }
        } else if (strcmp(key, "replication_factor") == 0) {
            if (rd_uint(val, 1, RD_MAX_RF, &n) != 0) {
                goto bad;
            }
            cf->rf = (uint32_t) n;
        } else if (strcmp(key, "repair_batch") == 0) {
            if (rd_uint(val, 1, 100000, &n) != 0) {
                goto bad;
            }
            cf->repair_batch = (uint32_t) n;
        } else if (strcmp(key, "gc_batch") == 0) {
            if (rd_uint(val, 1, 100000, &n) != 0) {
                goto bad;
            }
            cf->gc_batch = (uint32_t) n;
        } else if (strcmp(key, "scrub_batch") == 0) {
            if (rd_uint(val, 1, 10000, &n) != 0) {
                goto bad;
            }
            cf->scrub_batch = (uint32_t) n;
        } else if (strcmp(key, "repair_rate") == 0
                   || strcmp(key, "rebalance_rate") == 0)
        {
            char *end;
            d = strtod(val, &end);
            if (end == val || *end != '\0' || d < 0 || !isfinite(d)) {
                goto bad;
            }
            if (strcmp(key, "repair_rate") == 0) {
                cf->repair_rate = d;
            } else {
                cf->rebalance_rate = d;
            }
        } else {
            double *dp = NULL;
            double  min = 0.01;
            if (strcmp(key, "health_interval") == 0) {
                dp = &cf->health_interval;
            } else if (strcmp(key, "probe_timeout") == 0) {
                dp = &cf->probe_timeout;
            } else if (strcmp(key, "offline_after") == 0) {
                dp = &cf->offline_after;
            } else if (strcmp(key, "lock_retry") == 0) {
                dp = &cf->lock_retry;
            } else if (strcmp(key, "repair_interval") == 0) {
                dp = &cf->repair_interval;
            } else if (strcmp(key, "scrub_interval") == 0) {
                dp = &cf->scrub_interval;
                min = 0;
            } else if (strcmp(key, "scrub_grace") == 0) {
                dp = &cf->scrub_grace;
                min = 0;
            } else if (strcmp(key, "http_timeout") == 0) {
                dp = &cf->http_timeout;
            } else if (strcmp(key, "gc_interval") == 0) {
                dp = &cf->gc_interval;
                min = 0;
            } else if (strcmp(key, "gc_grace") == 0) {
                dp = &cf->gc_grace;
                min = 0;
            } else if (strcmp(key, "pending_grace") == 0) {
                dp = &cf->pending_grace;
            } else if (strcmp(key, "upload_max_age") == 0) {
                dp = &cf->upload_max_age;
            } else if (strcmp(key, "orphan_grace") == 0) {
                dp = &cf->orphan_grace;
            } else if (strcmp(key, "rebalance_interval") == 0) {
                dp = &cf->rebalance_interval;
                min = 0;
            } else if (strcmp(key, "lifecycle_interval") == 0) {
                dp = &cf->lifecycle_interval;
                min = 0;
            } else if (strcmp(key, "lifecycle_day_seconds") == 0) {
                dp = &cf->lifecycle_day_seconds;
            }
            if (dp == NULL) {
                snprintf(err, len, "%s, line %zu: unknown key \"%s\"", path,
                         line, key);
                goto done;
            }
            if (rd_duration(val, &d) != 0 || (d < min && !(min == 0))) {
                goto bad;
            }
            *dp = d;
        }
        continue;

    bad:
        snprintf(err, len, "%s, line %zu: bad value \"%s\" for \"%s\"", path,
                 line, val, key);
        goto done;
    }

    if (cf->pg == NULL) {
        snprintf(err, len, "%s: \"pg\" is required", path);
        goto done;
    }
    if (cf->cluster == NULL) {
        snprintf(err, len, "%s: \"cluster\" is required", path);
        goto done;
    }
    if (cf->offline_after < cf->health_interval) {
        snprintf(err, len, "%s: offline_after must be at least "
                 "health_interval", path);
        goto done;
    }
    rc = 0;

done:
    yaml_document_delete(&doc);
    return rc;
}


void
rd_config_free(rd_config *cf)
{
    free(cf->pg);
    free(cf->cluster);
    free(cf->listen);
    free(cf->instance);
    free(cf->pid_file);
    free(cf->cluster_secret_file);
    free(cf->tls_ca);
    memset(cf, 0, sizeof(*cf));
}


/* nodes: [{id, address, zone, tier, weight}, ...] as the gateway reads it */
int
rd_cluster_load(const char *path, rd_node_conf **nodes, size_t *n,
    char *err, size_t len)
{
    yaml_document_t    doc;
    yaml_node_t       *root, *k, *v, *list = NULL, *item;
    yaml_node_pair_t  *p;
    yaml_node_item_t  *it;
    rd_node_conf      *all = NULL, *nd;
    size_t             cnt = 0, i, j;
    uint64_t           num;
    const char        *key, *val;
    int                rc = -1;

    *nodes = NULL;
    *n = 0;
    if (rd_doc_load(path, &doc, err, len) != 0) {
        return -1;
    }
    root = yaml_document_get_root_node(&doc);
    if (root->type != YAML_MAPPING_NODE) {
        snprintf(err, len, "%s: the top level must be a mapping with "
                 "\"nodes\"", path);
        goto done;
    }
    for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++)
    {
        k = yaml_document_get_node(&doc, p->key);
        if (k->type == YAML_SCALAR_NODE
            && strcmp((const char *) k->data.scalar.value, "nodes") == 0)
        {
            list = yaml_document_get_node(&doc, p->value);
            continue;
        }
        snprintf(err, len, "%s, line %zu: unknown key", path,
                 k->start_mark.line + 1);
        goto done;
    }
    if (list == NULL || list->type != YAML_SEQUENCE_NODE) {
        snprintf(err, len, "%s: \"nodes\" must be a list", path);
        goto done;
    }

    cnt = (size_t) (list->data.sequence.items.top
                    - list->data.sequence.items.start);
    if (cnt == 0 || cnt > RD_MAX_NODES) {
        snprintf(err, len, "%s: 1 to %d nodes", path, RD_MAX_NODES);
        goto done;
    }
    all = calloc(cnt, sizeof(*all));
    if (all == NULL) {
        snprintf(err, len, "out of memory");
        goto done;
    }

    i = 0;
    for (it = list->data.sequence.items.start;
         it < list->data.sequence.items.top; it++, i++)
    {
        item = yaml_document_get_node(&doc, *it);
        nd = &all[i];
        nd->weight = 1;
        if (item->type != YAML_MAPPING_NODE) {
            snprintf(err, len, "%s, line %zu: a node must be a mapping",
                     path, item->start_mark.line + 1);
            goto done;
        }
        for (p = item->data.mapping.pairs.start;
             p < item->data.mapping.pairs.top; p++)
        {
            k = yaml_document_get_node(&doc, p->key);
            v = yaml_document_get_node(&doc, p->value);
            if (k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE) {
                snprintf(err, len, "%s, line %zu: scalars expected", path,
                         k->start_mark.line + 1);
                goto done;
            }
            key = (const char *) k->data.scalar.value;
            val = (const char *) v->data.scalar.value;
            if (strcmp(key, "id") == 0) {
                if (rd_uint(val, 1, 65535, &num) != 0) {
                    goto bad;
                }
                nd->id = (uint32_t) num;
            } else if (strcmp(key, "weight") == 0) {
                if (rd_uint(val, 1, 1000, &num) != 0) {
                    goto bad;
                }
                nd->weight = (uint32_t) num;
            } else if (strcmp(key, "address") == 0) {
                free(nd->address);
                nd->address = strdup(val);
            } else if (strcmp(key, "zone") == 0) {
                free(nd->zone);
                nd->zone = strdup(val);
            } else if (strcmp(key, "tier") == 0) {
                free(nd->tier);
                nd->tier = strdup(val);
            } else {
                snprintf(err, len, "%s, line %zu: unknown key \"%s\"", path,
                         k->start_mark.line + 1, key);
                goto done;
            }
            continue;
        bad:
            snprintf(err, len, "%s, line %zu: bad value \"%s\" for \"%s\"",
                     path, k->start_mark.line + 1, val, key);
            goto done;
        }
        if (nd->id == 0 || nd->address == NULL) {
            snprintf(err, len, "%s, line %zu: a node needs id and address",
                     path, item->start_mark.line + 1);
            goto done;
        }
        for (j = 0; j < i; j++) {
            if (all[j].id == nd->id) {
                snprintf(err, len, "%s: node id %u repeated", path, nd->id);
                goto done;
            }
        }
    }

    *nodes = all;
    *n = cnt;
    all = NULL;
    rc = 0;

done:
    if (all != NULL) {
        rd_nodes_free(all, cnt);
    }
    yaml_document_delete(&doc);
    return rc;
}


void
rd_nodes_free(rd_node_conf *nodes, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        free(nodes[i].address);
        free(nodes[i].zone);
        free(nodes[i].tier);
    }
    free(nodes);
}
