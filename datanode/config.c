/*
 * config.c -- load the data node's YAML configuration (see config.h).
 *
 * The file is one YAML mapping of scalar keys to scalar values, loaded
 * with libyaml's document API. Options are rows of one table (name,
 * parser, field, bounds), the way redis's config.c keeps them; adding an
 * option is adding a row. Every error names the file, line, key and
 * value. Nothing here touches the disk beyond reading the file: data_dir
 * is checked and created by store.c.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "blockfile.h"
#include "config.h"
#include "log.h"

typedef struct plinth_dn_config_row_s  plinth_dn_config_row;

typedef const char *(*plinth_dn_config_set_pt)(plinth_dn_config *cf,
    const plinth_dn_config_row *row, const char *value);

struct plinth_dn_config_row_s {
    const char               *name;
    plinth_dn_config_set_pt   set;
    size_t                    offset;
    uint64_t                  min;
    uint64_t                  max;
    int                       required;
};

static const char *plinth_dn_config_set_uint(plinth_dn_config *cf,
    const plinth_dn_config_row *row, const char *value);
static const char *plinth_dn_config_set_size(plinth_dn_config *cf,
    const plinth_dn_config_row *row, const char *value);
static const char *plinth_dn_config_set_block(plinth_dn_config *cf,
    const plinth_dn_config_row *row, const char *value);
static const char *plinth_dn_config_set_path(plinth_dn_config *cf,
    const plinth_dn_config_row *row, const char *value);
static const char *plinth_dn_config_set_level(plinth_dn_config *cf,
    const plinth_dn_config_row *row, const char *value);
static const char *plinth_dn_config_set_listen(plinth_dn_config *cf,
    const plinth_dn_config_row *row, const char *value);
static const char *plinth_dn_config_set_bool(plinth_dn_config *cf,
    const plinth_dn_config_row *row, const char *value);
static int plinth_dn_config_parse_u64(const char *s, int suffix,
    uint64_t *out);
static int plinth_dn_config_pair(plinth_dn_config *cf, yaml_document_t *doc,
    yaml_node_pair_t *pair, unsigned *seen, const char *path,
    char *err, size_t errlen);
static int plinth_dn_config_mapping(plinth_dn_config *cf,
    yaml_document_t *doc, const char *path, char *err, size_t errlen);

#define PLINTH_DN_CF(field)  offsetof(plinth_dn_config, field)

static const plinth_dn_config_row  plinth_dn_config_rows[] = {
    { "node_id", plinth_dn_config_set_uint, PLINTH_DN_CF(node_id),
      1, UINT32_MAX, 1 },
    { "listen", plinth_dn_config_set_listen, PLINTH_DN_CF(listen), 0, 0, 1 },
    { "data_dir", plinth_dn_config_set_path, PLINTH_DN_CF(data_dir),
      0, 0, 1 },
    { "block_size", plinth_dn_config_set_block, PLINTH_DN_CF(block_size),
      BLOCKFILE_MIN_BLOCK, BLOCKFILE_MAX_BLOCK, 0 },
    { "capacity_bytes", plinth_dn_config_set_size,
      PLINTH_DN_CF(capacity_bytes), 0, UINT64_MAX, 0 },
    { "reserve_bytes", plinth_dn_config_set_size,
      PLINTH_DN_CF(reserve_bytes), 0, UINT64_MAX, 0 },
    { "log_level", plinth_dn_config_set_level, PLINTH_DN_CF(log_level),
      0, 0, 0 },
    { "pid_file", plinth_dn_config_set_path, PLINTH_DN_CF(pid_file), 0, 0, 0 },
    { "cluster_secret_file", plinth_dn_config_set_path,
      PLINTH_DN_CF(cluster_secret_file), 0, 0, 1 },
    { "tls_cert", plinth_dn_config_set_path, PLINTH_DN_CF(tls_cert), 0, 0, 0 },
    { "tls_key", plinth_dn_config_set_path, PLINTH_DN_CF(tls_key), 0, 0, 0 },
    { "tls_ca", plinth_dn_config_set_path, PLINTH_DN_CF(tls_ca), 0, 0, 0 },
    { "group_commit", plinth_dn_config_set_bool, PLINTH_DN_CF(group_commit),
      0, 0, 0 },
    { "send_rate_limit", plinth_dn_config_set_size,
      PLINTH_DN_CF(send_rate_limit), 0, UINT64_MAX, 0 },
};

#define PLINTH_DN_CONFIG_NROWS \
    (sizeof(plinth_dn_config_rows) / sizeof(plinth_dn_config_rows[0]))


/*
 * Load path into *cf (defaults first, then the file). Returns 0, or -1
 * with a one-line reason in err. On success the caller frees cf with
 * plinth_dn_config_free(); on failure cf holds nothing to free.
 */
