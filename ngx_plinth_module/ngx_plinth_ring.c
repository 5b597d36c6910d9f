/*
 * Plinth placement: the consistent-hash ring declared in ngx_plinth_ring.h.
 *
 * What it is. Every node puts weight * vnodes_per_weight points on a 64-bit
 * circle, point v of node id at XXH3-64("<id>#<v>"): id and v in decimal
 * without leading zeros, v counting from 0, no terminating NUL, seed 0.
 * Points are kept in one array sorted by hash (equal hashes by node id, so
 * the order never depends on the order of the caller's list). A key starts
 * at the first point whose hash is >= XXH3-64(key), wrapping to point 0,
 * and walks clockwise:
 *
 *   pass 1  takes each eligible node whose failure domain is not yet used;
 *   pass 2  restarts at the same point and takes any eligible node not yet
 *           taken, until rf nodes are found.
 *
 * Eligible means of the requested tier and not excluded. A node without a
 * zone (NULL or "") is a failure domain of its own: nothing says it shares
 * a fate with any other node. A node tier of NULL or "" means "hot", and so
 * does a requested tier of "".
 *
 * Workload. A ring is built once per configuration load (nginx reload,
 * repaird SIGHUP) and then read by every request, from any number of
 * threads, without locks. So creation may sort (O(P log P) for P points,
 * plus O(n * distinct zones) string compares for n nodes), while a lookup
 * never allocates: a binary search, then a walk that stops as soon as it
 * has all the nodes it can possibly get.
 *
 * Limits. At most 2^32 - 1 points in all (with the default 128 points per
 * unit of weight, 33 million units); more is refused like an allocation
 * failure. Memory is 16 bytes a point (128 KB for 64 nodes of weight 1)
 * plus a little per node, per distinct string and per (tier, zone) pair.
 * A lookup costs O(log P) for the search plus the walk, each point visited
 * costing O(rf + nexclude). Before walking, a lookup counts the nodes and
 * failure domains it can still find, so each pass stops once it has them
 * all (or rf) instead of going round the ring; that count is O(nexclude^2)
 * (repeated ids count once). It is skipped for more than
 * PLINTH_RING_EXACT_EXCLUDE (256) excluded ids, and the zone part of it
 * for more than PLINTH_RING_STACK_ZONES (64) zones; then a pass may walk
 * all P points when exclusions leave fewer nodes or zones than rf: still
 * correct, just slower. Exclusion lists are meant to be short (nodes down,
 * draining or full; a whole zone down is fine).
 *
 * Memory. Everything comes from the caller's allocator, which has no free:
 * the ring lives as long as whatever the allocator draws from (nginx: the
 * configuration pool). The allocator must return memory aligned for
 * uint64_t and pointers, as malloc() and ngx_palloc() do (ngx_pnalloc()
 * does not). If creation fails half-way, what was allocated stays with the
 * allocator.
 */


#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "ngx_plinth_ring.h"


#define PLINTH_RING_DEFAULT_VNODES  128
#define PLINTH_RING_MAX_POINTS      0xffffffffu
#define PLINTH_RING_NO_ZONE         0xffffffffu
#define PLINTH_RING_NO_ROW          ((size_t) -1)
#define PLINTH_RING_EXACT_EXCLUDE   256
#define PLINTH_RING_STACK_ZONES     64

/* "4294967295#4294967295" is 21 bytes */
#define PLINTH_RING_POINT_LEN       32


typedef struct {
    uint64_t     hash;
    uint32_t     node;          /* index into ring->nodes */
} plinth_ring_point_t;


typedef struct {
    uint32_t     id;
    uint32_t     weight;
    uint32_t     zone;          /* index into ring->zones, or NO_ZONE */
    uint32_t     tier;          /* index into ring->tiers */
} plinth_ring_member_t;


struct plinth_ring_s {
    plinth_ring_point_t   *points;      /* sorted by hash, then node */
    size_t                 npoints;
    plinth_ring_member_t  *nodes;       /* sorted by id */
    size_t                 nnodes;
    const char           **zones;       /* distinct zone names */
    size_t                 nzones;
    const char           **tiers;       /* distinct tier names */
    size_t                 ntiers;

