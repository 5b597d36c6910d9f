/*
 * Fuzz target: repaird's YAML configuration and the cluster file
 * (repaird/config.c: rd_config_load(), rd_cluster_load()), each input
 * loaded as both. A cluster file that loads is then built into the
 * placement ring as repaird does (ngx_plinth_ring.c) and one key looked up.
 * See config_shim.h for how the input becomes a file.
 */

#include "config_shim.h"
#include "repaird.h"


static void *
ring_alloc(void *ctx, size_t size)
{
    void  ***list = ctx;
    void   **p;

    /* a chain of blocks, each starting with a pointer to the previous */
    p = malloc(sizeof(void *) + (size ? size : 1));
    if (p == NULL) {
        return NULL;
    }

    p[0] = *list;
    *list = p;

    return p + 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                 err[512];
    size_t               n, i, got;
    uint32_t             out[RD_MAX_RF];
    void               **blocks, **next;
    const char          *path;
    rd_config            cf;
    rd_node_conf        *nodes;
    plinth_ring_t       *ring;
    plinth_ring_node_t  *rn;

    path = fuzz_config_file(data, size);

    /*
     * The caller frees cf after a failed load too (strings parsed before
     * the bad line are kept), as repaird/test/test_repaird_config.c does.
     */
    if (rd_config_load(path, &cf, err, sizeof(err)) == 0) {
        FUZZ_ASSERT(cf.pg != NULL && cf.cluster != NULL);
        FUZZ_ASSERT(cf.rf >= 1 && cf.rf <= RD_MAX_RF);
    } else {
        FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL);
    }
    rd_config_free(&cf);

    if (rd_cluster_load(path, &nodes, &n, err, sizeof(err)) != 0) {
        FUZZ_ASSERT(nodes == NULL && n == 0);
        return 0;
    }

    FUZZ_ASSERT(n >= 1 && n <= RD_MAX_NODES);

    rn = calloc(n, sizeof(plinth_ring_node_t));
    FUZZ_ASSERT(rn != NULL);

    for (i = 0; i < n; i++) {
        FUZZ_ASSERT(nodes[i].id >= 1 && nodes[i].address != NULL);
        rn[i].id = nodes[i].id;
        rn[i].weight = nodes[i].weight;
        rn[i].zone = nodes[i].zone;
        rn[i].tier = nodes[i].tier;
    }

    blocks = NULL;
    ring = plinth_ring_create(rn, n, 1, ring_alloc, &blocks);
    FUZZ_ASSERT(ring != NULL);

    got = plinth_ring_lookup(ring, "bucket/key", 10, NULL, NULL, 0, RD_MAX_RF,
                             out);
    FUZZ_ASSERT(got == (n < RD_MAX_RF ? n : RD_MAX_RF));

    while (blocks) {
        next = blocks[0];
        free(blocks);
        blocks = next;
    }

    free(rn);
    rd_nodes_free(nodes, n);

    return 0;
}
