/*
 * A data node's Prometheus figures (GET /metrics, text format 0.0.4):
 * requests by method and status, their durations, bytes in and out, and
 * the store's state (disk, blobs, corrupt blocks, writability). One set
 * per process (a process serves one node); every counter is an atomic, so
 * MHD's threads count without a lock.
 */
#ifndef PLINTH_DN_METRICS_H
#define PLINTH_DN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* a request ended: its method, status (0: none sent), seconds taken, and
 * whether its connection was cut before it completed */
void plinth_dn_metrics_request(const char *method, unsigned status,
    double seconds, int cut);
void plinth_dn_metrics_bytes_in(uint64_t n);
void plinth_dn_metrics_bytes_out(uint64_t n);

/* The exposition, malloc'd into *out (the caller frees). 0, or -1 when
 * out of memory. */
int plinth_dn_metrics_render(uint32_t node_id, const plinth_dn_usage *u,
    long long uptime, uint64_t connections, int inflight, const char *version,
    char **out, size_t *len);

#endif