    /*
     * Indexed by "row": a tier index, or ntiers for "any tier". How many
     * nodes, failure domains, and nodes of each zone (row * nzones + zone)
     * a lookup of that tier can find when nothing is excluded; they let a
     * walk stop early.
     */
    uint32_t              *row_nodes;
    uint32_t              *row_domains;
    uint32_t              *row_zone_nodes;
};


static int plinth_ring_intern(const char *s, const char **names, size_t *n,
    plinth_ring_alloc_pt alloc, void *ctx, uint32_t *index);
static void plinth_ring_count_rows(plinth_ring_t *ring);
static size_t plinth_ring_format(char *buf, uint32_t id, uint32_t vnode);
static int plinth_ring_cmp_members(const void *one, const void *two);
static int plinth_ring_cmp_points(const void *one, const void *two);
static size_t plinth_ring_row(const plinth_ring_t *ring, const char *tier);
static const plinth_ring_member_t *plinth_ring_member(
    const plinth_ring_t *ring, uint32_t id);
static void plinth_ring_available(const plinth_ring_t *ring, size_t row,
    const uint32_t *exclude, size_t nexclude, size_t *nodes,
    size_t *domains);
static const plinth_ring_member_t *plinth_ring_excluded(
    const plinth_ring_t *ring, size_t row, const uint32_t *exclude,
    size_t j);
static int plinth_ring_in(uint32_t id, const uint32_t *ids, size_t n);
static size_t plinth_ring_walk(const plinth_ring_t *ring, size_t start,
    size_t row, const uint32_t *exclude, size_t nexclude,
    int distinct_zones, size_t want, size_t k, uint32_t *out);


/*
 * Validates everything that needs no memory first, so that invalid input
 * costs the allocator nothing except for a duplicate id, which is found by
 * sorting the copy.
 */

plinth_ring_t *
plinth_ring_create(const plinth_ring_node_t *nodes, size_t n,
    unsigned vnodes_per_weight, plinth_ring_alloc_pt alloc, void *ctx)
{
    char                   buf[PLINTH_RING_POINT_LEN];
    size_t                 i, p, len;
    uint32_t               v, count;
    uint64_t               total;
    const char            *tier;
    plinth_ring_t         *ring;
    plinth_ring_member_t  *m;

    if (nodes == NULL || n == 0 || alloc == NULL) {
        return NULL;
    }

    if (vnodes_per_weight == 0) {
        vnodes_per_weight = PLINTH_RING_DEFAULT_VNODES;
    }

    total = 0;

    for (i = 0; i < n; i++) {
        if (nodes[i].weight == 0) {
            return NULL;
        }

        total += (uint64_t) nodes[i].weight * vnodes_per_weight;

        if (total > PLINTH_RING_MAX_POINTS
            || total > SIZE_MAX / sizeof(plinth_ring_point_t))
        {
            return NULL;
        }
    }

    ring = alloc(ctx, sizeof(plinth_ring_t));
    if (ring == NULL) {
        return NULL;
    }

    memset(ring, 0, sizeof(plinth_ring_t));

    ring->nnodes = n;
    ring->npoints = (size_t) total;

    ring->nodes = alloc(ctx, n * sizeof(plinth_ring_member_t));
    ring->zones = alloc(ctx, n * sizeof(const char *));
    ring->tiers = alloc(ctx, n * sizeof(const char *));

    if (ring->nodes == NULL || ring->zones == NULL || ring->tiers == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        m = &ring->nodes[i];

        m->id = nodes[i].id;
        m->weight = nodes[i].weight;
        m->zone = PLINTH_RING_NO_ZONE;

        if (nodes[i].zone != NULL && nodes[i].zone[0] != '\0') {
            if (plinth_ring_intern(nodes[i].zone, ring->zones, &ring->nzones,
                                   alloc, ctx, &m->zone)
                != 0)
            {
                return NULL;
            }
        }

        tier = nodes[i].tier;
        if (tier == NULL || tier[0] == '\0') {
            tier = "hot";
        }

        if (plinth_ring_intern(tier, ring->tiers, &ring->ntiers, alloc, ctx,
                               &m->tier)
            != 0)
        {
            return NULL;
        }
    }

    qsort(ring->nodes, n, sizeof(plinth_ring_member_t),
          plinth_ring_cmp_members);

    for (i = 1; i < n; i++) {
        if (ring->nodes[i].id == ring->nodes[i - 1].id) {
            return NULL;
        }
    }

    len = (ring->ntiers + 1) * sizeof(uint32_t);

    ring->row_nodes = alloc(ctx, len);
    ring->row_domains = alloc(ctx, len);
    ring->row_zone_nodes = alloc(ctx, len * (ring->nzones + 1));

    if (ring->row_nodes == NULL || ring->row_domains == NULL
        || ring->row_zone_nodes == NULL)
    {
        return NULL;
    }

    plinth_ring_count_rows(ring);

    ring->points = alloc(ctx, ring->npoints * sizeof(plinth_ring_point_t));
    if (ring->points == NULL) {
        return NULL;
    }

    p = 0;

    for (i = 0; i < n; i++) {
        m = &ring->nodes[i];
        count = m->weight * vnodes_per_weight;

        for (v = 0; v < count; v++) {
            len = plinth_ring_format(buf, m->id, v);
            ring->points[p].hash = XXH3_64bits(buf, len);
            ring->points[p].node = (uint32_t) i;
            p++;
        }
    }

    qsort(ring->points, ring->npoints, sizeof(plinth_ring_point_t),
          plinth_ring_cmp_points);

    return ring;
}


