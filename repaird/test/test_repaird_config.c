/*
 * Unit tests of repaird's configuration and cluster file parsing
 * (repaird/config.c): defaults, durations, errors naming the line.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repaird.h"

static int  failures, checks;

#define CHECK(cond, what)                                                   \
    do {                                                                    \
        checks++;                                                           \
        if (!(cond)) {                                                      \
            failures++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, what);  \
        }                                                                   \
    } while (0)

static char  path[64];

static void
write_file(const char *text)
{
    FILE  *f = fopen(path, "w");

    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static int
load(const char *text, rd_config *cf, char *err, size_t len)
{
    write_file(text);
    err[0] = '\0';
    return rd_config_load(path, cf, err, len);
}

int
main(void)
{
    rd_config      cf;
    rd_node_conf  *nodes;
    size_t         n;
    char           err[512];

    snprintf(path, sizeof(path), "/tmp/test_repaird_%d.yaml", (int) getpid());

    CHECK(load("pg: \"host=127.0.0.1\"\ncluster: /x.yaml\n", &cf, err,
               sizeof(err)) == 0, "minimal config loads");
    CHECK(cf.rf == 3 && cf.health_interval == 5 && cf.offline_after == 30
          && cf.repair_interval == 60 && cf.scrub_interval == 300
          && cf.gc_grace == 3600 && cf.upload_max_age == 7 * 86400
          && cf.rebalance_interval == 60 && cf.listen == NULL,
          "defaults");
    rd_config_free(&cf);

    CHECK(load("pg: a\ncluster: b\nhealth_interval: 250ms\noffline_after: 2m\n"
               "scrub_interval: 0\nrepair_rate: 0\nupload_max_age: 7d\n"
               "gc_grace: 1h\nreplication_factor: 2\n", &cf, err,
               sizeof(err)) == 0, "durations load");
    CHECK(cf.health_interval == 0.25 && cf.offline_after == 120
          && cf.scrub_interval == 0 && cf.repair_rate == 0
          && cf.upload_max_age == 604800 && cf.gc_grace == 3600
          && cf.rf == 2, "durations parsed");
    rd_config_free(&cf);

    CHECK(load("pg: a\ncluster: b\nbogus: 1\n", &cf, err, sizeof(err)) != 0
          && strstr(err, "line 3") && strstr(err, "bogus"),
          "unknown key named with its line");
    rd_config_free(&cf);
    CHECK(load("pg: a\ncluster: b\npg: c\n", &cf, err, sizeof(err)) != 0
          && strstr(err, "repeated"), "repeated key refused");
    rd_config_free(&cf);
    CHECK(load("pg: a\ncluster: b\nhealth_interval: 5 parsecs\n", &cf, err,
               sizeof(err)) != 0 && strstr(err, "bad value"),
          "bad duration refused");
    rd_config_free(&cf);
    CHECK(load("pg: a\ncluster: b\nreplication_factor: 0\n", &cf, err,
               sizeof(err)) != 0, "replication_factor 0 refused");
    rd_config_free(&cf);
    CHECK(load("cluster: b\n", &cf, err, sizeof(err)) != 0
          && strstr(err, "\"pg\" is required"), "pg required");
    rd_config_free(&cf);
    CHECK(load("pg: a\ncluster: b\nhealth_interval: 10s\noffline_after: 5s\n",
               &cf, err, sizeof(err)) != 0, "offline_after < health_interval "
          "refused");
    rd_config_free(&cf);

    write_file("nodes:\n  - id: 1\n    address: 127.0.0.1:9101\n"
               "    zone: z1\n  - id: 2\n    address: 127.0.0.1:9102\n"
               "    weight: 2\n    tier: warm\n");
    CHECK(rd_cluster_load(path, &nodes, &n, err, sizeof(err)) == 0 && n == 2
          && nodes[0].id == 1 && strcmp(nodes[0].zone, "z1") == 0
          && nodes[1].weight == 2 && strcmp(nodes[1].tier, "warm") == 0,
          "cluster file loads");
    if (n) {
        rd_nodes_free(nodes, n);
    }
    write_file("nodes:\n  - id: 1\n    address: a:1\n  - id: 1\n"
               "    address: b:2\n");
    CHECK(rd_cluster_load(path, &nodes, &n, err, sizeof(err)) != 0
          && strstr(err, "repeated"), "duplicate node id refused");
    write_file("nodes:\n  - id: 1\n");
    CHECK(rd_cluster_load(path, &nodes, &n, err, sizeof(err)) != 0,
          "node without address refused");
    write_file("nodes:\n  - id: 1\n    address: a:1\n    colour: red\n");
    CHECK(rd_cluster_load(path, &nodes, &n, err, sizeof(err)) != 0
          && strstr(err, "colour"), "unknown node key refused");

    unlink(path);
    printf("test_repaird_config: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
