/*
 * Plinth SigV4: AWS Signature Version 4 for S3, as pure functions over
 * (pointer, length) strings.
 *
 * Pure code: no nginx headers, no I/O, no global state, no allocation of its
 * own (output goes to caller buffers; a few KB of stack at most). OpenSSL's
 * libcrypto does the HMAC/SHA-256 work. Every parser takes arbitrary bytes:
 * lengths are bounded, nothing is read past (data + len), nothing recurses.
 *
 * The flow for a request signed in the Authorization header:
 *
 *     plinth_sigv4_parse_authorization(value, &auth)
 *     plinth_sigv4_set_date(&auth, x-amz-date value)   date, scope date
 *     plinth_sigv4_check_skew(auth.time, now)          +-15 minutes
 *     look up the secret of auth.access_key (InvalidAccessKeyId if none),
 *     check auth.region/auth.service against the configuration,
 *     plinth_sigv4_signing_key(secret, auth.date, auth.region, auth.service)
 *         (cache the key per (access key, date, region, service))
 *     plinth_sigv4_verify(&req, &auth, key, buf, size)
 *
 * and for a presigned URL plinth_sigv4_parse_presigned() replaces the first
 * two steps and plinth_sigv4_check_presigned_time() the skew check. For
 * aws-chunked bodies the seed signature is auth.signature, and
 * plinth_sigv4_chain_*() verify each chunk and the trailer in turn.
 *
 * S3 rules (the default): the canonical URI is built from the raw path as
 * the client sent it, each segment percent-decoded then UriEncode()d once
 * (unreserved A-Za-z0-9-._~ kept, everything else %XX upper case, '/'
 * kept); the path is not normalized ("//" and "." stay). The generic rules
 * (PLINTH_SIGV4_GENERIC, for AWS's generic test suite; never for S3) remove
 * dot segments and empty segments and encode the raw path again, so a '%'
 * the client sent becomes "%25" (double encoding).
 *
 * Query strings: split on '&', a piece without '=' has an empty value,
 * empty pieces are skipped; names and values are percent-decoded ('+' is a
 * literal plus, not a space) and UriEncode()d, then sorted by encoded name,
 * then encoded value. Presigned requests leave X-Amz-Signature out.
 *
 * Canonical headers: the signed header names in the order the client listed
 * them (SigV4 clients list them sorted), each with the values of every
 * request header of that name in arrival order, trimmed, runs of spaces and
 * tabs collapsed to one space, joined with ','. A signed header that the
 * request lacks is signed with an empty value (the signature then fails
 * unless the client did the same).
 *
 * Error codes and the S3 errors they map to (plinth_sigv4_s3_error()):
 *
 *   UNSUPPORTED_ALGORITHM   header: InvalidArgument ("Unsupported
 *                           Authorization Type", v2 "AWS ..." included);
 *                           query: AuthorizationQueryParametersError
 *   MALFORMED, MISSING_COMPONENT, CREDENTIAL, SIGNED_HEADERS,
 *   TOO_MANY_HEADERS, DATE_MISMATCH
 *                           header: AuthorizationHeaderMalformed (400);
 *                           query: AuthorizationQueryParametersError (400)
 *   EXPIRES                 AuthorizationQueryParametersError (400)
 *   SIGNATURE_FORMAT        SignatureDoesNotMatch (403): a signature that is
 *                           not 64 lower-case hex digits cannot match
 *   DATE                    AccessDenied (403) "AWS authentication requires
 *                           a valid Date or x-amz-date header"
 *   EXPIRED                 AccessDenied (403) "Request has expired"
 *   NOT_YET_VALID           AccessDenied (403) "Request is not valid yet"
 *   SKEWED                  RequestTimeTooSkewed (403)
 *   URI, TOO_MANY_PARAMS    InvalidURI (400)
 *   CONTENT_SHA256          InvalidArgument (400) (bad x-amz-content-sha256)
 *   MISMATCH                SignatureDoesNotMatch (403)
 *   BUFFER, CRYPTO          InternalError (500): a caller bug or OpenSSL
 */

#ifndef PLINTH_SIGV4_H
#define PLINTH_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>


#define PLINTH_SIGV4_MAX_SIGNED_HEADERS  64
#define PLINTH_SIGV4_MAX_QUERY_PARAMS    256
#define PLINTH_SIGV4_MAX_SCOPE           128   /* date/region/service/term */
#define PLINTH_SIGV4_MAX_SECRET          128
#define PLINTH_SIGV4_MAX_SKEW            900   /* seconds, S3's 15 minutes */
#define PLINTH_SIGV4_MAX_EXPIRES         604800
#define PLINTH_SIGV4_MAX_GENERIC_SEGMENTS  1024

