/*
 * The cluster file: every data node of the cluster (id, address, zone,
 * tier, weight), in YAML. Gateways and repaird read the same file, so they
 * agree on the ring. Example:
 *
 *   nodes:
 *     - id: 1
 *       address: 127.0.0.1:9101
 *       zone: z1          # optional, failure domain
 *       tier: hot         # optional: hot (default), warm, cold
 *       weight: 1         # optional, relative capacity (default 1)
 */

#ifndef NGX_PLINTH_CLUSTER_H
#define NGX_PLINTH_CLUSTER_H

#include <ngx_config.h>
#include <ngx_core.h>


typedef struct {
    uint32_t      id;
    ngx_str_t     address;
    ngx_str_t     zone;
    ngx_str_t     tier;
    uint32_t      weight;
} ngx_plinth_cluster_node_t;


/*
 * Parses the cluster file into an array of ngx_plinth_cluster_node_t
 * allocated from pool. Returns NULL on success, or an error message
 * (allocated from pool) naming the file, line and problem.
 */
char *ngx_plinth_cluster_load(ngx_pool_t *pool, ngx_str_t *path,
    ngx_array_t **nodes);

#endif /* NGX_PLINTH_CLUSTER_H */