int
plinth_dn_config_load(const char *path, plinth_dn_config *cf,
    char *err, size_t errlen)
{
    yaml_parser_t    parser;
    yaml_document_t  doc;
    FILE            *fp;
    int              rc;

    memset(cf, 0, sizeof(*cf));
    cf->block_size = 1024 * 1024;
    cf->log_level = PLINTH_DN_LOG_INFO;
    cf->group_commit = 0;

    fp = fopen(path, "re");
    if (fp == NULL) {
        snprintf(err, errlen, "cannot open \"%s\": %s", path, strerror(errno));
        return -1;
    }

    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    yaml_parser_set_input_file(&parser, fp);

    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s:%lu: YAML error: %s", path,
                 (unsigned long) parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "unknown");
        yaml_parser_delete(&parser);
        fclose(fp);
        return -1;
    }

    rc = plinth_dn_config_mapping(cf, &doc, path, err, errlen);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(fp);

    if (rc != 0) {
        plinth_dn_config_free(cf);
    }
    return rc;
}


void
plinth_dn_config_free(plinth_dn_config *cf)
{
    free(cf->listen);
    free(cf->data_dir);
    free(cf->pid_file);
    free(cf->cluster_secret_file);
    free(cf->tls_cert);
    free(cf->tls_key);
    free(cf->tls_ca);
    cf->listen = cf->data_dir = cf->pid_file = NULL;
    cf->cluster_secret_file = cf->tls_cert = cf->tls_key = cf->tls_ca = NULL;
}


/* Walk the top-level mapping, then check that required keys were seen. */
static int
plinth_dn_config_mapping(plinth_dn_config *cf, yaml_document_t *doc,
    const char *path, char *err, size_t errlen)
{
    yaml_node_t       *root;
    yaml_node_pair_t  *pair;
    unsigned           seen = 0;
    size_t             i;

    root = yaml_document_get_root_node(doc);
    if (root == NULL || root->type != YAML_MAPPING_NODE) {
        snprintf(err, errlen, "%s: expected a mapping of keys to values",
                 path);
        return -1;
    }

    for (pair = root->data.mapping.pairs.start;
         pair < root->data.mapping.pairs.top; pair++)
    {
        if (plinth_dn_config_pair(cf, doc, pair, &seen, path, err, errlen)
            != 0)
        {
            return -1;
        }
    }

    for (i = 0; i < PLINTH_DN_CONFIG_NROWS; i++) {
        if (plinth_dn_config_rows[i].required && !(seen & (1u << i))) {
            snprintf(err, errlen, "%s: missing required key \"%s\"", path,
                     plinth_dn_config_rows[i].name);
            return -1;
        }
    }

    /* TLS on the hop is all or nothing: a node that serves HTTPS pulls
     * from peers that serve HTTPS */
    if ((cf->tls_cert != NULL) != (cf->tls_key != NULL)
        || (cf->tls_cert != NULL) != (cf->tls_ca != NULL))
    {
        snprintf(err, errlen, "%s: tls_cert, tls_key and tls_ca go "
                 "together (all three, or none)", path);
        return -1;
    }
    return 0;
}


/* Apply one key: value pair through its table row. */
static int
plinth_dn_config_pair(plinth_dn_config *cf, yaml_document_t *doc,
    yaml_node_pair_t *pair, unsigned *seen, const char *path,
    char *err, size_t errlen)
{
    yaml_node_t  *k, *v;
    const char   *key, *value, *why;
    size_t        i;

    k = yaml_document_get_node(doc, pair->key);
    v = yaml_document_get_node(doc, pair->value);
    if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE) {
        snprintf(err, errlen, "%s: keys must be plain words", path);
        return -1;
    }

    key = (const char *) k->data.scalar.value;
    for (i = 0; i < PLINTH_DN_CONFIG_NROWS; i++) {
        if (strcmp(key, plinth_dn_config_rows[i].name) == 0) {
            break;
        }
    }

    if (i == PLINTH_DN_CONFIG_NROWS) {
        snprintf(err, errlen, "%s:%lu: unknown key \"%s\"", path,
                 (unsigned long) k->start_mark.line + 1, key);
        return -1;
    }
    if (*seen & (1u << i)) {
        snprintf(err, errlen, "%s:%lu: key \"%s\" given twice", path,
                 (unsigned long) k->start_mark.line + 1, key);
        return -1;
    }
    *seen |= 1u << i;

    if (v->type != YAML_SCALAR_NODE) {
        snprintf(err, errlen, "%s:%lu: key \"%s\": value must be a scalar",
                 path, (unsigned long) v->start_mark.line + 1, key);
        return -1;
    }

    value = (const char *) v->data.scalar.value;
    why = plinth_dn_config_rows[i].set(cf, &plinth_dn_config_rows[i], value);
    if (why != NULL) {
        snprintf(err, errlen, "%s:%lu: key \"%s\": bad value \"%s\": %s",
                 path, (unsigned long) v->start_mark.line + 1, key, value,
                 why);
        return -1;
    }
    return 0;
}