size_t
plinth_ring_lookup(const plinth_ring_t *ring, const void *key, size_t len,
    const char *tier, const uint32_t *exclude, size_t nexclude, size_t rf,
    uint32_t *out)
{
    size_t    row, nodes, domains, want, k, i, lo, hi, mid;
    uint64_t  h;

    if (ring == NULL || rf == 0 || out == NULL) {
        return 0;
    }

    if (exclude == NULL) {
        nexclude = 0;
    }

    row = plinth_ring_row(ring, tier);
    if (row == PLINTH_RING_NO_ROW) {
        return 0;
    }

    plinth_ring_available(ring, row, exclude, nexclude, &nodes, &domains);

    if (nodes == 0) {
        return 0;
    }

    h = XXH3_64bits(key, len);

    /* the first point with hash >= h; past the last one wraps to 0 */

    lo = 0;
    hi = ring->npoints;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (ring->points[mid].hash < h) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    if (lo == ring->npoints) {
        lo = 0;
    }

    want = rf < domains ? rf : domains;
    want = want < nodes ? want : nodes;

    k = plinth_ring_walk(ring, lo, row, exclude, nexclude, 1, want, 0, out);

    want = rf < nodes ? rf : nodes;

    k = plinth_ring_walk(ring, lo, row, exclude, nexclude, 0, want, k, out);

    for (i = 0; i < k; i++) {
        out[i] = ring->nodes[out[i]].id;
    }

    return k;
}


size_t
plinth_ring_nodes(const plinth_ring_t *ring)
{
    return ring == NULL ? 0 : ring->nnodes;
}


/*
 * Finds s in names[0..*n) or appends a copy of it; the names array has room
 * for one entry per node. Returns 0, or -1 if the copy cannot be allocated.
 */

static int
plinth_ring_intern(const char *s, const char **names, size_t *n,
    plinth_ring_alloc_pt alloc, void *ctx, uint32_t *index)
{
    char    *copy;
    size_t   i, len;

    for (i = 0; i < *n; i++) {
        if (strcmp(names[i], s) == 0) {
            *index = (uint32_t) i;
            return 0;
        }
    }

    len = strlen(s) + 1;

    copy = alloc(ctx, len);
    if (copy == NULL) {
        return -1;
    }

    memcpy(copy, s, len);

    names[*n] = copy;
    *index = (uint32_t) *n;
    (*n)++;

    return 0;
}