/* enough for any string to sign (request, chunk or trailer) */
#define PLINTH_SIGV4_STS_MAX  (32 + 16 + PLINTH_SIGV4_MAX_SCOPE + 4 * 65)

/* plinth_sigv4_request_t.flags */
#define PLINTH_SIGV4_PRESIGNED  0x01  /* leave X-Amz-Signature out */
#define PLINTH_SIGV4_GENERIC    0x02  /* non-S3 path rules (tests only) */


typedef struct {
    const unsigned char  *data;
    size_t                len;
} plinth_sv_str_t;

typedef struct {
    plinth_sv_str_t       name;
    plinth_sv_str_t       value;
} plinth_sv_header_t;

typedef enum {
    PLINTH_SIGV4_OK = 0,
    PLINTH_SIGV4_ERR_UNSUPPORTED_ALGORITHM,
    PLINTH_SIGV4_ERR_MALFORMED,
    PLINTH_SIGV4_ERR_MISSING_COMPONENT,
    PLINTH_SIGV4_ERR_CREDENTIAL,
    PLINTH_SIGV4_ERR_SIGNED_HEADERS,
    PLINTH_SIGV4_ERR_TOO_MANY_HEADERS,
    PLINTH_SIGV4_ERR_SIGNATURE_FORMAT,
    PLINTH_SIGV4_ERR_EXPIRES,
    PLINTH_SIGV4_ERR_DATE,
    PLINTH_SIGV4_ERR_DATE_MISMATCH,
    PLINTH_SIGV4_ERR_EXPIRED,
    PLINTH_SIGV4_ERR_NOT_YET_VALID,
    PLINTH_SIGV4_ERR_SKEWED,
    PLINTH_SIGV4_ERR_URI,
    PLINTH_SIGV4_ERR_TOO_MANY_PARAMS,
    PLINTH_SIGV4_ERR_CONTENT_SHA256,
    PLINTH_SIGV4_ERR_MISMATCH,
    PLINTH_SIGV4_ERR_BUFFER,
    PLINTH_SIGV4_ERR_CRYPTO
} plinth_sigv4_rc_t;

/* What x-amz-content-sha256 announces. */
typedef enum {
    PLINTH_SIGV4_PAYLOAD_INVALID = 0,
    PLINTH_SIGV4_PAYLOAD_SHA256,                /* 64 lower-case hex */
    PLINTH_SIGV4_PAYLOAD_UNSIGNED,              /* UNSIGNED-PAYLOAD */
    PLINTH_SIGV4_PAYLOAD_STREAMING,             /* ...-HMAC-SHA256-PAYLOAD */
    PLINTH_SIGV4_PAYLOAD_STREAMING_TRAILER,     /* ...-PAYLOAD-TRAILER */
    PLINTH_SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER,
    PLINTH_SIGV4_PAYLOAD_UNSUPPORTED            /* SigV4a ECDSA streaming */
} plinth_sigv4_payload_t;

/*
 * A parsed Authorization header or presigned query. Every string points
 * into the parsed input (header) or into the caller's scratch buffer
 * (presigned), so it lives as long as they do.
 */
typedef struct {
    plinth_sv_str_t   access_key;
    plinth_sv_str_t   date;          /* YYYYMMDD of the credential scope */
    plinth_sv_str_t   region;
    plinth_sv_str_t   service;
    plinth_sv_str_t   scope;         /* "date/region/service/aws4_request" */
    plinth_sv_str_t   signed_headers;                /* "host;x-amz-date" */
    plinth_sv_str_t   headers[PLINTH_SIGV4_MAX_SIGNED_HEADERS];
    size_t            nheaders;
    plinth_sv_str_t   signature;     /* 64 lower-case hex digits */
    plinth_sv_str_t   amz_date;      /* YYYYMMDD'T'HHMMSS'Z' once known */
    int64_t           time;          /* amz_date as epoch seconds */
    int64_t           expires;       /* presigned: X-Amz-Expires, else 0 */
    unsigned          presigned:1;
} plinth_sigv4_auth_t;

/* The request as received. */
typedef struct {
    plinth_sv_str_t            method;
    plinth_sv_str_t            path;     /* raw, as sent, without '?...' */
    plinth_sv_str_t            query;    /* raw, without '?'; may be empty */
    const plinth_sv_header_t  *headers;  /* in arrival order */
    size_t                     nheaders;
    plinth_sv_str_t            payload_hash;  /* x-amz-content-sha256 value,
                                                 "UNSIGNED-PAYLOAD" for
                                                 presigned URLs */
    unsigned                   flags;    /* PLINTH_SIGV4_PRESIGNED, ... */
} plinth_sigv4_request_t;

