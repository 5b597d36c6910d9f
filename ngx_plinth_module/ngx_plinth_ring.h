/*
 * Plinth placement: a consistent-hash ring with virtual nodes.
 *
 * Pure code: no nginx headers, no I/O, no global state, so the gateway,
 * repaird and the unit tests all compute the same placement for a key.
 * Memory comes from a caller-supplied allocator (nginx passes its
 * configuration pool; tests and daemons pass a malloc wrapper); a ring is
 * read-only after plinth_ring_create() and safe to share between threads.
 *
 * The hash formula (XXH3-64 of "<node id>#<vnode index>" for points,
 * XXH3-64 of the key bytes for lookups) is part of the on-disk contract:
 * changing it moves every object, so it is frozen.
 */

#ifndef PLINTH_RING_H
#define PLINTH_RING_H

#include <stddef.h>
#include <stdint.h>

typedef void *(*plinth_ring_alloc_pt)(void *ctx, size_t size);

typedef struct {
    uint32_t     id;        /* stable node id (PostgreSQL placement uses it) */
    uint32_t     weight;    /* relative capacity, >= 1 */
    const char  *zone;      /* failure domain; NULL or "" = none */
    const char  *tier;      /* "hot", "warm", "cold"; NULL = "hot" */
} plinth_ring_node_t;

typedef struct plinth_ring_s  plinth_ring_t;

/*
 * Builds a ring of n nodes with vnodes_per_weight virtual points per unit of
 * weight (0 = default 128). Copies what it needs from nodes (strings too).
 * Returns NULL on allocation failure or invalid input (n == 0, duplicate id,
 * weight 0).
 */
plinth_ring_t *plinth_ring_create(const plinth_ring_node_t *nodes, size_t n,
    unsigned vnodes_per_weight, plinth_ring_alloc_pt alloc, void *ctx);

/*
 * Writes up to rf distinct node ids for the key to out[], in preference
 * order: walk clockwise from hash(key), first taking nodes of distinct
 * zones, then (if rf is not yet reached) any distinct node. Nodes whose
 * tier differs from tier (when tier is not NULL) and nodes whose ids are
 * in exclude[0..nexclude) are skipped. Returns the number written (< rf
 * when not enough nodes qualify). Deterministic for a given node list.
 */
size_t plinth_ring_lookup(const plinth_ring_t *ring, const void *key,
    size_t len, const char *tier, const uint32_t *exclude, size_t nexclude,
    size_t rf, uint32_t *out);

/*
 * The tier writes of tier go to: tier itself when some node has it, else
 * the next hotter tier that has nodes (cold -> warm -> hot; NULL or ""
 * means hot), else NULL (any node). So a cluster file without tiers (all
 * hot) keeps every class working, on its hot nodes.
 */
const char *plinth_ring_tier_or_hotter(const plinth_ring_t *ring,
    const char *tier);

/* Number of nodes in the ring. */
size_t plinth_ring_nodes(const plinth_ring_t *ring);

#endif /* PLINTH_RING_H */