/*
 * Fills the row tables. A zone counts as one domain in a row however many
 * of its nodes are in it; a node without a zone is a domain by itself.
 */

static void
plinth_ring_count_rows(plinth_ring_t *ring)
{
    size_t                 row, z, i, any;
    plinth_ring_member_t  *m;

    any = ring->ntiers;

    for (row = 0; row <= any; row++) {
        ring->row_nodes[row] = 0;
        ring->row_domains[row] = 0;

        for (z = 0; z < ring->nzones; z++) {
            ring->row_zone_nodes[row * ring->nzones + z] = 0;
        }
    }

    for (i = 0; i < ring->nnodes; i++) {
        m = &ring->nodes[i];

        ring->row_nodes[m->tier]++;
        ring->row_nodes[any]++;

        if (m->zone == PLINTH_RING_NO_ZONE) {
            ring->row_domains[m->tier]++;
            ring->row_domains[any]++;
            continue;
        }

        if (ring->row_zone_nodes[m->tier * ring->nzones + m->zone]++ == 0) {
            ring->row_domains[m->tier]++;
        }

        if (ring->row_zone_nodes[any * ring->nzones + m->zone]++ == 0) {
            ring->row_domains[any]++;
        }
    }
}


/* Writes "<id>#<vnode>" into buf (no NUL) and returns its length. */

static size_t
plinth_ring_format(char *buf, uint32_t id, uint32_t vnode)
{
    char      digits[10];
    size_t    len, d;
    uint32_t  value;
    int       part;

    len = 0;

    for (part = 0; part < 2; part++) {
        value = part == 0 ? id : vnode;
        d = 0;

        do {
            digits[d++] = (char) ('0' + value % 10);
            value /= 10;
        } while (value != 0);

        while (d > 0) {
            buf[len++] = digits[--d];
        }

        if (part == 0) {
            buf[len++] = '#';
        }
    }

    return len;
}


static int
plinth_ring_cmp_members(const void *one, const void *two)
{
    const plinth_ring_member_t  *a = one, *b = two;

    return (a->id > b->id) - (a->id < b->id);
}


/*
 * Equal hashes (a 64-bit collision) are ordered by node index, that is by
 * node id, so the ring is the same whatever order the nodes came in.
 */

static int
plinth_ring_cmp_points(const void *one, const void *two)
{
    const plinth_ring_point_t  *a = one, *b = two;

    if (a->hash != b->hash) {
        return a->hash < b->hash ? -1 : 1;
    }

    return (a->node > b->node) - (a->node < b->node);
}


/*
 * Maps a requested tier to a row: ntiers for NULL (any tier), the tier's
 * index, or NO_ROW when no node has that tier.
 */

static size_t
plinth_ring_row(const plinth_ring_t *ring, const char *tier)
{
    size_t  i;

    if (tier == NULL) {
        return ring->ntiers;
    }

    if (tier[0] == '\0') {
        tier = "hot";
    }

    for (i = 0; i < ring->ntiers; i++) {
        if (strcmp(ring->tiers[i], tier) == 0) {
            return i;
        }
    }

    return PLINTH_RING_NO_ROW;
}


const char *
plinth_ring_tier_or_hotter(const plinth_ring_t *ring, const char *tier)
{
    size_t  i, start;

    static const char  *order[] = { "cold", "warm", "hot" };

    start = 2;

    if (tier != NULL && tier[0] != '\0') {
        for (i = 0; i < 3; i++) {
            if (strcmp(order[i], tier) == 0) {
                start = i;
                break;
            }
        }

        if (i == 3 && plinth_ring_row(ring, tier) != PLINTH_RING_NO_ROW) {
            return tier;            /* a tier name of the operator's own */
        }
    }

    for (i = start; i < 3; i++) {
        if (plinth_ring_row(ring, order[i]) != PLINTH_RING_NO_ROW) {
            return order[i];
        }
    }

    return NULL;
}


