/*
 * Unit test for the placement ring (ngx_plinth_module/ngx_plinth_ring.c).
 *
 * Prints TAP: "ok N - ..." / "not ok N - ...", figures as "# ..." comments,
 * the plan "1..N" last; exits 1 if anything failed. Three kinds of checks:
 *
 *   - the properties placement relies on, measured on 100,000 keys: even
 *     spread, weights, about 1/N of the keys moving when a node is added
 *     and only onto that node, distinct nodes and zones, tier and exclusion
 *     filters, determinism whatever the order of the node list;
 *   - golden answers for a fixed cluster, because the hash formula is part
 *     of the on-disk contract and must never change by accident;
 *   - a randomized self-test against a model: a deliberately naive
 *     re-implementation of the header's description (snprintf for the
 *     point names, two full passes round the ring, strcmp for zones and
 *     tiers, no early stop) compared with the ring on random clusters,
 *     tiers, exclusion lists and rf. The seed is printed; pass another as
 *     argv[1] to explore.
 *
 * Memory for the rings comes from a test arena that counts allocations and
 * can be told to fail the k-th one.
 */

#define _POSIX_C_SOURCE  200809L

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "ngx_plinth_ring.h"


#define KEYS        100000
#define MAX_NODES   80
#define MAX_RF      8


/* an arena over malloc: the ring's allocator has no free */

typedef union {
    void       *next;
    uint64_t    align_u64;
    long double align_ld;
    void      (*align_fn)(void);
} test_block_t;

typedef struct {
    test_block_t  *head;
    size_t         calls;
    size_t         bytes;
    size_t         fail_at;     /* fail this call (from 1); 0 = never */
} test_arena_t;


/* a naive model of the ring */

typedef struct {
    uint64_t     hash;
    uint32_t     id;
} model_point_t;

typedef struct {
    const plinth_ring_node_t  *nodes;
    size_t                     n;
    model_point_t             *points;
    size_t                     npoints;
} model_t;


static int      test_count;
static int      test_failed;
static uint64_t test_rng;


static void
ok(int pass, const char *fmt, ...)
{
    va_list  args;

    test_count++;

    if (!pass) {
        test_failed++;
    }

    printf("%sok %d - ", pass ? "" : "not ", test_count);
    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
    printf("\n");
    fflush(stdout);
}


static uint64_t
rnd(void)
{
    /* splitmix64 */
    uint64_t  z;

    z = (test_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}


static size_t
rnd_below(size_t n)
{
    return (size_t) (rnd() % n);
}


static void *
arena_alloc(void *ctx, size_t size)
{
    test_arena_t  *a = ctx;
    test_block_t  *b;

    a->calls++;

    if (a->fail_at != 0 && a->calls == a->fail_at) {
        return NULL;
    }

    b = malloc(sizeof(test_block_t) + size);
    if (b == NULL) {
        return NULL;
    }

    b->next = a->head;
    a->head = b;
    a->bytes += size;

    return b + 1;
}


static void
arena_free(test_arena_t *a)
{
    test_block_t  *b;

    while (a->head != NULL) {
        b = a->head;
        a->head = b->next;
        free(b);
    }

    memset(a, 0, sizeof(test_arena_t));
}


static plinth_ring_t *
ring_new(test_arena_t *a, const plinth_ring_node_t *nodes, size_t n,
    unsigned vnodes)
{
    return plinth_ring_create(nodes, n, vnodes, arena_alloc, a);
}


static size_t
lookup_key(const plinth_ring_t *ring, int i, const char *tier,
    const uint32_t *exclude, size_t nexclude, size_t rf, uint32_t *out)
{
    char  key[64];
    int   len;

    len = snprintf(key, sizeof(key), "bucket/key-%d", i);

    return plinth_ring_lookup(ring, key, (size_t) len, tier, exclude,
                              nexclude, rf, out);
}


static int
distinct(const uint32_t *ids, size_t n)
{
    size_t  i, j;

    for (i = 0; i < n; i++) {
        for (j = 0; j < i; j++) {
            if (ids[i] == ids[j]) {
                return 0;
            }
        }
    }

    return 1;
}


static int
contains(const uint32_t *ids, size_t n, uint32_t id)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (ids[i] == id) {
            return 1;
        }
    }

    return 0;
}


