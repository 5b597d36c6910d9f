/*
 * config.h -- the data node's configuration (a flat YAML mapping).
 *
 *     node_id: 1                  required, 1 .. 4294967295
 *     listen: 127.0.0.1:9101      required, host:port or [v6]:port
 *     data_dir: /srv/plinth/d1    required, created if missing
 *     block_size: 1048576         power of two, 4 KiB .. 64 MiB
 *     capacity_bytes: 0           0 = the filesystem's size
 *     reserve_bytes: 0            free space never used
 *     log_level: info             debug | info | warn | error
 *     pid_file: /run/x.pid        optional
 *     cluster_secret_file: /etc/plinth/cluster.secret
 *                                 required: the closed internal hop
 *                                 (ngx_plinth_hop.h)
 *     tls_cert: /etc/plinth/tls/node1.crt   optional, with tls_key and
 *     tls_key: /etc/plinth/tls/node1.key    tls_ca: serve HTTPS only, and
 *     tls_ca: /etc/plinth/tls/ca.crt        pull from peers over HTTPS
 *     group_commit: false         true | false: one directory fsync
 *                                 serves concurrent puts (store.c)
 *     send_rate_limit: 0          bytes/s all blob reads together may
 *                                 send (0: no limit); a node with a slow
 *                                 disk or link, for benchmarks and tests
 *
 * Sizes take an optional binary suffix: K, M, G, T (or KiB, MiB, GiB,
 * TiB). Unknown keys, repeated keys and bad values are errors.
 */

#ifndef PLINTH_DN_CONFIG_H
#define PLINTH_DN_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct {
    uint64_t                 node_id;
    char                    *listen;
    struct sockaddr_storage  listen_addr;
    socklen_t                listen_addrlen;
    char                    *data_dir;
    uint64_t                 block_size;
    uint64_t                 capacity_bytes;
    uint64_t                 reserve_bytes;
    uint64_t                 log_level;
    char                    *pid_file;
    char                    *cluster_secret_file;
    char                    *tls_cert;
    char                    *tls_key;
    char                    *tls_ca;
    uint64_t                 group_commit;   /* 0 or 1 */
    uint64_t                 send_rate_limit;  /* bytes/s; 0: none */
} plinth_dn_config;

int plinth_dn_config_load(const char *path, plinth_dn_config *cf,
    char *err, size_t errlen);
void plinth_dn_config_free(plinth_dn_config *cf);

#endif /* PLINTH_DN_CONFIG_H */
