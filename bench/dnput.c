/*
 * plinth-dnput: PUT small blobs straight to one data node (no gateway),
 * signed for the internal hop, from T threads (one keep-alive connection
 * each), and report ops/s and latency; or check blobs written before.
 *
 *   plinth-dnput --url http://127.0.0.1:PORT --secret-file F
 *                [--threads 8] [--size 4096] [--duration 10] [--ops N]
 *                [--acked FILE] [--seed N]
 *   plinth-dnput --url ... --secret-file F --verify FILE
 *
 * Load: each put stores a new blob whose id and bytes derive from
 * (seed, thread, sequence); every 201 is appended to --acked as
 * "<id> <size>" (flushed at once, so a kill of the node leaves the file
 * complete up to the last answer received). Prints one JSON line: ops,
 * errors, ops/s, p50/p99 ms. Errors (the node killed under load) are
 * counted, not fatal.
 *
 * --verify: GET every id in FILE and compare the bytes with the ones put.
 * Prints "verified N bad M" and exits 1 if any is missing or different.
 *
 * Bounded by --duration seconds and --ops operations; every request has
 * a 10 s timeout. Loopback URLs only.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ngx_plinth_hop.h"

#define MAX_THREADS 64
#define MAX_LAT     (1 << 20)

static const char       *url;
static plinth_hop_key_t *key;
static int               nthreads = 8;
static size_t            size = 4096;
static double            duration = 10;
static uint64_t          max_ops = UINT64_MAX;
static uint64_t          seed;
static FILE             *acked;
static pthread_mutex_t   acked_mutex = PTHREAD_MUTEX_INITIALIZER;
static double            stop_at;
static uint64_t          started;      /* atomic: ops begun */

typedef struct {
    pthread_t   th;
    int         n;
    uint64_t    ops, errors;
    double     *lat;
    size_t      nlat;
} worker;

typedef struct {
    char   *buf;
    size_t  len, cap;
} sink;


static double
now_s(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}


/* splitmix64 */
static uint64_t
mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}


/* The bytes of blob id (32 hex): a stream seeded by the id. */
static void
fill(const char *id, unsigned char *b, size_t len)
{
    uint64_t  x = 0, v = 0;
    size_t    i;

    for (i = 0; i < 32; i++) {
        x = x * 131 + (unsigned char) id[i];
    }
    for (i = 0; i < len; i++) {
        if (i % 8 == 0) {
            v = mix(x + i);
        }
        b[i] = (unsigned char) (v >> (8 * (i % 8)));
    }
}


static size_t
sink_write(char *p, size_t sz, size_t n, void *arg)
{
    sink    *s = arg;
    size_t   len = sz * n;
    char    *nb;

    if (s == NULL) {
        return len;
    }
    if (s->len + len > s->cap) {
        s->cap = (s->len + len) * 2;
        nb = realloc(s->buf, s->cap);
        if (nb == NULL) {
            return 0;
        }
        s->buf = nb;
    }
    memcpy(s->buf + s->len, p, len);
    s->len += len;
    return len;
}


/* One signed request; returns the HTTP status (0: no answer). */
static long
request(CURL *c, const char *method, const char *id, const void *body,
    size_t blen, sink *out)
{
    char                target[128], full[1024], sig[PLINTH_HOP_SIG_LEN + 1];
    char                h1[128], h2[128], rid[64];
    struct curl_slist  *hs = NULL;
    int64_t             date = (int64_t) time(NULL);
    long                status = 0;

    snprintf(target, sizeof(target), "/blobs/%s", id);
    snprintf(full, sizeof(full), "%s%s", url, target);
    snprintf(rid, sizeof(rid), "dnput-%s", id);
    if (plinth_hop_sign(key, method, strlen(method), target, strlen(target),
                        date, rid, strlen(rid), sig) != 0)
    {
        return 0;
    }
    snprintf(h1, sizeof(h1), "%s: %" PRId64, PLINTH_HOP_DATE_HDR, date);
    snprintf(h2, sizeof(h2), "%s: %s", PLINTH_HOP_SIG_HDR, sig);
    hs = curl_slist_append(hs, h1);
    hs = curl_slist_append(hs, h2);
    snprintf(h1, sizeof(h1), "X-Request-Id: %s", rid);
    hs = curl_slist_append(hs, h1);
    hs = curl_slist_append(hs, "Expect:");

    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (strcmp(method, "PUT") == 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) blen);
    }
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(hs);
    return status;
}


static void *
run(void *arg)
{
    worker         *w = arg;
    CURL           *c = curl_easy_init();
    unsigned char  *body = malloc(size);
    char            id[40];
    uint64_t        seq = 0;
    double          t0;
    long            st;

    if (c == NULL || body == NULL) {
        w->errors++;
        goto done;
    }
    while (now_s() < stop_at
           && __atomic_fetch_add(&started, 1, __ATOMIC_RELAXED) < max_ops)
    {
        snprintf(id, sizeof(id), "%016" PRIx64 "%016" PRIx64,
                 mix(seed * 1000 + (uint64_t) w->n), mix(seq++ ^ seed));
        fill(id, body, size);
        t0 = now_s();
        st = request(c, "PUT", id, body, size, NULL);
        if (st != 201) {
            w->errors++;
            continue;
        }
        w->ops++;
        if (w->nlat < MAX_LAT) {
            w->lat[w->nlat++] = (now_s() - t0) * 1000;
        }
        if (acked != NULL) {
            pthread_mutex_lock(&acked_mutex);
            fprintf(acked, "%s %zu\n", id, size);
            fflush(acked);
            pthread_mutex_unlock(&acked_mutex);
        }
    }
done:
    if (c != NULL) {
        curl_easy_cleanup(c);
    }
    free(body);
    return NULL;
}