static const plinth_ring_node_t *
node_by_id(const plinth_ring_node_t *nodes, size_t n, uint32_t id)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (nodes[i].id == id) {
            return &nodes[i];
        }
    }

    return NULL;
}


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


/* ---- the model ---- */

static int
model_cmp(const void *one, const void *two)
{
    const model_point_t  *a = one, *b = two;

    if (a->hash != b->hash) {
        return a->hash < b->hash ? -1 : 1;
    }

    return a->id < b->id ? -1 : a->id > b->id;
}


static void
model_build(model_t *m, const plinth_ring_node_t *nodes, size_t n,
    unsigned vnodes)
{
    char      buf[32];
    size_t    i, p, total;
    unsigned  v;
    int       len;

    if (vnodes == 0) {
        vnodes = 128;
    }

    total = 0;

    for (i = 0; i < n; i++) {
        total += nodes[i].weight * vnodes;
    }

    m->nodes = nodes;
    m->n = n;
    m->npoints = total;
    m->points = malloc(total * sizeof(model_point_t));

    if (m->points == NULL) {
        perror("malloc");
        exit(2);
    }

    p = 0;

    for (i = 0; i < n; i++) {
        for (v = 0; v < nodes[i].weight * vnodes; v++) {
            len = snprintf(buf, sizeof(buf), "%u#%u", nodes[i].id, v);
            m->points[p].hash = XXH3_64bits(buf, (size_t) len);
            m->points[p].id = nodes[i].id;
            p++;
        }
    }

    qsort(m->points, total, sizeof(model_point_t), model_cmp);
}


static const char *
model_tier(const char *tier)
{
    return (tier == NULL || tier[0] == '\0') ? "hot" : tier;
}


static int
model_has_zone(const plinth_ring_node_t *node)
{
    return node->zone != NULL && node->zone[0] != '\0';
}


static size_t
model_lookup(const model_t *m, const void *key, size_t len, const char *tier,
    const uint32_t *exclude, size_t nexclude, size_t rf, uint32_t *out)
{
    size_t                     k, start, s, j, pass;
    uint64_t                   h;
    const plinth_ring_node_t  *node, *other;

    k = 0;
    h = XXH3_64bits(key, len);

    for (start = 0; start < m->npoints; start++) {
        if (m->points[start].hash >= h) {
            break;
        }
    }

    if (start == m->npoints) {
        start = 0;
    }

    for (pass = 1; pass <= 2; pass++) {
        for (s = 0; s < m->npoints; s++) {
            if (k == rf) {
                return k;
            }

            node = node_by_id(m->nodes, m->n, m->points[(start + s)
                                                        % m->npoints].id);

            if (tier != NULL
                && strcmp(model_tier(node->tier), model_tier(tier)) != 0)
            {
                continue;
            }

            if (contains(exclude, nexclude, node->id)
                || contains(out, k, node->id))
            {
                continue;
            }

            if (pass == 1 && model_has_zone(node)) {
                for (j = 0; j < k; j++) {
                    other = node_by_id(m->nodes, m->n, out[j]);

                    if (model_has_zone(other)
                        && strcmp(other->zone, node->zone) == 0)
                    {
                        break;
                    }
                }

                if (j < k) {
                    continue;
                }
            }

            out[k++] = node->id;
        }
    }

    return k;
}


/* ---- the tests ---- */

