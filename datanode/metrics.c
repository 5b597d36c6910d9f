/* A data node's Prometheus figures: see metrics.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static const char *plinth_dn_m_methods[] = {
    "GET", "HEAD", "PUT", "DELETE", "POST", "other"
};
#define PLINTH_DN_M_NMETHODS \
    (sizeof(plinth_dn_m_methods) / sizeof(plinth_dn_m_methods[0]))

/* the statuses a data node answers; any other is counted as "other" */
static const unsigned plinth_dn_m_codes[] = {
    200, 201, 204, 206, 400, 403, 404, 405, 409, 411, 413, 416, 500, 503,
    507, 0
};
#define PLINTH_DN_M_NCODES \
    (sizeof(plinth_dn_m_codes) / sizeof(plinth_dn_m_codes[0]))

/* upper bounds of the duration histogram's buckets, in seconds */
static const double plinth_dn_m_le[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
    10
};
#define PLINTH_DN_M_NLE (sizeof(plinth_dn_m_le) / sizeof(plinth_dn_m_le[0]))

static struct {
    uint64_t  requests[PLINTH_DN_M_NMETHODS][PLINTH_DN_M_NCODES + 1];
    uint64_t  buckets[PLINTH_DN_M_NLE + 1];     /* not cumulative; +Inf last */
    uint64_t  duration_us;
    uint64_t  cut;
    uint64_t  bytes_in;
    uint64_t  bytes_out;
} plinth_dn_m;


void
plinth_dn_metrics_request(const char *method, unsigned status, double seconds,
    int cut)
{
    size_t  m, c, b;

    for (m = 0; m < PLINTH_DN_M_NMETHODS - 1; m++) {
        if (strcmp(method, plinth_dn_m_methods[m]) == 0) {
            break;
        }
    }
    for (c = 0; c < PLINTH_DN_M_NCODES; c++) {
        if (plinth_dn_m_codes[c] == status) {
            break;
        }
    }
    for (b = 0; b < PLINTH_DN_M_NLE; b++) {
        if (seconds <= plinth_dn_m_le[b]) {
            break;
        }
    }
    if (seconds < 0) {
        seconds = 0;
    }

    __atomic_add_fetch(&plinth_dn_m.requests[m][c], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&plinth_dn_m.buckets[b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&plinth_dn_m.duration_us, (uint64_t) (seconds * 1e6),
                       __ATOMIC_RELAXED);
    if (cut) {
        __atomic_add_fetch(&plinth_dn_m.cut, 1, __ATOMIC_RELAXED);
    }
}


void
plinth_dn_metrics_bytes_in(uint64_t n)
{
    __atomic_add_fetch(&plinth_dn_m.bytes_in, n, __ATOMIC_RELAXED);
}


void
plinth_dn_metrics_bytes_out(uint64_t n)
{
    __atomic_add_fetch(&plinth_dn_m.bytes_out, n, __ATOMIC_RELAXED);
}


/* a growing text buffer; on failure it is freed and stays NULL */
typedef struct {
    char    *p;
    size_t   len;
    size_t   cap;
} plinth_dn_text;

static void
plinth_dn_text_add(plinth_dn_text *t, const char *fmt, ...)
{
    va_list  ap;
    int      n;
    char    *np;

    if (t->p == NULL) {
        return;
    }
    for ( ;; ) {
        va_start(ap, fmt);
        n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            free(t->p);
            t->p = NULL;
            return;
        }
        if ((size_t) n < t->cap - t->len) {
            t->len += (size_t) n;
            return;
        }
        np = realloc(t->p, t->cap * 2 + (size_t) n);
        if (np == NULL) {
            free(t->p);
            t->p = NULL;
            return;
        }
        t->p = np;
        t->cap = t->cap * 2 + (size_t) n;
    }
}

static void
plinth_dn_text_head(plinth_dn_text *t, const char *name, const char *type,
    const char *help)
{
    plinth_dn_text_add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                       type);
}

static uint64_t
plinth_dn_m_load(uint64_t *v)
{
    return __atomic_load_n(v, __ATOMIC_RELAXED);
}


