/*
 * Fuzz target: the SigV4 Authorization header, then the rest of header
 * authentication as the gateway does it (ngx_plinth_auth.c): x-amz-date,
 * skew, signing key, canonical request and signature check.
 *
 * Input: the Authorization value, optionally followed by '\n' and the
 * x-amz-date value. The whole input is also parsed as one header value
 * and as a date, and classified as an x-amz-content-sha256 value.
 */

#include "fuzz.h"
#include "ngx_plinth_sigv4.h"


static void
check_auth(const plinth_sigv4_auth_t *a, const uint8_t *base, size_t size)
{
    size_t  i;

    FUZZ_ASSERT(fuzz_inside(a->access_key.data, a->access_key.len, base,
                            size));
    FUZZ_ASSERT(fuzz_inside(a->date.data, a->date.len, base, size));
    FUZZ_ASSERT(fuzz_inside(a->region.data, a->region.len, base, size));
    FUZZ_ASSERT(fuzz_inside(a->service.data, a->service.len, base, size));
    FUZZ_ASSERT(fuzz_inside(a->scope.data, a->scope.len, base, size));
    FUZZ_ASSERT(fuzz_inside(a->signed_headers.data, a->signed_headers.len,
                            base, size));
    FUZZ_ASSERT(fuzz_inside(a->signature.data, a->signature.len, base,
                            size));
    FUZZ_ASSERT(a->signature.len == 64);
    FUZZ_ASSERT(a->date.len == 8);
    FUZZ_ASSERT(a->access_key.len > 0);
    FUZZ_ASSERT(a->nheaders >= 1
                && a->nheaders <= PLINTH_SIGV4_MAX_SIGNED_HEADERS);
    FUZZ_ASSERT(a->scope.len <= PLINTH_SIGV4_MAX_SCOPE);

    for (i = 0; i < a->nheaders; i++) {
        FUZZ_ASSERT(a->headers[i].len > 0);
        FUZZ_ASSERT(fuzz_inside(a->headers[i].data, a->headers[i].len,
                                a->signed_headers.data,
                                a->signed_headers.len));
    }
}


static void
verify(plinth_sigv4_auth_t *auth)
{
    size_t                  i, need, len;
    unsigned char           key[32], sig[64], *buf;
    plinth_sigv4_rc_t       rc;
    plinth_sv_header_t      h[PLINTH_SIGV4_MAX_SIGNED_HEADERS];
    plinth_sigv4_request_t  req;

    static const unsigned char  secret[] =
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    rc = plinth_sigv4_check_skew(auth->time, auth->time + 60);
    FUZZ_ASSERT(rc == PLINTH_SIGV4_OK);

    rc = plinth_sigv4_signing_key((plinth_sv_str_t) { secret,
                                                      sizeof(secret) - 1 },
                                  auth->date, auth->region, auth->service,
                                  key);
    FUZZ_ASSERT(rc == PLINTH_SIGV4_OK);

    /* every signed header present once, with its own name as value */
    for (i = 0; i < auth->nheaders; i++) {
        h[i].name = auth->headers[i];
        h[i].value = auth->headers[i];
    }

    memset(&req, 0, sizeof(req));
    req.method = (plinth_sv_str_t) { (const unsigned char *) "PUT", 3 };
    req.path = (plinth_sv_str_t) { (const unsigned char *) "/b/k", 4 };
    /* never NULL in the gateway (ngx_plinth_auth.c points into the URI) */
    req.query = (plinth_sv_str_t) { (const unsigned char *) "", 0 };
    req.headers = h;
    req.nheaders = auth->nheaders;
    req.payload_hash = (plinth_sv_str_t) {
        (const unsigned char *) "UNSIGNED-PAYLOAD", 16 };

    rc = plinth_sigv4_canonical_request(&req, auth, NULL, 0, &need);
    FUZZ_ASSERT(rc == PLINTH_SIGV4_ERR_BUFFER);

    buf = fuzz_dup("", need);
    rc = plinth_sigv4_verify(&req, auth, key, buf, need, sig);
    FUZZ_ASSERT(rc == PLINTH_SIGV4_OK || rc == PLINTH_SIGV4_ERR_MISMATCH);

    rc = plinth_sigv4_canonical_request(&req, auth, buf, need, &len);
    FUZZ_ASSERT(rc == PLINTH_SIGV4_OK && len == need);
    free(buf);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t               t;
    size_t                n;
    uint8_t              *value, *date;
    const uint8_t        *nl;
    plinth_sigv4_auth_t   auth;
    plinth_sigv4_rc_t     rc;

    /* the whole input, three ways */

    rc = plinth_sigv4_parse_authorization((plinth_sv_str_t) { data, size },
                                          &auth);
    if (rc == PLINTH_SIGV4_OK) {
        check_auth(&auth, data, size);
    }

    FUZZ_ASSERT(plinth_sigv4_s3_error(rc, 0) != NULL || rc == 0);
    FUZZ_ASSERT(plinth_sigv4_strerror(rc) != NULL);

    if (plinth_sigv4_parse_date((plinth_sv_str_t) { data, size }, &t)
        == PLINTH_SIGV4_OK)
    {
        FUZZ_ASSERT(size == 16);
    }

    (void) plinth_sigv4_payload_kind((plinth_sv_str_t) { data, size });

    /* header value '\n' x-amz-date, each an exact-size copy */

    nl = size ? memchr(data, '\n', size) : NULL;
    if (nl == NULL) {
        return 0;
    }

    n = (size_t) (nl - data);
    value = fuzz_dup(data, n);
    date = fuzz_dup(nl + 1, size - n - 1);

    rc = plinth_sigv4_parse_authorization((plinth_sv_str_t) { value, n },
                                          &auth);
    if (rc == PLINTH_SIGV4_OK) {
        check_auth(&auth, value, n);

        rc = plinth_sigv4_set_date(&auth,
                                   (plinth_sv_str_t) { date, size - n - 1 });
        if (rc == PLINTH_SIGV4_OK) {
            FUZZ_ASSERT(auth.amz_date.len == 16);
            FUZZ_ASSERT(memcmp(auth.amz_date.data, auth.date.data, 8) == 0);
            verify(&auth);
        }
    }

    free(value);
    free(date);

    return 0;
}