static void
test_spread(void)
{
    test_arena_t        a = { 0 };
    plinth_ring_t      *ring;
    size_t              i, k, bad;
    uint32_t            out[MAX_RF], first;
    long                primary[3] = { 0 }, replicas[3] = { 0 };
    double              f, lo, hi;
    int                 key, within;
    plinth_ring_node_t  nodes[3] = {
        { 1, 1, NULL, NULL }, { 2, 1, NULL, NULL }, { 3, 1, NULL, NULL }
    };

    ring = ring_new(&a, nodes, 3, 0);
    ok(ring != NULL && plinth_ring_nodes(ring) == 3,
       "3 equal nodes: ring created, 3 nodes");

    if (ring == NULL) {
        return;
    }

    printf("# ring of 3 nodes x 128 points: %zu bytes in %zu allocations\n",
           a.bytes, a.calls);

    bad = 0;

    for (key = 0; key < KEYS; key++) {
        k = lookup_key(ring, key, NULL, NULL, 0, 1, out);
        if (k != 1) {
            bad++;
            continue;
        }

        primary[out[0] - 1]++;
        first = out[0];

        k = lookup_key(ring, key, NULL, NULL, 0, 3, out);
        if (k != 3 || !distinct(out, 3) || out[0] != first) {
            bad++;
        }

        for (i = 0; i < k; i++) {
            replicas[out[i] - 1]++;
        }
    }

    lo = 1.0 / 3 * 0.9;
    hi = 1.0 / 3 * 1.1;
    within = 1;

    for (i = 0; i < 3; i++) {
        f = (double) primary[i] / KEYS;
        printf("# even spread: node %zu primary for %ld keys (%.4f)\n",
               i + 1, primary[i], f);
        within &= (f >= lo && f <= hi);
    }

    ok(within, "even spread: each primary share within +-10%% of 1/3 "
       "[%.4f, %.4f]", lo, hi);

    printf("# rf=3: replicas per node %ld %ld %ld\n",
           replicas[0], replicas[1], replicas[2]);

    ok(bad == 0 && replicas[0] == KEYS && replicas[1] == KEYS
       && replicas[2] == KEYS,
       "rf=3 of 3 nodes: 3 distinct ids for every key, the first one the "
       "rf=1 primary, every node holds every key");

    arena_free(&a);
}


static void
test_add_node(void)
{
    test_arena_t        a = { 0 };
    plinth_ring_t      *three, *four;
    size_t              k3, k4, i, bad, new_elsewhere, sets_bad;
    uint32_t            p3[3], p4[3];
    long                moved, set_changed, replicas_moved;
    int                 key;
    plinth_ring_node_t  nodes[4] = {
        { 1, 1, NULL, NULL }, { 2, 1, NULL, NULL }, { 3, 1, NULL, NULL },
        { 4, 1, NULL, NULL }
    };

    three = ring_new(&a, nodes, 3, 0);
    four = ring_new(&a, nodes, 4, 0);

    if (three == NULL || four == NULL) {
        ok(0, "add a node: rings created");
        return;
    }

    moved = 0;
    new_elsewhere = 0;
    set_changed = 0;
    replicas_moved = 0;
    bad = 0;
    sets_bad = 0;

    for (key = 0; key < KEYS; key++) {
        k3 = lookup_key(three, key, NULL, NULL, 0, 3, p3);
        k4 = lookup_key(four, key, NULL, NULL, 0, 3, p4);

        if (k3 != 3 || k4 != 3 || !distinct(p4, 3)) {
            bad++;
            continue;
        }

        if (p3[0] != p4[0]) {
            moved++;

            if (p4[0] != 4) {
                new_elsewhere++;
            }
        }

        if (memcmp(p3, p4, sizeof(p3)) != 0) {
            set_changed++;
        }

        /* a replica set may only gain node 4, in place of one old node */

        for (i = 0; i < 3; i++) {
            if (!contains(p3, 3, p4[i])) {
                replicas_moved++;

                if (p4[i] != 4) {
                    sets_bad++;
                }
            }
        }
    }

    printf("# add a 4th node: %ld of %d primaries moved (%.4f), "
           "%ld moved elsewhere than the new node\n",
           moved, KEYS, (double) moved / KEYS, (long) new_elsewhere);
    printf("# add a 4th node, rf=3: %.4f of replicas must be copied; "
           "%.4f of replica sets (or their order) changed\n",
           (double) replicas_moved / (3.0 * KEYS),
           (double) set_changed / KEYS);

    ok((double) moved / KEYS >= 0.20 && (double) moved / KEYS <= 0.30,
       "add a 4th node: fraction of primaries moved in [0.20, 0.30]");
    ok(new_elsewhere == 0, "add a 4th node: every moved primary moved to "
       "the new node");
    ok(bad == 0, "rf=3 of 4 nodes: always 3 distinct ids");
    ok(sets_bad == 0, "add a 4th node: replica sets only gain the new node");

    arena_free(&a);
}


