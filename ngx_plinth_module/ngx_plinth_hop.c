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


struct plinth_hop_key_s {
    EVP_MD_CTX  *inner;     /* SHA-256 after key ^ ipad */
    EVP_MD_CTX  *outer;     /* SHA-256 after key ^ opad */
};


plinth_hop_key_t *
plinth_hop_key_new(const unsigned char *secret, size_t secret_len)
{
    unsigned char      k[64], ipad[64], opad[64];
    unsigned int       klen = 0, i;
    plinth_hop_key_t  *key;

    key = calloc(1, sizeof(*key));
    if (key == NULL) {
        return NULL;
    }

    memset(k, 0, sizeof(k));
    if (secret_len > sizeof(k)) {           /* RFC 2104: hash long keys */
        if (EVP_Digest(secret, secret_len, k, &klen, EVP_sha256(), NULL)
            != 1)
        {
            free(key);
            return NULL;
        }
    } else {
        memcpy(k, secret, secret_len);
    }
    for (i = 0; i < sizeof(k); i++) {
        ipad[i] = k[i] ^ 0x36;
        opad[i] = k[i] ^ 0x5c;
    }

    key->inner = EVP_MD_CTX_new();
    key->outer = EVP_MD_CTX_new();
    if (key->inner == NULL || key->outer == NULL
        || EVP_DigestInit_ex(key->inner, EVP_sha256(), NULL) != 1
        || EVP_DigestUpdate(key->inner, ipad, sizeof(ipad)) != 1
        || EVP_DigestInit_ex(key->outer, EVP_sha256(), NULL) != 1
        || EVP_DigestUpdate(key->outer, opad, sizeof(opad)) != 1)
    {
        plinth_hop_key_free(key);
        key = NULL;
    }

    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(ipad, sizeof(ipad));
    OPENSSL_cleanse(opad, sizeof(opad));
    return key;
}


void
plinth_hop_key_free(plinth_hop_key_t *key)
{
    if (key == NULL) {
        return;
    }
    EVP_MD_CTX_free(key->inner);
    EVP_MD_CTX_free(key->outer);
    free(key);
}


int
plinth_hop_sign(const plinth_hop_key_t *key,
    const char *method, size_t method_len, const char *target,
    size_t target_len, int64_t date, const char *rid, size_t rid_len,
    char *out)
{
    static const char   hex[] = "0123456789abcdef";
    static const char   prefix[] = "PLINTH-HOP-1\n";
    unsigned char       ih[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
    unsigned int        ilen = 0, mlen = 0, i;
    char                d[32];
    int                 dlen, ok;
    EVP_MD_CTX         *c;

    if (key == NULL || method_len > 16 || target_len > PLINTH_HOP_TARGET_MAX
        || rid_len > PLINTH_HOP_RID_MAX)
    {
        return -1;
    }

    dlen = snprintf(d, sizeof(d), "\n%" PRId64 "\n", date);

    c = EVP_MD_CTX_new();
    if (c == NULL) {
        return -1;
    }
    ok = EVP_MD_CTX_copy_ex(c, key->inner) == 1
         && EVP_DigestUpdate(c, prefix, sizeof(prefix) - 1) == 1
         && EVP_DigestUpdate(c, method, method_len) == 1
         && EVP_DigestUpdate(c, "\n", 1) == 1
         && EVP_DigestUpdate(c, target, target_len) == 1
         && EVP_DigestUpdate(c, d, (size_t) dlen) == 1
         && EVP_DigestUpdate(c, rid, rid_len) == 1
         && EVP_DigestFinal_ex(c, ih, &ilen) == 1
         && EVP_MD_CTX_copy_ex(c, key->outer) == 1
         && EVP_DigestUpdate(c, ih, ilen) == 1
         && EVP_DigestFinal_ex(c, mac, &mlen) == 1;
    EVP_MD_CTX_free(c);

    if (!ok || mlen != PLINTH_HOP_SIG_LEN / 2) {
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
plinth_hop_verify(const plinth_hop_key_t *key,
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
    if (plinth_hop_sign(key, method, strlen(method), target,
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
