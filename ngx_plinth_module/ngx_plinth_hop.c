/*
 * ngx_plinth_hop.c -- signing and checking internal requests (see
 * ngx_plinth_hop.h). OpenSSL's HMAC and CRYPTO_memcmp; no nginx types.
 */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_plinth_hop.h"


int
plinth_hop_secret_load(const char *path, unsigned char *secret, size_t cap,
    char *err, size_t errlen)
{
    FILE    *fp;
    size_t   n;
    int      c;

    fp = fopen(path, "r");
    if (fp == NULL) {
        snprintf(err, errlen, "cannot open cluster secret file \"%s\": %s",
                 path, strerror(errno));
        return -1;
    }

    n = 0;
    while ((c = fgetc(fp)) != EOF) {
        if (n == cap || n == PLINTH_HOP_SECRET_MAX) {
            fclose(fp);
            snprintf(err, errlen, "cluster secret file \"%s\" is longer "
                     "than %d bytes", path, PLINTH_HOP_SECRET_MAX);
            return -1;
        }
        secret[n++] = (unsigned char) c;
    }
    fclose(fp);

    while (n > 0 && isspace(secret[n - 1])) {
        n--;
    }
    if (n < PLINTH_HOP_SECRET_MIN) {
        snprintf(err, errlen, "cluster secret in \"%s\" is shorter than %d "
                 "bytes", path, PLINTH_HOP_SECRET_MIN);
        return -1;
    }
    return (int) n;
}


int
plinth_hop_sign(const unsigned char *secret, size_t secret_len,
    const char *method, size_t method_len, const char *target,
    size_t target_len, int64_t date, const char *rid, size_t rid_len,
    char *out)
{
    static const char   hex[] = "0123456789abcdef";
    static const char   prefix[] = "PLINTH-HOP-1\n";
    unsigned char       mac[EVP_MAX_MD_SIZE];
    unsigned int        mlen = 0, i;
    char                msg[PLINTH_HOP_MSG_MAX], *p;
    int                 dlen;

    if (method_len > 16 || target_len > PLINTH_HOP_TARGET_MAX
        || rid_len > PLINTH_HOP_RID_MAX)
    {
        return -1;
    }

    /* one buffer and the one-shot HMAC(): HMAC_CTX is deprecated in
     * OpenSSL 3 (and nginx builds with -Werror) */
    p = msg;
    memcpy(p, prefix, sizeof(prefix) - 1);
    p += sizeof(prefix) - 1;
    memcpy(p, method, method_len);
    p += method_len;
    *p++ = '\n';
    memcpy(p, target, target_len);
    p += target_len;
    dlen = snprintf(p, 32, "\n%" PRId64 "\n", date);
    p += dlen;
    memcpy(p, rid, rid_len);
    p += rid_len;

    if (HMAC(EVP_sha256(), secret, (int) secret_len, (unsigned char *) msg,
             (size_t) (p - msg), mac, &mlen) == NULL
        || mlen != PLINTH_HOP_SIG_LEN / 2)
    {
        return -1;
    }

    for (i = 0; i < mlen; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 0xf];
    }
    out[PLINTH_HOP_SIG_LEN] = '\0';
    return 0;
}


int
plinth_hop_verify(const unsigned char *secret, size_t secret_len,
    const char *method, const char *target, const char *date_hdr,
    const char *sig_hdr, const char *rid, int64_t now, const char **why)
{
    char        want[PLINTH_HOP_SIG_LEN + 1];
    char       *end;
    long long   date;

    if (sig_hdr == NULL || date_hdr == NULL) {
        *why = "no X-Plinth-Signature and X-Plinth-Date: this port serves "
               "only the cluster's own processes";
        return -1;
    }

    errno = 0;
    date = strtoll(date_hdr, &end, 10);
    if (date_hdr[0] < '0' || date_hdr[0] > '9' || *end != '\0'
        || errno != 0)
    {
        *why = "X-Plinth-Date is not a number of seconds";
        return -1;
    }
    if (date < now - PLINTH_HOP_WINDOW || date > now + PLINTH_HOP_WINDOW) {
        *why = "X-Plinth-Date is more than 300 s from this node's clock";
        return -1;
    }

    if (rid == NULL) {
        rid = "";
    }
    if (plinth_hop_sign(secret, secret_len, method, strlen(method), target,
                        strlen(target), (int64_t) date, rid, strlen(rid),
                        want) != 0)
    {
        *why = "cannot compute the signature";
        return -1;
    }

    if (strlen(sig_hdr) != PLINTH_HOP_SIG_LEN
        || CRYPTO_memcmp(want, sig_hdr, PLINTH_HOP_SIG_LEN) != 0)
    {
        *why = "X-Plinth-Signature does not match (another cluster secret?)";
        return -1;
    }
    return 0;
}