static void
test_zones(void)
{
    test_arena_t        a = { 0 };
    plinth_ring_t      *ring;
    size_t              k, i, j, bad;
    uint32_t            out[MAX_RF];
    const char         *zone[4];
    int                 key;
    plinth_ring_node_t  nodes[4] = {
        { 10, 1, "a", NULL }, { 11, 1, "a", NULL }, { 12, 1, "b", NULL },
        { 13, 1, "c", NULL }
    };
    plinth_ring_node_t  two_zones[3] = {
        { 1, 1, "a", NULL }, { 2, 1, "a", NULL }, { 3, 1, "b", NULL }
    };

    ring = ring_new(&a, nodes, 4, 0);
    bad = 0;

    for (key = 0; ring != NULL && key < KEYS; key++) {
        k = lookup_key(ring, key, NULL, NULL, 0, 3, out);

        if (k != 3 || !distinct(out, 3)) {
            bad++;
            continue;
        }

        for (i = 0; i < 3; i++) {
            zone[i] = node_by_id(nodes, 4, out[i])->zone;

            for (j = 0; j < i; j++) {
                if (strcmp(zone[i], zone[j]) == 0) {
                    bad++;
                }
            }
        }
    }

    ok(ring != NULL && bad == 0,
       "zones a,a,b,c, rf=3: every key gets three different zones");

    /* fewer zones than rf: one per zone first, then fill with any node */

    ring = ring_new(&a, two_zones, 3, 0);
    bad = 0;

    for (key = 0; ring != NULL && key < KEYS; key++) {
        k = lookup_key(ring, key, NULL, NULL, 0, 3, out);

        if (k != 3 || !distinct(out, 3)
            || strcmp(node_by_id(two_zones, 3, out[0])->zone,
                      node_by_id(two_zones, 3, out[1])->zone) == 0)
        {
            bad++;
        }
    }

    ok(ring != NULL && bad == 0,
       "zones a,a,b, rf=3: three nodes, the first two in different zones");

    arena_free(&a);
}


