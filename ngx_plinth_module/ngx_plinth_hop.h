/*
 * ngx_plinth_hop.h -- the closed internal hop: every request to a data
 * node (from a gateway, repaird or another data node) carries
 *
 *     X-Plinth-Date: <unix seconds>
 *     X-Plinth-Signature: <64 hex digits>
 *
 * the HMAC-SHA256, under the cluster secret, of
 *
 *     "PLINTH-HOP-1\n" METHOD "\n" TARGET "\n" DATE "\n" REQUEST-ID
 *
 * where TARGET is the request target exactly as sent (path and query,
 * "/blobs/<id>/pull?from=..."), DATE the X-Plinth-Date value and
 * REQUEST-ID the X-Request-Id header ("" when none is sent). A data node
 * accepts the request when the signature matches (constant-time compare)
 * and DATE is within PLINTH_HOP_WINDOW seconds of its own clock.
 *
 * Pure C and OpenSSL: compiled into the gateway module, the data node and
 * repaird alike, so all three sign the same bytes.
 */

#ifndef NGX_PLINTH_HOP_H
#define NGX_PLINTH_HOP_H

#include <stddef.h>
#include <stdint.h>

#define PLINTH_HOP_WINDOW       300     /* seconds either side */
#define PLINTH_HOP_SECRET_MIN   16      /* bytes */
#define PLINTH_HOP_SECRET_MAX   1024
#define PLINTH_HOP_SIG_LEN      64      /* hex digits */
#define PLINTH_HOP_TARGET_MAX   2048    /* longer targets are not signed */
#define PLINTH_HOP_RID_MAX      256
#define PLINTH_HOP_DATE_HDR     "X-Plinth-Date"
#define PLINTH_HOP_SIG_HDR      "X-Plinth-Signature"

/*
 * Read the secret from path: the file's bytes less trailing white space,
 * PLINTH_HOP_SECRET_MIN .. MAX bytes. Returns the length, or -1 with a
 * reason in err.
 */
int plinth_hop_secret_load(const char *path, unsigned char *secret,
    size_t cap, char *err, size_t errlen);

/*
 * The secret made ready for signing: SHA-256 states after the HMAC inner
 * and outer pads, computed once (HMAC() would fetch the digest and hash
 * the pads for every request: 4x the cost). Read-only once made, so
 * threads may share it. NULL when out of memory.
 */
typedef struct plinth_hop_key_s  plinth_hop_key_t;

plinth_hop_key_t *plinth_hop_key_new(const unsigned char *secret,
    size_t secret_len);
void plinth_hop_key_free(plinth_hop_key_t *key);

/* out gets PLINTH_HOP_SIG_LEN hex digits and a NUL. Returns 0 or -1. */
int plinth_hop_sign(const plinth_hop_key_t *key,
    const char *method, size_t method_len, const char *target,
    size_t target_len, int64_t date, const char *rid, size_t rid_len,
    char *out);

/*
 * Check a request: 0 when good, else -1 with *why set to a short reason
 * (a static string) naming what was wrong.
 */
int plinth_hop_verify(const plinth_hop_key_t *key,
    const char *method, const char *target, const char *date_hdr,
    const char *sig_hdr, const char *rid, int64_t now, const char **why);

#endif /* NGX_PLINTH_HOP_H */
