/*
 * Fuzz target: the query string of a presigned URL (X-Amz-Algorithm,
 * -Credential, -Date, -Expires, -SignedHeaders, -Signature), then the
 * canonical request of a GET with that query, as the gateway computes it
 * (PLINTH_SIGV4_PRESIGNED: X-Amz-Signature left out), and the signature
 * check. The scratch buffer is exactly as large as the header promises it
 * needs to be (query.len bytes), so ASan catches a write past it.
 */

#include "fuzz.h"
#include "ngx_plinth_sigv4.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                  need, len;
    uint8_t                *scratch, *buf;
    unsigned char           key[32];
    plinth_sigv4_auth_t     auth;
    plinth_sigv4_rc_t       rc;
    plinth_sv_header_t      h[1];
    plinth_sigv4_request_t  req;
    plinth_sv_str_t         q = { data, size };

    static const unsigned char  secret[] =
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    (void) plinth_sigv4_is_presigned(q);

    scratch = fuzz_dup("", size);
    rc = plinth_sigv4_parse_presigned(q, scratch, size, &auth);
    FUZZ_ASSERT(rc != PLINTH_SIGV4_ERR_BUFFER);
    (void) plinth_sigv4_s3_error(rc, 1);

    if (rc != PLINTH_SIGV4_OK) {
        free(scratch);
        return 0;
    }

    FUZZ_ASSERT(plinth_sigv4_is_presigned(q));
    FUZZ_ASSERT(auth.presigned);
    FUZZ_ASSERT(auth.signature.len == 64);
    FUZZ_ASSERT(auth.amz_date.len == 16);
    FUZZ_ASSERT(auth.expires >= 1 && auth.expires <= PLINTH_SIGV4_MAX_EXPIRES);
    FUZZ_ASSERT(auth.nheaders >= 1
                && auth.nheaders <= PLINTH_SIGV4_MAX_SIGNED_HEADERS);
    FUZZ_ASSERT(fuzz_inside(auth.access_key.data, auth.access_key.len,
                            scratch, size)
                || fuzz_inside(auth.access_key.data, auth.access_key.len,
                               data, size));

    /* now is the gateway's clock (ngx_time()), never an input */
    FUZZ_ASSERT(plinth_sigv4_check_presigned_time(&auth, auth.time)
                == PLINTH_SIGV4_OK);
    FUZZ_ASSERT(plinth_sigv4_check_presigned_time(&auth,
                    auth.time + auth.expires + 1)
                == PLINTH_SIGV4_ERR_EXPIRED);
    FUZZ_ASSERT(plinth_sigv4_check_presigned_time(&auth,
                    auth.time - PLINTH_SIGV4_MAX_SKEW - 1)
                == PLINTH_SIGV4_ERR_NOT_YET_VALID);

    h[0].name = (plinth_sv_str_t) { (const unsigned char *) "Host", 4 };
    h[0].value = (plinth_sv_str_t) {
        (const unsigned char *) "examplebucket.s3.amazonaws.com", 30 };

    memset(&req, 0, sizeof(req));
    req.method = (plinth_sv_str_t) { (const unsigned char *) "GET", 3 };
    req.path = (plinth_sv_str_t) { (const unsigned char *) "/test.txt", 9 };
    req.query = q;
    req.headers = h;
    req.nheaders = 1;
    req.payload_hash = (plinth_sv_str_t) {
        (const unsigned char *) "UNSIGNED-PAYLOAD", 16 };
    req.flags = PLINTH_SIGV4_PRESIGNED;

    rc = plinth_sigv4_canonical_request(&req, &auth, NULL, 0, &need);

    if (rc == PLINTH_SIGV4_ERR_BUFFER) {
        buf = fuzz_dup("", need);
        rc = plinth_sigv4_canonical_request(&req, &auth, buf, need, &len);
        FUZZ_ASSERT(rc == PLINTH_SIGV4_OK && len == need);

        rc = plinth_sigv4_signing_key((plinth_sv_str_t) { secret,
                                                          sizeof(secret) - 1 },
                                      auth.date, auth.region, auth.service,
                                      key);
        FUZZ_ASSERT(rc == PLINTH_SIGV4_OK);

        rc = plinth_sigv4_verify(&req, &auth, key, buf, need, NULL);
        FUZZ_ASSERT(rc == PLINTH_SIGV4_OK || rc == PLINTH_SIGV4_ERR_MISMATCH);
        free(buf);

    } else {
        FUZZ_ASSERT(rc == PLINTH_SIGV4_ERR_URI
                    || rc == PLINTH_SIGV4_ERR_TOO_MANY_PARAMS);
    }

    free(scratch);

    return 0;
}