static void
test_filters(void)
{
    test_arena_t        a = { 0 };
    plinth_ring_t      *ring, *sub;
    size_t              k, ks, i, bad, mismatch, hot;
    uint32_t            out[MAX_RF], ref[MAX_RF];
    uint32_t            excl[3] = { 2, 99, 2 };
    int                 key;
    plinth_ring_node_t  nodes[6] = {
        { 1, 1, "a", NULL }, { 2, 1, "b", "hot" }, { 3, 1, "c", "" },
        { 4, 2, "a", "cold" }, { 5, 1, "b", "cold" }, { 6, 1, "a", "warm" }
    };
    plinth_ring_node_t  cold[2], rest[5];

    ring = ring_new(&a, nodes, 6, 0);

    if (ring == NULL) {
        ok(0, "filters: ring created");
        return;
    }

    /* the tier filter picks the same nodes as a ring of that tier alone */

    cold[0] = nodes[3];
    cold[1] = nodes[4];
    sub = ring_new(&a, cold, 2, 0);
    bad = 0;
    mismatch = 0;

    for (key = 0; sub != NULL && key < KEYS / 10; key++) {
        k = lookup_key(ring, key, "cold", NULL, 0, 3, out);
        ks = lookup_key(sub, key, NULL, NULL, 0, 3, ref);

        if (k != 2 || !contains(out, k, 4) || !contains(out, k, 5)) {
            bad++;
        }

        if (k != ks || memcmp(out, ref, k * sizeof(uint32_t)) != 0) {
            mismatch++;
        }
    }

    ok(sub != NULL && bad == 0, "tier \"cold\", rf=3: only the 2 cold "
       "nodes, so fewer than rf");
    ok(sub != NULL && mismatch == 0, "tier filter: same answers as a ring "
       "of the cold nodes alone");

    /* node tiers NULL and "" are "hot" */

    bad = 0;
    hot = 0;

    for (key = 0; key < KEYS / 10; key++) {
        k = lookup_key(ring, key, "hot", NULL, 0, 5, out);

        if (k != 3) {
            bad++;
        }

        for (i = 0; i < k; i++) {
            if (out[i] > 3) {
                bad++;
            }
        }

        hot += k;
    }

    ok(bad == 0, "tier \"hot\": exactly the nodes of tier NULL, \"\" and "
       "\"hot\" (%zu picks)", hot);

    ok(lookup_key(ring, 1, "glacier", NULL, 0, 3, out) == 0,
       "unknown tier: no node");

    /* where a class's writes go: its tier, else the next hotter one */

    ok(plinth_ring_tier_or_hotter(ring, "cold") != NULL
       && strcmp(plinth_ring_tier_or_hotter(ring, "cold"), "cold") == 0
       && strcmp(plinth_ring_tier_or_hotter(ring, "warm"), "warm") == 0
       && strcmp(plinth_ring_tier_or_hotter(ring, NULL), "hot") == 0
       && strcmp(plinth_ring_tier_or_hotter(ring, ""), "hot") == 0,
       "tier_or_hotter: each tier that has nodes is itself");
    ok(plinth_ring_tier_or_hotter(sub, "warm") == NULL
       && strcmp(plinth_ring_tier_or_hotter(sub, "cold"), "cold") == 0,
       "tier_or_hotter: no warm, hot nor any hotter node: NULL (any)");

    for (i = 0, k = 0; i < 6; i++) {
        if (nodes[i].tier == NULL || strcmp(nodes[i].tier, "warm") != 0) {
            rest[k++] = nodes[i];
        }
    }

    sub = ring_new(&a, rest, k, 0);
    ok(sub != NULL
       && strcmp(plinth_ring_tier_or_hotter(sub, "warm"), "hot") == 0
       && strcmp(plinth_ring_tier_or_hotter(sub, "cold"), "cold") == 0,
       "tier_or_hotter: a cluster without warm nodes writes warm to hot");
    ok(lookup_key(ring, 1, NULL, NULL, 0, 0, out) == 0, "rf=0: no node");
    ok(lookup_key(ring, 1, NULL, NULL, 0, MAX_RF, out) == 6,
       "rf=%d of 6 nodes: 6", MAX_RF);

    /* exclusion picks the same nodes as a ring without them */

    for (i = 0, k = 0; i < 6; i++) {
        if (nodes[i].id != 2) {
            rest[k++] = nodes[i];
        }
    }

    sub = ring_new(&a, rest, 5, 0);
    bad = 0;
    mismatch = 0;

    for (key = 0; sub != NULL && key < KEYS / 10; key++) {
        k = lookup_key(ring, key, NULL, excl, 3, 3, out);
        ks = lookup_key(sub, key, NULL, NULL, 0, 3, ref);

        if (k != 3 || contains(out, k, 2)) {
            bad++;
        }

        if (k != ks || memcmp(out, ref, k * sizeof(uint32_t)) != 0) {
            mismatch++;
        }
    }

    ok(sub != NULL && bad == 0, "exclude {2, 99, 2}: node 2 never "
       "returned, still 3 nodes");
    ok(sub != NULL && mismatch == 0, "exclusion: same answers as a ring "
       "without the excluded node");

    excl[0] = 4;
    excl[1] = 5;

    ok(lookup_key(ring, 7, "cold", excl, 2, 3, out) == 0,
       "every cold node excluded: no node");

    arena_free(&a);
}


static void
test_weights(void)
{
    test_arena_t        a = { 0 };
    plinth_ring_t      *ring;
    uint32_t            out[1];
    long                heavy;
    double              f;
    int                 key;
    plinth_ring_node_t  nodes[3] = {
        { 1, 1, NULL, NULL }, { 2, 2, NULL, NULL }, { 3, 1, NULL, NULL }
    };

    ring = ring_new(&a, nodes, 3, 0);
    heavy = 0;

    for (key = 0; ring != NULL && key < KEYS; key++) {
        if (lookup_key(ring, key, NULL, NULL, 0, 1, out) == 1
            && out[0] == 2)
        {
            heavy++;
        }
    }

    f = (double) heavy / KEYS;
    printf("# weights 1,2,1: the weight-2 node is primary for %ld keys "
           "(%.4f)\n", heavy, f);

    ok(ring != NULL && f >= 0.45 && f <= 0.55,
       "weights 1,2,1: weight-2 node gets 50%% +-10%% of primaries");

    arena_free(&a);
}


