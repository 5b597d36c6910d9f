/*
 * Fuzz target: the canonical request (path and query canonicalization,
 * header folding) and the string to sign, over arbitrary requests.
 *
 * Input: one flags byte (PLINTH_SIGV4_PRESIGNED, PLINTH_SIGV4_GENERIC),
 * then '\n'-separated lines: method, raw path, raw query, the
 * SignedHeaders list, x-amz-content-sha256, then "name:value" headers.
 * Every piece is an exact-size heap copy. The canonical request is built
 * twice, first to learn its size, then into a buffer of exactly that size:
 * both passes must agree (the counting writer's contract).
 */

#include "fuzz.h"
#include "ngx_plinth_sigv4.h"


#define MAX_HEADERS  80


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                    authz[8192];
    size_t                  i, n, need, len, nh, slen;
    uint8_t                *copies[5 + 2 * MAX_HEADERS], *buf;
    const uint8_t          *piece, *colon;
    unsigned                flags, ncopies;
    unsigned char           key[32], sig[64], sts[PLINTH_SIGV4_STS_MAX];
    fuzz_in_t               in = { data, size };
    plinth_sv_str_t         s[5];

    static const char  fallback[] =
        "AWS4-HMAC-SHA256 Credential=A/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6"
        "ed310bd44f0170aba48dd91039c6036bdb41";
    plinth_sv_header_t      h[MAX_HEADERS];
    plinth_sigv4_auth_t     auth;
    plinth_sigv4_rc_t       rc;
    plinth_sigv4_request_t  req;

    flags = fuzz_u8(&in) & (PLINTH_SIGV4_PRESIGNED | PLINTH_SIGV4_GENERIC);
    ncopies = 0;

    for (i = 0; i < 5; i++) {
        n = fuzz_piece(&in, '\n', &piece);
        copies[ncopies] = fuzz_dup(piece, n);
        s[i] = (plinth_sv_str_t) { copies[ncopies++], n };
    }

    for (nh = 0; nh < MAX_HEADERS && in.left; nh++) {
        n = fuzz_piece(&in, '\n', &piece);
        colon = memchr(piece, ':', n);
        slen = colon ? (size_t) (colon - piece) : n;

        copies[ncopies] = fuzz_dup(piece, slen);
        h[nh].name = (plinth_sv_str_t) { copies[ncopies++], slen };

        slen = colon ? n - slen - 1 : 0;
        copies[ncopies] = fuzz_dup(colon ? colon + 1 : piece, slen);
        h[nh].value = (plinth_sv_str_t) { copies[ncopies++], slen };
    }

    /* the signed header list, through the real parser */
    snprintf(authz, sizeof(authz),
             "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
             "us-east-1/s3/aws4_request,SignedHeaders=%.*s,Signature="
             "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
             (int) (s[3].len < 4096 ? s[3].len : 4096), s[3].data);

    if (memchr(s[3].data, '\0', s[3].len) != NULL
        || plinth_sigv4_parse_authorization(
               (plinth_sv_str_t) { (unsigned char *) authz, strlen(authz) },
               &auth) != PLINTH_SIGV4_OK)
    {
        rc = plinth_sigv4_parse_authorization((plinth_sv_str_t) {
            (const unsigned char *) fallback, strlen(fallback) }, &auth);
        FUZZ_ASSERT(rc == PLINTH_SIGV4_OK);
    }

    rc = plinth_sigv4_set_date(&auth, (plinth_sv_str_t) {
        (const unsigned char *) "20130524T000000Z", 16 });
    FUZZ_ASSERT(rc == PLINTH_SIGV4_OK);

    memset(&req, 0, sizeof(req));
    req.method = s[0];
    req.path = s[1];
    req.query = s[2];
    req.payload_hash = s[4];
    req.headers = h;
    req.nheaders = nh;
    req.flags = flags;

    rc = plinth_sigv4_canonical_request(&req, &auth, NULL, 0, &need);

    if (rc == PLINTH_SIGV4_ERR_BUFFER) {
        buf = fuzz_dup("", need);
        rc = plinth_sigv4_canonical_request(&req, &auth, buf, need, &len);
        FUZZ_ASSERT(rc == PLINTH_SIGV4_OK && len == need);

        rc = plinth_sigv4_string_to_sign(auth.amz_date, auth.scope, buf, len,
                                         sts, sizeof(sts), &len);
        FUZZ_ASSERT(rc == PLINTH_SIGV4_OK);

        rc = plinth_sigv4_signing_key((plinth_sv_str_t) {
            (const unsigned char *) "secret", 6 }, auth.date, auth.region,
            auth.service, key);
        FUZZ_ASSERT(rc == PLINTH_SIGV4_OK);

        /* one byte short: the canonicalizer must say so, not overflow */
        if (need > 0) {
            rc = plinth_sigv4_verify(&req, &auth, key, buf, need - 1, sig);
            FUZZ_ASSERT(rc == PLINTH_SIGV4_ERR_BUFFER);
        }

        rc = plinth_sigv4_verify(&req, &auth, key, buf, need, sig);
        FUZZ_ASSERT(rc == PLINTH_SIGV4_OK || rc == PLINTH_SIGV4_ERR_MISMATCH);
        free(buf);

    } else {
        FUZZ_ASSERT(rc == PLINTH_SIGV4_ERR_URI
                    || rc == PLINTH_SIGV4_ERR_TOO_MANY_PARAMS);
    }

    for (i = 0; i < ncopies; i++) {
        free(copies[i]);
    }

    return 0;
}