/*
 * The signature chain of an aws-chunked body: signing key, timestamp, scope
 * and the previous signature (the seed signature at first). Self-contained
 * (copies what it needs), so it can outlive the parsed header.
 */
typedef struct {
    unsigned char     key[32];
    unsigned char     amz_date[16];
    unsigned char     scope[PLINTH_SIGV4_MAX_SCOPE];
    size_t            scope_len;
    unsigned char     prev[64];
} plinth_sigv4_chain_t;


/*
 * Parses an Authorization header value: "AWS4-HMAC-SHA256" then one or more
 * spaces, then Credential=, SignedHeaders= and Signature= in any order,
 * each exactly once, separated by ',' and optional spaces. Credential is
 * AKID/YYYYMMDD/region/service/aws4_request; SignedHeaders lower-case
 * token names separated by ';', no duplicates, "host" among them; Signature
 * 64 lower-case hex digits. Sets every field but amz_date/time/expires.
 */
plinth_sigv4_rc_t plinth_sigv4_parse_authorization(plinth_sv_str_t value,
    plinth_sigv4_auth_t *auth);

/* Non-zero if the raw query carries X-Amz-Algorithm or X-Amz-Credential. */
int plinth_sigv4_is_presigned(plinth_sv_str_t query);

/*
 * Parses the raw query of a presigned URL: X-Amz-Algorithm,
 * X-Amz-Credential, X-Amz-Date, X-Amz-Expires (1..604800),
 * X-Amz-SignedHeaders and X-Amz-Signature, each required once; other
 * parameters are left alone (they are signed like any other). Values are
 * percent-decoded into scratch, which needs at most query.len bytes.
 * Sets every field (time and expires too) and checks the scope date.
 */
plinth_sigv4_rc_t plinth_sigv4_parse_presigned(plinth_sv_str_t query,
    unsigned char *scratch, size_t size, plinth_sigv4_auth_t *auth);

/* "YYYYMMDD'T'HHMMSS'Z'" (UTC) to epoch seconds; ERR_DATE if not valid. */
plinth_sigv4_rc_t plinth_sigv4_parse_date(plinth_sv_str_t value,
    int64_t *t);

/*
 * Header auth: parses the x-amz-date value into auth->amz_date/time and
 * checks that its day is the credential scope's (ERR_DATE_MISMATCH).
 */
plinth_sigv4_rc_t plinth_sigv4_set_date(plinth_sigv4_auth_t *auth,
    plinth_sv_str_t amz_date);

/* ERR_SKEWED if t is more than PLINTH_SIGV4_MAX_SKEW seconds from now. */
plinth_sigv4_rc_t plinth_sigv4_check_skew(int64_t t, int64_t now);

/*
 * Presigned: ERR_EXPIRED once now > time + expires, ERR_NOT_YET_VALID if
 * time is more than PLINTH_SIGV4_MAX_SKEW seconds ahead of now.
 */
plinth_sigv4_rc_t plinth_sigv4_check_presigned_time(
    const plinth_sigv4_auth_t *auth, int64_t now);

/* Classifies an x-amz-content-sha256 value. */
plinth_sigv4_payload_t plinth_sigv4_payload_kind(plinth_sv_str_t value);

/*
 * Writes the canonical request of req as signed by auth (its signed header
 * list) into buf. Returns OK with *len the length written, or ERR_BUFFER
 * with *len the size needed (nothing useful in buf), or ERR_URI /
 * ERR_TOO_MANY_PARAMS for a path or query that cannot be canonicalized.
 */
plinth_sigv4_rc_t plinth_sigv4_canonical_request(
    const plinth_sigv4_request_t *req, const plinth_sigv4_auth_t *auth,
    unsigned char *buf, size_t size, size_t *len);

/*
 * "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of creq>" into buf
 * (PLINTH_SIGV4_STS_MAX bytes always suffice); *len as above.
 */
plinth_sigv4_rc_t plinth_sigv4_string_to_sign(plinth_sv_str_t amz_date,
    plinth_sv_str_t scope, const unsigned char *creq, size_t creq_len,
    unsigned char *buf, size_t size, size_t *len);

/*
 * The signing key: HMAC chain "AWS4"+secret -> date -> region -> service ->
 * "aws4_request". Depends only on its inputs, so cache it.
 */