static void
test_determinism(void)
{
    test_arena_t        a = { 0 };
    plinth_ring_t      *r1, *r2, *r3, *r4;
    size_t              k1, k2, i, j, diff, diff_vnodes;
    uint32_t            o1[MAX_RF], o2[MAX_RF];
    int                 key;
    plinth_ring_node_t  tmp;
    plinth_ring_node_t  nodes[8] = {
        { 1, 1, "a", NULL }, { 2, 2, "b", "hot" }, { 3, 1, "c", "warm" },
        { 4, 1, "a", "warm" }, { 5, 3, NULL, NULL }, { 6, 1, "b", "" },
        { 7, 1, "", "cold" }, { 8, 1, "c", NULL }
    };
    plinth_ring_node_t  shuffled[8];
    const char         *tiers[4] = { NULL, "hot", "warm", "cold" };

    memcpy(shuffled, nodes, sizeof(nodes));

    for (i = 7; i > 0; i--) {
        j = rnd_below(i + 1);
        tmp = shuffled[i];
        shuffled[i] = shuffled[j];
        shuffled[j] = tmp;
    }

    /* reverse if the shuffle happened to keep the order */

    if (memcmp(shuffled, nodes, sizeof(nodes)) == 0) {
        for (i = 0; i < 8; i++) {
            shuffled[i] = nodes[7 - i];
        }
    }

    r1 = ring_new(&a, nodes, 8, 0);
    r2 = ring_new(&a, shuffled, 8, 0);
    r3 = ring_new(&a, nodes, 8, 128);
    r4 = ring_new(&a, nodes, 8, 64);

    if (r1 == NULL || r2 == NULL || r3 == NULL || r4 == NULL) {
        ok(0, "determinism: rings created");
        return;
    }

    diff = 0;
    diff_vnodes = 0;

    for (key = 0; key < 10000; key++) {
        for (i = 0; i < 4; i++) {
            k1 = lookup_key(r1, key, tiers[i], NULL, 0, 4, o1);
            k2 = lookup_key(r2, key, tiers[i], NULL, 0, 4, o2);

            if (k1 != k2 || memcmp(o1, o2, k1 * sizeof(uint32_t)) != 0) {
                diff++;
            }

            k2 = lookup_key(r3, key, tiers[i], NULL, 0, 4, o2);

            if (k1 != k2 || memcmp(o1, o2, k1 * sizeof(uint32_t)) != 0) {
                diff++;
            }

            k2 = lookup_key(r4, key, tiers[i], NULL, 0, 4, o2);

            if (k1 != k2 || memcmp(o1, o2, k1 * sizeof(uint32_t)) != 0) {
                diff_vnodes++;
            }
        }
    }

    ok(diff == 0, "determinism: same answers for 10,000 keys x 4 tiers "
       "from a shuffled node list, and with vnodes_per_weight 0 and 128");
    printf("# vnodes_per_weight 64 instead of 128 changes %.4f of the "
           "answers: it is part of the placement contract too\n",
           (double) diff_vnodes / 40000);

    arena_free(&a);
}


static void
test_invalid(void)
{
    test_arena_t        a = { 0 };
    plinth_ring_t      *ring;
    size_t              calls, k, failures;
    plinth_ring_node_t  good[3] = {
        { 1, 1, "a", NULL }, { 2, 1, "b", "cold" }, { 3, 1, "a", NULL }
    };
    plinth_ring_node_t  dup[3] = {
        { 1, 1, NULL, NULL }, { 2, 1, NULL, NULL }, { 1, 1, NULL, NULL }
    };
    plinth_ring_node_t  zero[2] = {
        { 1, 1, NULL, NULL }, { 2, 0, NULL, NULL }
    };
    plinth_ring_node_t  huge[2] = {
        { 1, 0xffffffffu, NULL, NULL }, { 2, 1, NULL, NULL }
    };

    ok(ring_new(&a, good, 0, 0) == NULL && a.calls == 0,
       "invalid: n=0 returns NULL, allocates nothing");
    ok(ring_new(&a, dup, 3, 0) == NULL, "invalid: duplicate id returns NULL");
    arena_free(&a);
    ok(ring_new(&a, zero, 2, 0) == NULL && a.calls == 0,
       "invalid: weight 0 returns NULL, allocates nothing");
    ok(ring_new(&a, huge, 2, 0) == NULL && a.calls == 0,
       "too many points (weight 2^32-1 x 128) returns NULL, allocates "
       "nothing");
    ok(ring_new(&a, NULL, 3, 0) == NULL
       && plinth_ring_create(good, 3, 0, NULL, NULL) == NULL,
       "invalid: NULL nodes or NULL allocator returns NULL");
    ok(plinth_ring_nodes(NULL) == 0, "plinth_ring_nodes(NULL) is 0");

    /* every allocation failure is reported */

    ring = ring_new(&a, good, 3, 0);
    calls = a.calls;
    arena_free(&a);

    failures = 0;

    for (k = 1; k <= calls; k++) {
        a.fail_at = k;

        if (ring_new(&a, good, 3, 0) != NULL) {
            failures++;
        }

        arena_free(&a);
    }

    ok(ring != NULL && failures == 0, "allocation failure at each of the "
       "%zu allocations returns NULL", calls);
}