static int
cmp_d(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}


static int
verify(const char *path)
{
    FILE           *f = fopen(path, "r");
    CURL           *c = curl_easy_init();
    char            id[64];
    size_t          sz, n = 0, bad = 0, lines = 0;
    unsigned char  *want;
    sink            s = { NULL, 0, 0 };
    long            st;

    if (f == NULL || c == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return 2;
    }
    while (lines++ < 10000000 && fscanf(f, "%40s %zu", id, &sz) == 2) {
        want = malloc(sz ? sz : 1);
        if (want == NULL) {
            return 2;
        }
        fill(id, want, sz);
        s.len = 0;
        st = request(c, "GET", id, NULL, 0, &s);
        if (st != 200 || s.len != sz || memcmp(s.buf, want, sz) != 0) {
            fprintf(stderr, "bad %s: status %ld, %zu bytes\n", id, st, s.len);
            bad++;
        }
        n++;
        free(want);
    }
    fclose(f);
    curl_easy_cleanup(c);
    free(s.buf);
    printf("verified %zu bad %zu\n", n, bad);
    return bad ? 1 : 0;
}


int
main(int argc, char **argv)
{
    const char     *secret_file = NULL, *acked_file = NULL, *check = NULL;
    unsigned char   secret[PLINTH_HOP_SECRET_MAX];
    char            err[256];
    worker          w[MAX_THREADS];
    double         *all, t0, secs;
    uint64_t        ops = 0, errors = 0;
    size_t          nall = 0, j;
    int             i, slen, rc = 0;

    seed = (uint64_t) time(NULL);
    for (i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--url")) url = argv[i + 1];
        else if (!strcmp(argv[i], "--secret-file")) secret_file = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) nthreads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--size")) size = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--duration")) duration = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--ops")) max_ops = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--acked")) acked_file = argv[i + 1];
        else if (!strcmp(argv[i], "--verify")) check = argv[i + 1];
        else break;
    }
    if (i != argc || url == NULL || secret_file == NULL || nthreads < 1
        || nthreads > MAX_THREADS || size < 1 || size > (64 << 20)
        || (strncmp(url, "http://127.", 11) != 0
            && strncmp(url, "http://localhost", 16) != 0))
    {
        fprintf(stderr, "usage: plinth-dnput --url http://127.0.0.1:PORT "
                "--secret-file F [--threads 8] [--size 4096] "
                "[--duration 10] [--ops N] [--seed N] [--acked FILE] "
                "[--verify FILE]\n");
        return 2;
    }
    slen = plinth_hop_secret_load(secret_file, secret, sizeof(secret), err,
                                  sizeof(err));
    if (slen < 0 || (key = plinth_hop_key_new(secret, (size_t) slen)) == NULL)
    {
        fprintf(stderr, "secret: %s\n", slen < 0 ? err : "out of memory");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_ALL);

    if (check != NULL) {
        rc = verify(check);
        goto out;
    }

    if (acked_file != NULL && (acked = fopen(acked_file, "a")) == NULL) {
        fprintf(stderr, "cannot open %s: %s\n", acked_file, strerror(errno));
        return 2;
    }

    t0 = now_s();
    stop_at = t0 + duration;
    for (i = 0; i < nthreads; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].n = i;
        w[i].lat = malloc(MAX_LAT * sizeof(double));
        if (w[i].lat == NULL
            || pthread_create(&w[i].th, NULL, run, &w[i]) != 0)
        {
            fprintf(stderr, "cannot start thread\n");
            return 2;
        }
    }
    for (i = 0; i < nthreads; i++) {
        pthread_join(w[i].th, NULL);
    }
    secs = now_s() - t0;

    all = malloc((size_t) nthreads * MAX_LAT * sizeof(double));
    if (all == NULL) {
        return 2;
    }
    for (i = 0; i < nthreads; i++) {
        ops += w[i].ops;
        errors += w[i].errors;
        for (j = 0; j < w[i].nlat; j++) {
            all[nall++] = w[i].lat[j];
        }
        free(w[i].lat);
    }
    qsort(all, nall, sizeof(double), cmp_d);
    printf("{\"threads\":%d,\"size\":%zu,\"ops\":%" PRIu64 ",\"errors\":%"
           PRIu64 ",\"seconds\":%.3f,\"ops_per_s\":%.1f,\"lat_ms\":{\"p50\":"
           "%.3f,\"p99\":%.3f}}\n", nthreads, size, ops, errors, secs,
           ops / secs, nall ? all[nall / 2] : 0.0,
           nall ? all[(size_t) (nall * 0.99)] : 0.0);
    free(all);
    if (acked != NULL) {
        fclose(acked);
    }

out:
    plinth_hop_key_free(key);
    curl_global_cleanup();
    return rc;
}