plinth_sigv4_rc_t plinth_sigv4_signing_key(plinth_sv_str_t secret,
    plinth_sv_str_t date, plinth_sv_str_t region, plinth_sv_str_t service,
    unsigned char key[32]);

/* hex(HMAC-SHA256(key, sts)) into hex[64] (not NUL-terminated). */
plinth_sigv4_rc_t plinth_sigv4_sign(const unsigned char key[32],
    const unsigned char *sts, size_t len, unsigned char hex[64]);

/* Constant-time: non-zero if claimed is exactly the 64 bytes of hex. */
int plinth_sigv4_signature_eq(plinth_sv_str_t claimed,
    const unsigned char hex[64]);

/*
 * The whole check: canonical request (in buf, see above for ERR_BUFFER),
 * string to sign, signature, constant-time comparison with
 * auth->signature. OK or ERR_MISMATCH (or a canonicalization error).
 * auth->amz_date must be set. If sig is not NULL the computed signature is
 * stored there (the seed of an aws-chunked chain).
 */
plinth_sigv4_rc_t plinth_sigv4_verify(const plinth_sigv4_request_t *req,
    const plinth_sigv4_auth_t *auth, const unsigned char key[32],
    unsigned char *buf, size_t size, unsigned char sig[64]);

/* SHA-256 helpers (EVP; ctx from EVP_MD_CTX_new(), owned by the caller). */
plinth_sigv4_rc_t plinth_sigv4_sha256(const void *data, size_t len,
    unsigned char out[32]);
plinth_sigv4_rc_t plinth_sigv4_sha256_init(EVP_MD_CTX *ctx);
plinth_sigv4_rc_t plinth_sigv4_sha256_update(EVP_MD_CTX *ctx,
    const void *data, size_t len);
plinth_sigv4_rc_t plinth_sigv4_sha256_final(EVP_MD_CTX *ctx,
    unsigned char out[32]);

/* Lower-case hex of n bytes into out[2n]. */
void plinth_sigv4_hex(const unsigned char *in, size_t n, unsigned char *out);

/*
 * Feeds one trailer header into the hash of the trailer block, in its
 * canonical form "lower-case-name:trimmed value\n". Skips (returns OK)
 * x-amz-trailer-signature, which is not part of what it signs.
 */
plinth_sigv4_rc_t plinth_sigv4_trailer_update(EVP_MD_CTX *ctx,
    plinth_sv_str_t name, plinth_sv_str_t value);

/*
 * "AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n<prev>\n<sha256 of "">\n
 * <hex chunk_sha256>", and the trailer's "AWS4-HMAC-SHA256-TRAILER\n<date>\n
 * <scope>\n<prev>\n<hex trailer_sha256>", into buf (PLINTH_SIGV4_STS_MAX
 * bytes suffice).
 */
plinth_sigv4_rc_t plinth_sigv4_chunk_string_to_sign(plinth_sv_str_t amz_date,
    plinth_sv_str_t scope, plinth_sv_str_t prev,
    const unsigned char chunk_sha256[32], unsigned char *buf, size_t size,
    size_t *len);
plinth_sigv4_rc_t plinth_sigv4_trailer_string_to_sign(
    plinth_sv_str_t amz_date, plinth_sv_str_t scope, plinth_sv_str_t prev,
    const unsigned char trailer_sha256[32], unsigned char *buf, size_t size,
    size_t *len);

/* Starts a chain at the seed signature (64 hex digits). */
plinth_sigv4_rc_t plinth_sigv4_chain_init(plinth_sigv4_chain_t *chain,
    const unsigned char key[32], plinth_sv_str_t amz_date,
    plinth_sv_str_t scope, plinth_sv_str_t seed);

/*
 * Checks a chunk's claimed signature against the SHA-256 of its data (of
 * zero bytes for the final chunk): OK advances the chain, ERR_MISMATCH
 * leaves it. The trailer variant checks x-amz-trailer-signature against
 * the hash from plinth_sigv4_trailer_update().
 */
plinth_sigv4_rc_t plinth_sigv4_chain_chunk(plinth_sigv4_chain_t *chain,
    const unsigned char chunk_sha256[32], plinth_sv_str_t claimed);
plinth_sigv4_rc_t plinth_sigv4_chain_trailer(plinth_sigv4_chain_t *chain,
    const unsigned char trailer_sha256[32], plinth_sv_str_t claimed);

/* The S3 error code for rc (presigned: query-string auth), and a message. */
const char *plinth_sigv4_s3_error(plinth_sigv4_rc_t rc, int presigned);
const char *plinth_sigv4_strerror(plinth_sigv4_rc_t rc);

#endif /* PLINTH_SIGV4_H */