/*
 * The formula is frozen: these answers were computed once with
 * XXH3-64("<id>#<vnode>") and must never change.
 */

static void
test_golden(void)
{
    static const uint32_t  want[8][3] = {
        { 103, 105, 101 }, { 102, 101, 103 }, { 101, 103, 102 },
        { 102, 101, 103 }, { 103, 102, 104 }, { 104, 103, 105 },
        { 103, 105, 104 }, { 103, 105, 101 }
    };

    test_arena_t        a = { 0 };
    plinth_ring_t      *ring;
    size_t              k, bad;
    uint32_t            out[3];
    int                 key;
    plinth_ring_node_t  nodes[5] = {
        { 101, 1, "a", NULL }, { 102, 1, "b", NULL }, { 103, 2, "c", NULL },
        { 104, 1, "a", NULL }, { 105, 1, "b", NULL }
    };

    ring = ring_new(&a, nodes, 5, 0);
    bad = 0;

    for (key = 0; ring != NULL && key < 8; key++) {
        k = lookup_key(ring, key, NULL, NULL, 0, 3, out);

        printf("# golden: bucket/key-%d -> %u %u %u\n",
               key, out[0], out[1], out[2]);

        if (k != 3 || memcmp(out, want[key], sizeof(out)) != 0) {
            bad++;
        }
    }

    ok(ring != NULL && bad == 0, "frozen formula: 8 golden placements");

    arena_free(&a);
}


/*
 * Random clusters (1-12 nodes, a few zones and tiers, some nodes without
 * either, small vnode counts so that walks wrap and tiers are sparse),
 * random lookups; the ring must agree with the model exactly. Every 10th
 * cluster is large (65-80 nodes, up to 80 zones) to pass the ring's
 * 64-zone counting limit, and some exclusion lists pass its 256-id limit.
 */

