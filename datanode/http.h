/*
 * http.h -- the data node's HTTP API on libmicrohttpd.
 *
 *     PUT    /blobs/<id>          store (201 BlobInfo)
 *     GET    /blobs/<id>          read, verified block by block (Range)
 *     HEAD   /blobs/<id>          headers of GET
 *     DELETE /blobs/<id>          204
 *     GET    /blobs/<id>/info     BlobInfo with block checksums
 *     GET    /blobs/<id>/verify   read and check every block
 *     GET    /blobs?after=&limit= BlobList
 *     GET    /health              NodeHealth (JSON with Accept: ...json)
 *     POST   /blobs/<id>/pull?from=host:port   copy from a peer, verified
 *     GET    /scrub?after=&limit= verify blobs; BlobList of the corrupt ones
 *
 * The handlers are meant for MHD's thread-per-connection mode: they block
 * on disk I/O and fsync. main.c starts the daemon with these callbacks.
 */

#ifndef PLINTH_DN_HTTP_H
#define PLINTH_DN_HTTP_H

#include <stdarg.h>
#include <stdint.h>
#include <time.h>

#include <microhttpd.h>

#include "store.h"
#include "ngx_plinth_hop.h"

#define PLINTH_DN_VERSION  "0.1.0"

typedef struct {
    plinth_dn_store  *store;
    uint32_t          node_id;
    time_t            started;
    int               inflight;     /* requests not yet completed; atomic */
    uint64_t          connections;  /* TCP connections accepted; atomic */
    plinth_hop_key_t *hop_key;      /* the cluster secret, ready to sign */
    const char       *tls_ca;       /* pull over HTTPS with this CA; NULL:
                                     * HTTP */
    char             *tls_cert_pem; /* the PEM texts MHD serves with: held */
    char             *tls_key_pem;  /* until the daemon has stopped */
    uint64_t          send_rate;    /* bytes/s of blob bodies; 0: no limit */
} plinth_dn_http;

enum MHD_Result plinth_dn_http_access(void *cls, struct MHD_Connection *c,
    const char *url, const char *method, const char *version,
    const char *upload_data, size_t *upload_size, void **con_cls);
void plinth_dn_http_completed(void *cls, struct MHD_Connection *c,
    void **con_cls, enum MHD_RequestTerminationCode toe);
void plinth_dn_http_connection(void *cls, struct MHD_Connection *c,
    void **socket_context, enum MHD_ConnectionNotificationCode toe);
void *plinth_dn_http_uri(void *cls, const char *uri,
    struct MHD_Connection *c);
void plinth_dn_http_mhd_log(void *cls, const char *fmt, va_list ap);
int plinth_dn_http_inflight(plinth_dn_http *h);

#endif /* PLINTH_DN_HTTP_H */