static const char *
plinth_dn_config_set_uint(plinth_dn_config *cf,
    const plinth_dn_config_row *row, const char *value)
{
    static char  why[64];    /* config is loaded by one thread only */
    uint64_t    *field = (uint64_t *) ((char *) cf + row->offset);
    uint64_t     n;

    if (plinth_dn_config_parse_u64(value, 0, &n) != 0
        || n < row->min || n > row->max)
    {
        snprintf(why, sizeof(why), "must be a whole number from %llu to %llu",
                 (unsigned long long) row->min, (unsigned long long) row->max);
        return why;
    }
    *field = n;
    return NULL;
}


static const char *
plinth_dn_config_set_size(plinth_dn_config *cf,
    const plinth_dn_config_row *row, const char *value)
{
    uint64_t  *field = (uint64_t *) ((char *) cf + row->offset);
    uint64_t   n;

    if (plinth_dn_config_parse_u64(value, 1, &n) != 0) {
        return "not a size (bytes, or a number with K, M, G or T)";
    }
    if (n < row->min || n > row->max) {
        return "out of range";
    }
    *field = n;
    return NULL;
}


static const char *
plinth_dn_config_set_block(plinth_dn_config *cf,
    const plinth_dn_config_row *row, const char *value)
{
    uint64_t  n;

    if (plinth_dn_config_parse_u64(value, 1, &n) != 0
        || !blockfile_block_size_valid(n))
    {
        return "must be a power of two from 4096 (4K) to 67108864 (64M)";
    }
    cf->block_size = n;
    return NULL;
}


static const char *
plinth_dn_config_set_path(plinth_dn_config *cf,
    const plinth_dn_config_row *row, const char *value)
{
    char  **field = (char **) ((char *) cf + row->offset);

    if (value[0] == '\0') {
        return "must not be empty";
    }
    if (strlen(value) > 3000) {
        return "path too long";
    }
    *field = strdup(value);
    return *field == NULL ? "out of memory" : NULL;
}


static const char *
plinth_dn_config_set_level(plinth_dn_config *cf,
    const plinth_dn_config_row *row, const char *value)
{
    int  level;

    level = plinth_dn_log_level_parse(value);
    if (level < 0) {
        return "must be one of debug, info, warn, error";
    }
    cf->log_level = (uint64_t) level;
    return NULL;
}


static const char *
plinth_dn_config_set_bool(plinth_dn_config *cf,
    const plinth_dn_config_row *row, const char *value)
{
    uint64_t  *field = (uint64_t *) ((char *) cf + row->offset);

    if (strcmp(value, "true") == 0) {
        *field = 1;
    } else if (strcmp(value, "false") == 0) {
        *field = 0;
    } else {
        return "must be true or false";
    }
    return NULL;
}


/* host:port, [v6]:port or *:port, resolved once with getaddrinfo(3). */
static const char *
plinth_dn_config_set_listen(plinth_dn_config *cf,
    const plinth_dn_config_row *row, const char *value)
{
    struct addrinfo   hints, *ai;
    char              host[256], *colon;
    const char       *port;
    uint64_t          n;
    size_t            len;

    colon = strrchr(value, ':');
    len = colon ? (size_t) (colon - value) : 0;
    if (colon == NULL || len == 0 || len >= sizeof(host)) {
        return "expected host:port";
    }
    port = colon + 1;
    if (plinth_dn_config_parse_u64(port, 0, &n) != 0 || n < 1 || n > 65535) {
        return "port must be 1 to 65535";
    }

    memcpy(host, value, len);
    host[len] = '\0';
    if (host[0] == '[' && host[len - 1] == ']') {
        memmove(host, host + 1, len - 2);
        host[len - 2] = '\0';
    }
    if (strcmp(host, "*") == 0) {
        strcpy(host, "0.0.0.0");
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL) {
        return "host does not resolve";
    }

    memcpy(&cf->listen_addr, ai->ai_addr, ai->ai_addrlen);
    cf->listen_addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);

    free(cf->listen);
    cf->listen = strdup(value);
    return cf->listen == NULL ? "out of memory" : NULL;
}


/* Decimal digits only, with an optional binary suffix when suffix != 0. */
static int
plinth_dn_config_parse_u64(const char *s, int suffix, uint64_t *out)
{
    static const char  *units[] = { "K", "M", "G", "T" };
    unsigned long long  n;
    char               *end;
    unsigned            i, shift = 0;

    if (*s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    n = strtoull(s, &end, 10);
    if (errno != 0) {
        return -1;
    }

    if (*end != '\0') {
        if (!suffix) {
            return -1;
        }
        for (i = 0; i < 4; i++) {
            if (strcasecmp(end, units[i]) == 0
                || (strncasecmp(end, units[i], 1) == 0
                    && strcasecmp(end + 1, "iB") == 0))
            {
                shift = 10 * (i + 1);
                break;
            }
        }
        if (shift == 0 || n > (UINT64_MAX >> shift)) {
            return -1;
        }
    }

    *out = (uint64_t) n << shift;
    return 0;
}
