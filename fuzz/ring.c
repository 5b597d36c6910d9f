/*
 * Fuzz target: the consistent-hash ring (ngx_plinth_ring.c): building a
 * ring from an arbitrary node list and looking up arbitrary keys.
 *
 * Input: vnodes per weight byte, node count byte, then per node 2 bytes
 * of id, a weight byte, a zone byte and a tier byte; then rf, a tier
 * choice, an exclude count and 2-byte excluded ids; the rest is the key.
 * Checked: create fails exactly on invalid input (duplicate id, weight
 * 0); a lookup returns at most rf distinct ids of nodes in the ring, none
 * excluded, all of the asked tier, the same ones twice in a row; with no
 * tier or exclusion it returns min(rf, nodes) ids.
 */

#include "fuzz.h"
#include "ngx_plinth_ring.h"


#define MAX_NODES  24
#define MAX_RF     12


typedef struct {
    void    *ptr[4096];
    size_t   n;
} arena_t;


static void *
arena_alloc(void *ctx, size_t size)
{
    arena_t  *a = ctx;
    void     *p;

    if (a->n == sizeof(a->ptr) / sizeof(a->ptr[0])) {
        return NULL;
    }

    p = malloc(size ? size : 1);
    if (p) {
        a->ptr[a->n++] = p;
    }

    return p;
}


/* NULL and "" both mean "hot", for a node and for a lookup */
static const char *
tier_name(const char *tier)
{
    return tier == NULL || tier[0] == '\0' ? "hot" : tier;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t               i, j, n, rf, nexclude, got, got2, valid;
    unsigned             vnodes;
    uint8_t              t;
    uint32_t             exclude[8], out[MAX_RF], out2[MAX_RF];
    const char          *tier;
    fuzz_in_t            in = { data, size };
    plinth_ring_t       *ring;
    plinth_ring_node_t   nodes[MAX_NODES];
    static arena_t       arena;

    static const char  *zones[] = { NULL, "", "a", "b", "c" };
    static const char  *tiers[] = { NULL, "hot", "warm", "cold", "" };

    vnodes = fuzz_u8(&in) % 17;
    n = fuzz_u8(&in) % (MAX_NODES + 1);
    valid = n > 0;

    for (i = 0; i < n; i++) {
        nodes[i].id = (uint32_t) fuzz_u64(&in, 2);
        nodes[i].weight = fuzz_u8(&in) % 5;
        t = fuzz_u8(&in);
        nodes[i].zone = zones[t % 5];
        nodes[i].tier = tiers[(t >> 4) % 5];

        if (nodes[i].weight == 0) {
            valid = 0;
        }

        for (j = 0; j < i; j++) {
            if (nodes[j].id == nodes[i].id) {
                valid = 0;
            }
        }
    }

    rf = fuzz_u8(&in) % (MAX_RF + 1);
    t = fuzz_u8(&in);
    tier = tiers[t % 5];
    nexclude = (t >> 4) % 9;

    for (i = 0; i < nexclude; i++) {
        exclude[i] = (uint32_t) fuzz_u64(&in, 2);
    }

    arena.n = 0;
    ring = plinth_ring_create(nodes, n, vnodes ? vnodes : 1, arena_alloc,
                              &arena);

    FUZZ_ASSERT((ring != NULL) == (valid != 0));

    if (ring != NULL) {
        FUZZ_ASSERT(plinth_ring_nodes(ring) == n);

        got = plinth_ring_lookup(ring, in.p, in.left, tier, exclude,
                                 nexclude, rf, out);
        got2 = plinth_ring_lookup(ring, in.p, in.left, tier, exclude,
                                  nexclude, rf, out2);

        FUZZ_ASSERT(got <= rf && got == got2);
        FUZZ_ASSERT(memcmp(out, out2, got * sizeof(uint32_t)) == 0);

        for (i = 0; i < got; i++) {
            for (j = 0; j < i; j++) {
                FUZZ_ASSERT(out[i] != out[j]);
            }

            for (j = 0; j < nexclude; j++) {
                FUZZ_ASSERT(out[i] != exclude[j]);
            }

            for (j = 0; j < n && nodes[j].id != out[i]; j++) { /* void */ }

            FUZZ_ASSERT(j < n);

            if (tier != NULL) {
                FUZZ_ASSERT(strcmp(tier_name(nodes[j].tier),
                                   tier_name(tier)) == 0);
            }
        }

        got = plinth_ring_lookup(ring, in.p, in.left, NULL, NULL, 0, rf, out);
        FUZZ_ASSERT(got == (rf < n ? rf : n));
    }

    for (i = 0; i < arena.n; i++) {
        free(arena.ptr[i]);
    }

    return 0;
}