static const plinth_ring_member_t *
plinth_ring_member(const plinth_ring_t *ring, uint32_t id)
{
    size_t  lo, hi, mid;

    lo = 0;
    hi = ring->nnodes;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (ring->nodes[mid].id == id) {
            return &ring->nodes[mid];
        }

        if (ring->nodes[mid].id < id) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return NULL;
}


/*
 * Sets *nodes and *domains to how many nodes and failure domains of the
 * row remain once exclude[] is taken away; a zone is gone when all its
 * nodes in the row are excluded. Counted only for lists and zone counts
 * small enough (see Limits above); otherwise they stay upper bounds,
 * which costs walking time, not correctness.
 */

static void
plinth_ring_available(const plinth_ring_t *ring, size_t row,
    const uint32_t *exclude, size_t nexclude, size_t *nodes, size_t *domains)
{
    size_t                       j, z;
    uint32_t                     gone[PLINTH_RING_STACK_ZONES];
    const plinth_ring_member_t  *m;

    *nodes = ring->row_nodes[row];
    *domains = ring->row_domains[row];

    if (nexclude > PLINTH_RING_EXACT_EXCLUDE) {
        return;
    }

    for (z = 0; z < ring->nzones && z < PLINTH_RING_STACK_ZONES; z++) {
        gone[z] = 0;
    }

    for (j = 0; j < nexclude; j++) {
        m = plinth_ring_excluded(ring, row, exclude, j);
        if (m == NULL) {
            continue;
        }

        (*nodes)--;

        if (m->zone == PLINTH_RING_NO_ZONE) {
            (*domains)--;

        } else if (ring->nzones <= PLINTH_RING_STACK_ZONES
                   && ++gone[m->zone]
                      == ring->row_zone_nodes[row * ring->nzones + m->zone])
        {
            (*domains)--;
        }
    }
}


/*
 * Returns the node exclude[j] names if it is a node of the row and is not
 * named earlier in exclude[] (so each node counts once), else NULL.
 */

static const plinth_ring_member_t *
plinth_ring_excluded(const plinth_ring_t *ring, size_t row,
    const uint32_t *exclude, size_t j)
{
    const plinth_ring_member_t  *m;

    if (plinth_ring_in(exclude[j], exclude, j)) {
        return NULL;
    }

    m = plinth_ring_member(ring, exclude[j]);

    if (m == NULL || (row != ring->ntiers && m->tier != row)) {
        return NULL;
    }

    return m;
}


static int
plinth_ring_in(uint32_t id, const uint32_t *ids, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (ids[i] == id) {
            return 1;
        }
    }

    return 0;
}


/*
 * One pass: walks at most npoints points clockwise from start, appending to
 * out[k..] the node index of every eligible node not yet in out[0..k) (and,
 * if distinct_zones, whose zone no node in out[0..k) has), until out holds
 * want entries. Returns the new k.
 */

static size_t
plinth_ring_walk(const plinth_ring_t *ring, size_t start, size_t row,
    const uint32_t *exclude, size_t nexclude, int distinct_zones, size_t want,
    size_t k, uint32_t *out)
{
    size_t                       s, i, j;
    uint32_t                     node;
    const plinth_ring_member_t  *m;

    i = start;

    for (s = 0; s < ring->npoints && k < want; s++) {
        node = ring->points[i].node;

        if (++i == ring->npoints) {
            i = 0;
        }

        m = &ring->nodes[node];

        if (row != ring->ntiers && m->tier != row) {
            continue;
        }

        for (j = 0; j < k; j++) {
            if (out[j] == node) {
                break;
            }

            if (distinct_zones && m->zone != PLINTH_RING_NO_ZONE
                && ring->nodes[out[j]].zone == m->zone)
            {
                break;
            }
        }

        if (j < k) {
            continue;
        }

        if (plinth_ring_in(m->id, exclude, nexclude)) {
            continue;
        }

        out[k++] = node;
    }

    return k;
}