int
plinth_dn_metrics_render(uint32_t node_id, const plinth_dn_usage *u,
    long long uptime, uint64_t connections, int inflight, const char *version,
    char **out, size_t *len)
{
    size_t          m, c, b;
    uint64_t        n, cum;
    plinth_dn_text  t;

    t.cap = 8192;
    t.len = 0;
    t.p = malloc(t.cap);

#define PLINTH_DN_GAUGE(name, help, fmt, v)                                  \
    plinth_dn_text_head(&t, name, "gauge", help);                            \
    plinth_dn_text_add(&t, name "{node=\"%u\"} " fmt "\n", node_id, v)
#define PLINTH_DN_COUNTER(name, help, v)                                     \
    plinth_dn_text_head(&t, name, "counter", help);                          \
    plinth_dn_text_add(&t, name "{node=\"%u\"} %llu\n", node_id,             \
                       (unsigned long long) (v))

    plinth_dn_text_head(&t, "plinth_node_info", "gauge",
                        "The data node's id and version.");
    plinth_dn_text_add(&t, "plinth_node_info{node=\"%u\",version=\"%s\"} 1\n",
                       node_id, version);
    PLINTH_DN_GAUGE("plinth_node_uptime_seconds",
                    "Seconds since the data node started.", "%lld", uptime);
    PLINTH_DN_GAUGE("plinth_node_disk_total_bytes",
                    "Size of the data directory's disk (or the configured "
                    "capacity).", "%llu", (unsigned long long) u->total);
    PLINTH_DN_GAUGE("plinth_node_disk_usage_bytes",
                    "Bytes used on the data directory's disk (or by blobs, "
                    "under a configured capacity).", "%llu",
                    (unsigned long long) u->used);
    PLINTH_DN_GAUGE("plinth_node_disk_free_bytes",
                    "Bytes new blobs may still take (less the reserve and "
                    "writes in progress).", "%llu",
                    (unsigned long long) u->free);
    PLINTH_DN_GAUGE("plinth_node_blobs", "Blobs stored.", "%llu",
                    (unsigned long long) u->blob_count);
    PLINTH_DN_GAUGE("plinth_node_blob_bytes", "Bytes of the blobs stored.",
                    "%llu", (unsigned long long) u->blob_bytes);
    PLINTH_DN_GAUGE("plinth_node_full",
                    "1 when less than a block is free: writes are refused.",
                    "%d", u->full ? 1 : 0);
    PLINTH_DN_GAUGE("plinth_node_writable",
                    "1 when the data directory takes a write (the health "
                    "probe's answer).", "%d", u->writable ? 1 : 0);
    PLINTH_DN_GAUGE("plinth_node_requests_in_flight",
                    "Requests begun and not yet completed.", "%d", inflight);
    PLINTH_DN_COUNTER("plinth_node_corrupt_blocks_total",
                      "Blocks whose checksum failed when read or scrubbed.",
                      u->corrupt);
    PLINTH_DN_COUNTER("plinth_node_connections_total",
                      "TCP connections accepted.", connections);
    PLINTH_DN_COUNTER("plinth_node_received_bytes_total",
                      "Bytes of request bodies received.",
                      plinth_dn_m_load(&plinth_dn_m.bytes_in));
    PLINTH_DN_COUNTER("plinth_node_sent_bytes_total",
                      "Bytes of blob data sent.",
                      plinth_dn_m_load(&plinth_dn_m.bytes_out));
    PLINTH_DN_COUNTER("plinth_node_requests_cut_total",
                      "Requests whose connection ended before they "
                      "completed.", plinth_dn_m_load(&plinth_dn_m.cut));

    plinth_dn_text_head(&t, "plinth_node_http_requests_total", "counter",
                        "Requests answered, by method and status.");
    for (m = 0; m < PLINTH_DN_M_NMETHODS; m++) {
        for (c = 0; c <= PLINTH_DN_M_NCODES; c++) {
            n = plinth_dn_m_load(&plinth_dn_m.requests[m][c]);
            if (n == 0) {
                continue;
            }
            if (c < PLINTH_DN_M_NCODES && plinth_dn_m_codes[c] != 0) {
                plinth_dn_text_add(&t, "plinth_node_http_requests_total{"
                    "node=\"%u\",method=\"%s\",code=\"%u\"} %llu\n", node_id,
                    plinth_dn_m_methods[m], plinth_dn_m_codes[c],
                    (unsigned long long) n);
            } else {
                plinth_dn_text_add(&t, "plinth_node_http_requests_total{"
                    "node=\"%u\",method=\"%s\",code=\"%s\"} %llu\n", node_id,
                    plinth_dn_m_methods[m],
                    c < PLINTH_DN_M_NCODES ? "none" : "other",
                    (unsigned long long) n);
            }
        }
    }

    plinth_dn_text_head(&t, "plinth_node_http_request_duration_seconds",
                        "histogram", "Time from a request's first byte to "
                        "its completion.");
    cum = 0;
    for (b = 0; b <= PLINTH_DN_M_NLE; b++) {
        cum += plinth_dn_m_load(&plinth_dn_m.buckets[b]);
        if (b < PLINTH_DN_M_NLE) {
            plinth_dn_text_add(&t, "plinth_node_http_request_duration_seconds_"
                "bucket{node=\"%u\",le=\"%g\"} %llu\n", node_id,
                plinth_dn_m_le[b], (unsigned long long) cum);
        } else {
            plinth_dn_text_add(&t, "plinth_node_http_request_duration_seconds_"
                "bucket{node=\"%u\",le=\"+Inf\"} %llu\n", node_id,
                (unsigned long long) cum);
        }
    }
    n = plinth_dn_m_load(&plinth_dn_m.duration_us);
    plinth_dn_text_add(&t, "plinth_node_http_request_duration_seconds_sum{"
        "node=\"%u\"} %llu.%06llu\n", node_id,
        (unsigned long long) (n / 1000000), (unsigned long long) (n % 1000000));
    plinth_dn_text_add(&t, "plinth_node_http_request_duration_seconds_count{"
        "node=\"%u\"} %llu\n", node_id, (unsigned long long) cum);

#undef PLINTH_DN_GAUGE
#undef PLINTH_DN_COUNTER

    if (t.p == NULL) {
        return -1;
    }
    *out = t.p;
    *len = t.len;
    return 0;
}