static void
test_random(void)
{
    static const char  *zones[] = { NULL, "", "a", "b", "c" };
    static const char  *tiers[] = { NULL, "", "hot", "warm", "cold" };
    static const char  *ask[] = { NULL, NULL, "", "hot", "warm", "cold",
                                  "glacier" };
    static const unsigned  vnodes[] = { 0, 1, 2, 5, 16 };

    test_arena_t        a = { 0 };
    plinth_ring_t      *ring;
    model_t             model;
    plinth_ring_node_t  nodes[MAX_NODES];
    uint32_t            exclude[300], got[MAX_RF], exp[MAX_RF];
    char                key[32], names[MAX_NODES][8];
    size_t              n, i, j, nexclude, rf, k, km, mismatch, lookups;
    size_t              invalid;
    unsigned            v;
    const char         *tier;
    int                 round, q, len, big;

    mismatch = 0;
    lookups = 0;
    invalid = 0;

    for (i = 0; i < MAX_NODES; i++) {
        snprintf(names[i], sizeof(names[i]), "z%zu", i);
    }

    for (round = 0; round < 300; round++) {
        big = (round % 10 == 9);
        n = big ? 65 + rnd_below(16) : 1 + rnd_below(12);

        for (i = 0; i < n; i++) {
            do {
                nodes[i].id = (uint32_t) rnd_below(big ? 100 : 40);
            } while (node_by_id(nodes, i, nodes[i].id) != NULL);

            nodes[i].weight = (uint32_t) (1 + rnd_below(3));
            nodes[i].zone = big ? names[rnd_below(rnd_below(2) ? n : 4)]
                                : zones[rnd_below(5)];
            nodes[i].tier = tiers[rnd_below(5)];
        }

        v = big ? 1 + (unsigned) rnd_below(3) : vnodes[rnd_below(5)];

        ring = ring_new(&a, nodes, n, v);

        if (ring == NULL) {
            invalid++;
            continue;
        }

        model_build(&model, nodes, n, v);

        for (q = 0; q < 200; q++) {
            len = snprintf(key, sizeof(key), "r%d/q%d", round, q);
            tier = ask[rnd_below(7)];
            rf = rnd_below(MAX_RF + 1);

            switch (rnd_below(8)) {
            case 0:
                nexclude = 257 + rnd_below(300 - 257);
                break;
            case 1:
            case 2:
                nexclude = rnd_below(big ? 80 : 24);
                break;
            default:
                nexclude = rnd_below(4);
            }

            for (j = 0; j < nexclude; j++) {
                exclude[j] = (uint32_t) rnd_below(big ? 100 : 40);
            }

            k = plinth_ring_lookup(ring, key, (size_t) len, tier, exclude,
                                   nexclude, rf, got);
            km = model_lookup(&model, key, (size_t) len, tier, exclude,
                              nexclude, rf, exp);
            lookups++;

            if (k != km || memcmp(got, exp, k * sizeof(uint32_t)) != 0) {
                if (mismatch++ < 5) {
                    printf("# mismatch: round %d key %s rf %zu: ring %zu "
                           "model %zu\n", round, key, rf, k, km);
                }
            }
        }

        free(model.points);
        arena_free(&a);
    }

    ok(invalid == 0 && mismatch == 0, "randomized: ring agrees with the "
       "naive model on %zu lookups over 300 random clusters", lookups);
}


static void
test_speed(void)
{
    test_arena_t        a = { 0 };
    plinth_ring_t      *ring;
    plinth_ring_node_t  nodes[64];
    static const char  *zones[3] = { "a", "b", "c" };
    uint32_t            out[3], zone_c[22];
    size_t              i, nzc, sum;
    double              t, ring_bytes, per;
    int                 key;

    for (i = 0, nzc = 0; i < 64; i++) {
        nodes[i].id = (uint32_t) (1000 + i);
        nodes[i].weight = 1;
        nodes[i].zone = zones[i % 3];
        nodes[i].tier = NULL;

        if (i % 3 == 2 && nzc < 22) {
            zone_c[nzc++] = nodes[i].id;
        }
    }

    t = now();
    ring = ring_new(&a, nodes, 64, 0);
    t = now() - t;
    ring_bytes = (double) a.bytes;

    if (ring == NULL) {
        ok(0, "speed: ring created");
        return;
    }

    printf("# 64 nodes of weight 1 in 3 zones: built in %.2f ms, %.0f KB\n",
           t * 1e3, ring_bytes / 1024);

    sum = 0;
    t = now();

    for (key = 0; key < 1000000; key++) {
        sum += lookup_key(ring, key, NULL, NULL, 0, 3, out);
    }

    per = (now() - t) * 1e3;
    printf("# 64 nodes, rf=3: %.0f ns a lookup (snprintf of the key "
           "included)\n", per);

    t = now();

    for (key = 0; key < 100000; key++) {
        sum += lookup_key(ring, key, NULL, zone_c, nzc, 3, out);
    }

    per = (now() - t) * 1e4;
    printf("# 64 nodes, rf=3, zone c (%zu nodes) excluded: %.0f ns a "
           "lookup\n", nzc, per);

    ok(sum == 3000000 + 300000, "speed: every timed lookup found 3 nodes");

    arena_free(&a);
}


int
main(int argc, char **argv)
{
    uint64_t  seed;

    seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 20240601;
    test_rng = seed;
    printf("# seed %" PRIu64 "\n", seed);

    test_spread();
    test_add_node();
    test_zones();
    test_filters();
    test_weights();
    test_determinism();
    test_invalid();
    test_golden();
    test_random();
    test_speed();

    printf("1..%d\n", test_count);

    return test_failed ? 1 : 0;
}
