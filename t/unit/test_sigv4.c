/*
 * Unit test for SigV4 (ngx_plinth_module/ngx_plinth_sigv4.c).
 *
 * Prints TAP: "ok N - ..." / "not ok N - ...", notes as "# ...", the plan
 * "1..N" last; exits 1 if anything failed. Four kinds of checks:
 *
 *   - AWS's Signature Version 4 test suite (t/data/aws-sig-v4-test-suite,
 *     or the directory in argv[1]): each .req is parsed here, and the
 *     canonical request, string to sign and Authorization header must
 *     equal the .creq, .sts and .authz byte for byte. The suite signs a
 *     generic service: the normalize-path cases but get-space need the generic
 *     path rules (S3 never normalizes), and the two x-www-form-urlencoded
 *     cases are inconsistent in the suite itself (see below);
 *   - the worked examples of the Amazon S3 API reference, "Authenticating
 *     Requests (AWS Signature Version 4)": GET object with Range, PUT
 *     object, GET bucket lifecycle, list objects, the presigned URL, the
 *     chunked upload (seed and the three chunk signatures) and the chunked
 *     upload with a signed trailer;
 *   - negative cases: malformed Authorization headers and presigned
 *     queries, bad dates, skew and expiry, wrong signatures, buffers too
 *     small;
 *   - a randomized robustness pass over the parsers and the canonicalizer
 *     (fixed seed; argv[2] picks another), meant to run under ASan/UBSan.
 */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_plinth_sigv4.h"


#define SUITE_DIR      "t/data/aws-sig-v4-test-suite"
#define SUITE_SECRET   "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define S3_SECRET      "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EMPTY_SHA256                                                         \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MAX_HEADERS    32

#define CASE_GENERIC     1   /* needs the generic (non-S3) path rules */
#define CASE_STS_BROKEN  2   /* the suite's .sts does not hash its .creq */


typedef struct {
    char                *buf;
    plinth_sv_str_t      method;
    plinth_sv_str_t      path;
    plinth_sv_str_t      query;
    plinth_sv_str_t      body;
    plinth_sv_header_t   headers[MAX_HEADERS];
    size_t               nheaders;
} test_req_t;


static int       test_count;
static int       test_failed;
static uint64_t  test_rng;
static char      suite_dir[1024] = SUITE_DIR;


static void
ok(int cond, const char *fmt, ...)
{
    va_list  ap;

    test_count++;

    if (!cond) {
        test_failed++;
    }

    printf("%sok %d - ", cond ? "" : "not ", test_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}


static void
diag_text(const char *what, const unsigned char *s, size_t n)
{
    size_t  i;

    printf("#   %s: \"", what);

    for (i = 0; i < n; i++) {
        if (s[i] == '\n') {
            printf("\\n");

        } else if (s[i] < 0x20 || s[i] >= 0x7f) {
            printf("\\x%02x", s[i]);

        } else {
            putchar(s[i]);
        }
    }

    printf("\"\n");
}


static int
same(const char *what, const void *got, size_t glen, const void *want,
    size_t wlen)
{
    if (glen == wlen && memcmp(got, want, glen) == 0) {
        return 1;
    }

    printf("# %s differs\n", what);
    diag_text("got ", got, glen);
    diag_text("want", want, wlen);

    return 0;
}


static plinth_sv_str_t
S(const char *s)
{
    plinth_sv_str_t  v;

    v.data = (const unsigned char *) s;
    v.len = strlen(s);

    return v;
}


static plinth_sv_str_t
SN(const void *s, size_t n)
{
    plinth_sv_str_t  v;

    v.data = s;
    v.len = n;

    return v;
}


static uint64_t
rnd(void)
{
    /* splitmix64 */
    uint64_t  z;

    z = (test_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}


static char *
read_file(const char *dir, const char *name, const char *ext, size_t *len)
{
    char        path[2048];
    char       *buf;
    long        n;
    FILE       *f;
    const char *base;

    base = strrchr(name, '/');
    base = base ? base + 1 : name;

    snprintf(path, sizeof(path), "%s/%s/%s.%s", dir, name, base, ext);

    f = fopen(path, "rb");
    if (f == NULL) {
        printf("# cannot open %s\n", path);
        return NULL;
    }

    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);

    buf = malloc(n + 1);
    if (buf == NULL || fread(buf, 1, n, f) != (size_t) n) {
        fclose(f);
        free(buf);
        return NULL;
    }

    fclose(f);
    buf[n] = '\0';
    *len = n;

    return buf;
}


/*
 * An HTTP request as the suite writes it: request line, "Name:value"
 * lines, continuation lines (leading white space) as further values of the
 * previous header, an empty line, the body. The target may contain spaces
 * (get-space), so the version is what follows the last space.
 */

static int
parse_req(char *buf, size_t len, test_req_t *r)
{
    char  *p, *end, *eol, *sp, *q, *colon;

    memset(r, 0, sizeof(test_req_t));
    r->buf = buf;

    p = buf;
    end = buf + len;

    eol = memchr(p, '\n', end - p);
    if (eol == NULL) {
        eol = end;
    }

    sp = memchr(p, ' ', eol - p);
    if (sp == NULL) {
        return 0;
    }

    r->method = SN(p, sp - p);

    for (q = eol; q > sp && q[-1] != ' '; q--) { /* void */ }

    if (q == sp + 1) {
        return 0;
    }

    r->path = SN(sp + 1, q - 1 - (sp + 1));
    q = memchr(r->path.data, '?', r->path.len);

    if (q) {
        r->query = SN(q + 1, (char *) r->path.data + r->path.len - (q + 1));
        r->path.len = q - (char *) r->path.data;
    }

    p = eol < end ? eol + 1 : end;

    while (p < end) {
        eol = memchr(p, '\n', end - p);
        if (eol == NULL) {
            eol = end;
        }

        if (eol == p) {
            r->body = SN(eol + 1, end - (eol + 1));
            break;
        }

        if (r->nheaders == MAX_HEADERS) {
            return 0;
        }

        if (*p == ' ' || *p == '\t') {
            if (r->nheaders == 0) {
                return 0;
            }

            r->headers[r->nheaders].name = r->headers[r->nheaders - 1].name;
            r->headers[r->nheaders].value = SN(p, eol - p);

        } else {
            colon = memchr(p, ':', eol - p);
            if (colon == NULL) {
                return 0;
            }

            r->headers[r->nheaders].name = SN(p, colon - p);
            r->headers[r->nheaders].value = SN(colon + 1, eol - colon - 1);
        }

        r->nheaders++;
        p = eol < end ? eol + 1 : end;
    }

    return 1;
}


static plinth_sv_str_t
find_header(const test_req_t *r, const char *name)
{
    size_t           i, n;
    plinth_sv_str_t  none;

    n = strlen(name);

    for (i = 0; i < r->nheaders; i++) {
        if (r->headers[i].name.len == n
            && strncasecmp((const char *) r->headers[i].name.data, name, n)
               == 0)
        {
            return r->headers[i].value;
        }
    }

    none.data = NULL;
    none.len = 0;

    return none;
}


/* the line before the last one: the signed header list of a .creq */

static plinth_sv_str_t
creq_signed_line(const char *creq, size_t len)
{
    const char  *end, *p;

    end = creq + len;

    for (p = end; p > creq && p[-1] != '\n'; p--) { /* void */ }

    end = p - 1;

    for (p = end; p > creq && p[-1] != '\n'; p--) { /* void */ }

    return SN(p, end - p);
}


/* the AWS suite */

static void
suite_case(const char *name, unsigned flags)
{
    char                    authz2[1024], want[1024], payload[65];
    unsigned char           md[32], key[32], sig[64], creq[4096];
    unsigned char           sts[PLINTH_SIGV4_STS_MAX];
    char                   *req_buf, *creq_f, *sts_f, *authz_f;
    size_t                  rlen, clen, slen, alen, len, len2;
    test_req_t              r;
    plinth_sv_str_t         amz, list;
    plinth_sigv4_auth_t     auth, auth_c;
    plinth_sigv4_rc_t       rc;
    plinth_sigv4_request_t  req;

    req_buf = read_file(suite_dir, name, "req", &rlen);
    creq_f = read_file(suite_dir, name, "creq", &clen);
    sts_f = read_file(suite_dir, name, "sts", &slen);
    authz_f = read_file(suite_dir, name, "authz", &alen);

    if (!req_buf || !creq_f || !sts_f || !authz_f
        || !parse_req(req_buf, rlen, &r))
    {
        ok(0, "suite %s: read and parse the case", name);
        goto done;
    }

    rc = plinth_sigv4_parse_authorization(SN(authz_f, alen), &auth);
    ok(rc == PLINTH_SIGV4_OK, "suite %s: .authz parses", name);

    if (rc != PLINTH_SIGV4_OK) {
        goto done;
    }

    amz = find_header(&r, "X-Amz-Date");
    rc = plinth_sigv4_set_date(&auth, amz);

    plinth_sigv4_sha256(r.body.data, r.body.len, md);
    plinth_sigv4_hex(md, 32, (unsigned char *) payload);
    payload[64] = '\0';

    memset(&req, 0, sizeof(req));
    req.method = r.method;
    req.path = r.path;
    req.query = r.query;
    req.headers = r.headers;
    req.nheaders = r.nheaders;
    req.payload_hash = SN(payload, 64);
    req.flags = (flags & CASE_GENERIC) ? PLINTH_SIGV4_GENERIC : 0;

    /* the .creq, signed over its own header list */

    list = creq_signed_line(creq_f, clen);
    snprintf(authz2, sizeof(authz2),
             "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/%.*s, "
             "SignedHeaders=%.*s, Signature=%.*s",
             (int) auth.scope.len, auth.scope.data, (int) list.len,
             list.data, 64, auth.signature.data);

    if (plinth_sigv4_parse_authorization(S(authz2), &auth_c)
        != PLINTH_SIGV4_OK)
    {
        ok(0, "suite %s: .creq signed list parses", name);
        goto done;
    }

    rc = plinth_sigv4_canonical_request(&req, &auth_c, creq, sizeof(creq),
                                        &len);
    ok(rc == PLINTH_SIGV4_OK
       && same("creq", creq, len, creq_f, clen),
       "suite %s: canonical request = .creq%s", name,
       (flags & CASE_GENERIC) ? " (generic rules)" : "");

    /* the .sts and .authz, over the .authz's header list */

    rc = plinth_sigv4_canonical_request(&req, &auth, creq, sizeof(creq),
                                        &len);
    rc |= plinth_sigv4_string_to_sign(auth.amz_date, auth.scope, creq, len,
                                      sts, sizeof(sts), &len2);
    plinth_sigv4_signing_key(S(SUITE_SECRET), auth.date, auth.region,
                             auth.service, key);

    if (flags & CASE_STS_BROKEN) {
        plinth_sigv4_sign(key, (unsigned char *) sts_f, slen, sig);
        ok(memcmp(sig, auth.signature.data, 64) == 0,
           "suite %s: HMAC of .sts = .authz signature (the suite's .sts "
           "does not hash its .creq)", name);
        goto done;
    }

    ok(rc == PLINTH_SIGV4_OK && same("sts", sts, len2, sts_f, slen),
       "suite %s: string to sign = .sts", name);

    plinth_sigv4_sign(key, sts, len2, sig);
    snprintf(want, sizeof(want),
             "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/%.*s, "
             "SignedHeaders=%.*s, Signature=%.64s",
             (int) auth.scope.len, auth.scope.data,
             (int) auth.signed_headers.len, auth.signed_headers.data, sig);
    ok(same("authz", want, strlen(want), authz_f, alen),
       "suite %s: Authorization = .authz", name);

    rc = plinth_sigv4_verify(&req, &auth, key, creq, sizeof(creq), NULL);
    ok(rc == PLINTH_SIGV4_OK, "suite %s: verify accepts it", name);

done:

    free(req_buf);
    free(creq_f);
    free(sts_f);
    free(authz_f);
}


/* S3 rules on the normalize-path cases: the path is kept as sent */

static void
suite_s3_keeps_path(const char *name)
{
    unsigned char           creq[4096];
    char                   *req_buf, *creq_f, *authz_f;
    size_t                  rlen, clen, alen, len;
    test_req_t              r;
    plinth_sigv4_auth_t     auth;
    plinth_sigv4_request_t  req;

    req_buf = read_file(suite_dir, name, "req", &rlen);
    creq_f = read_file(suite_dir, name, "creq", &clen);
    authz_f = read_file(suite_dir, name, "authz", &alen);

    if (req_buf && creq_f && authz_f && parse_req(req_buf, rlen, &r)
        && plinth_sigv4_parse_authorization(SN(authz_f, alen), &auth)
           == PLINTH_SIGV4_OK)
    {
        memset(&req, 0, sizeof(req));
        req.method = r.method;
        req.path = r.path;
        req.headers = r.headers;
        req.nheaders = r.nheaders;
        req.payload_hash = S(EMPTY_SHA256);

        plinth_sigv4_canonical_request(&req, &auth, creq, sizeof(creq),
                                       &len);

        ok(len > r.path.len + 5
           && memcmp(creq + 4, r.path.data, r.path.len) == 0
           && !(len == clen && memcmp(creq, creq_f, len) == 0),
           "suite %s: S3 rules keep the path \"%.*s\" (not normalized)",
           name, (int) r.path.len, r.path.data);

    } else {
        ok(0, "suite %s: read", name);
    }

    free(req_buf);
    free(creq_f);
    free(authz_f);
}


static void
test_suite(void)
{
    size_t  i;

    static const struct {
        const char  *name;
        unsigned     flags;
    } cases[] = {
        { "get-header-key-duplicate", 0 },
        { "get-header-value-multiline", 0 },
        { "get-header-value-order", 0 },
        { "get-header-value-trim", 0 },
        { "get-unreserved", 0 },
        { "get-utf8", 0 },
        { "get-vanilla", 0 },
        { "get-vanilla-empty-query-key", 0 },
        { "get-vanilla-query", 0 },
        { "get-vanilla-query-order-key", 0 },
        { "get-vanilla-query-order-key-case", 0 },
        { "get-vanilla-query-order-value", 0 },
        { "get-vanilla-query-unreserved", 0 },
        { "get-vanilla-utf8-query", 0 },
        { "post-header-key-case", 0 },
        { "post-header-key-sort", 0 },
        { "post-header-value-case", 0 },
        { "post-sts-token/post-sts-header-after", 0 },
        { "post-sts-token/post-sts-header-before", 0 },
        { "post-vanilla", 0 },
        { "post-vanilla-empty-query-value", 0 },
        { "post-vanilla-query", 0 },
        { "post-x-www-form-urlencoded", 0 },
        { "post-x-www-form-urlencoded-parameters", CASE_STS_BROKEN },
        { "normalize-path/get-space", 0 },
        { "normalize-path/get-space", CASE_GENERIC },
        { "normalize-path/get-relative", CASE_GENERIC },
        { "normalize-path/get-relative-relative", CASE_GENERIC },
        { "normalize-path/get-slash", CASE_GENERIC },
        { "normalize-path/get-slash-dot-slash", CASE_GENERIC },
        { "normalize-path/get-slash-pointless-dot", CASE_GENERIC },
        { "normalize-path/get-slashes", CASE_GENERIC },
    };

    static const char  *s3_kept[] = {
        "normalize-path/get-relative",
        "normalize-path/get-relative-relative",
        "normalize-path/get-slash",
        "normalize-path/get-slash-dot-slash",
        "normalize-path/get-slash-pointless-dot",
        "normalize-path/get-slashes",
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        suite_case(cases[i].name, cases[i].flags);
    }

    for (i = 0; i < sizeof(s3_kept) / sizeof(s3_kept[0]); i++) {
        suite_s3_keeps_path(s3_kept[i]);
    }
}


/* the S3 API reference examples */

typedef struct {
    const char  *name;
    const char  *method;
    const char  *path;
    const char  *query;
    const char  *headers;      /* "name:value\n" ... */
    const char  *signed_list;
    const char  *payload;
    const char  *creq_sha256;  /* NULL: not published */
    const char  *signature;
} s3_example_t;


static size_t
split_headers(const char *text, plinth_sv_header_t *h, size_t max)
{
    size_t       n;
    const char  *p, *eol, *colon;

    n = 0;

    for (p = text; *p && n < max; p = eol + 1) {
        eol = strchr(p, '\n');
        colon = strchr(p, ':');
        h[n].name = SN(p, colon - p);
        h[n].value = SN(colon + 1, eol - colon - 1);
        n++;
    }

    return n;
}


static void
s3_example(const s3_example_t *ex, unsigned char seed[64])
{
    char                    authz[1024];
    unsigned char           key[32], md[32], hex[64], sig[64], creq[4096];
    size_t                  len;
    plinth_sigv4_auth_t     auth;
    plinth_sigv4_rc_t       rc;
    plinth_sv_header_t      h[16];
    plinth_sigv4_request_t  req;

    snprintf(authz, sizeof(authz),
             "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
             "us-east-1/s3/aws4_request,SignedHeaders=%s,Signature=%s",
             ex->signed_list, ex->signature);

    rc = plinth_sigv4_parse_authorization(S(authz), &auth);
    rc |= plinth_sigv4_set_date(&auth, S("20130524T000000Z"));

    memset(&req, 0, sizeof(req));
    req.method = S(ex->method);
    req.path = S(ex->path);
    req.query = S(ex->query);
    req.headers = h;
    req.nheaders = split_headers(ex->headers, h, 16);
    req.payload_hash = S(ex->payload);

    if (ex->creq_sha256) {
        rc |= plinth_sigv4_canonical_request(&req, &auth, creq, sizeof(creq),
                                             &len);
        plinth_sigv4_sha256(creq, len, md);
        plinth_sigv4_hex(md, 32, hex);
        ok(rc == PLINTH_SIGV4_OK
           && same("creq sha256", hex, 64, ex->creq_sha256, 64),
           "S3 example %s: canonical request hash %.8s...", ex->name,
           ex->creq_sha256);
    }

    plinth_sigv4_signing_key(S(S3_SECRET), auth.date, auth.region,
                             auth.service, key);
    rc = plinth_sigv4_verify(&req, &auth, key, creq, sizeof(creq), sig);
    ok(rc == PLINTH_SIGV4_OK, "S3 example %s: signature %.8s... verifies",
       ex->name, ex->signature);

    if (rc != PLINTH_SIGV4_OK) {
        same("signature", sig, 64, ex->signature, 64);
    }

    if (seed) {
        memcpy(seed, sig, 64);
    }
}


static void
test_s3_examples(void)
{
    size_t                  i, len;
    unsigned char           key[32], hex[64], md[32], sig[64], creq[4096];
    unsigned char           sts[PLINTH_SIGV4_STS_MAX], seed[64];
    unsigned char          *chunk;
    EVP_MD_CTX             *ctx;
    plinth_sigv4_auth_t     auth;
    plinth_sigv4_chain_t    chain;
    plinth_sigv4_rc_t       rc;
    plinth_sigv4_request_t  req;
    plinth_sv_header_t      h[2];

    static const s3_example_t  examples[] = {
        { "GET object", "GET", "/test.txt", "",
          "host:examplebucket.s3.amazonaws.com\n"
          "range:bytes=0-9\n"
          "x-amz-content-sha256:" EMPTY_SHA256 "\n"
          "x-amz-date:20130524T000000Z\n",
          "host;range;x-amz-content-sha256;x-amz-date", EMPTY_SHA256,
          "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
          "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41" },

        { "PUT object", "PUT", "/test$file.text", "",
          "Date:Fri, 24 May 2013 00:00:00 GMT\n"
          "Host:examplebucket.s3.amazonaws.com\n"
          "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e9"
          "9e42034a8b803f8b072\n"
          "x-amz-date:20130524T000000Z\n"
          "x-amz-storage-class:REDUCED_REDUNDANCY\n",
          "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
          "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
          "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
          "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd" },

        { "PUT object (key sent encoded)", "PUT", "/test%24file.text", "",
          "date:Fri, 24 May 2013 00:00:00 GMT\n"
          "host:examplebucket.s3.amazonaws.com\n"
          "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e9"
          "9e42034a8b803f8b072\n"
          "x-amz-date:20130524T000000Z\n"
          "x-amz-storage-class:REDUCED_REDUNDANCY\n",
          "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
          "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
          NULL,
          "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd" },

        { "GET bucket lifecycle", "GET", "/", "lifecycle",
          "host:examplebucket.s3.amazonaws.com\n"
          "x-amz-content-sha256:" EMPTY_SHA256 "\n"
          "x-amz-date:20130524T000000Z\n",
          "host;x-amz-content-sha256;x-amz-date", EMPTY_SHA256,
          "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
          "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543" },

        { "list objects", "GET", "/", "max-keys=2&prefix=J",
          "host:examplebucket.s3.amazonaws.com\n"
          "x-amz-content-sha256:" EMPTY_SHA256 "\n"
          "x-amz-date:20130524T000000Z\n",
          "host;x-amz-content-sha256;x-amz-date", EMPTY_SHA256,
          "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
          "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7" },

        { "list objects (query out of order)", "GET", "/",
          "prefix=J&max-keys=2",
          "host:examplebucket.s3.amazonaws.com\n"
          "x-amz-content-sha256:" EMPTY_SHA256 "\n"
          "x-amz-date:20130524T000000Z\n",
          "host;x-amz-content-sha256;x-amz-date", EMPTY_SHA256, NULL,
          "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7" },

        { "chunked upload seed", "PUT", "/examplebucket/chunkObject.txt", "",
          "Host:s3.amazonaws.com\n"
          "x-amz-date:20130524T000000Z\n"
          "x-amz-storage-class:REDUCED_REDUNDANCY\n"
          "x-amz-content-sha256:STREAMING-AWS4-HMAC-SHA256-PAYLOAD\n"
          "Content-Encoding:aws-chunked\n"
          "x-amz-decoded-content-length:66560\n"
          "Content-Length:66824\n",
          "content-encoding;content-length;host;x-amz-content-sha256;"
          "x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
          "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
          "cee3fed04b70f867d036f722359b0b1f2f0e5dc0efadbc082b76c4c60e316455",
          "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9" },
    };

    static const char  *chunk_sigs[] = {
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    };

    static const s3_example_t  trailer_seed = {
        "chunked upload with trailer seed", "PUT",
        "/examplebucket/chunkObject.txt", "",
        "host:s3.amazonaws.com\n"
        "x-amz-date:20130524T000000Z\n"
        "x-amz-storage-class:REDUCED_REDUNDANCY\n"
        "x-amz-content-sha256:STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER\n"
        "content-encoding:aws-chunked\n"
        "x-amz-decoded-content-length:66560\n"
        "x-amz-trailer:x-amz-checksum-crc32c\n"
        "content-length:66824\n",
        "content-encoding;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "44d48b8c2f70eae815a0198cc73d7a546a73a93359c070abbaa5e6c7de112559",
        "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
    };

    static const char  *trailer_sigs[] = {
        "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
        "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
        "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
    };

    static const char  chunk1_sts[] =
        "AWS4-HMAC-SHA256-PAYLOAD\n"
        "20130524T000000Z\n"
        "20130524/us-east-1/s3/aws4_request\n"
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9\n"
        EMPTY_SHA256 "\n"
        "bf718b6f653bebc184e1479f1935b8da974d701b893afcf49e701f3e2f9f9c5a";

    plinth_sigv4_signing_key(S(S3_SECRET), S("20130524"), S("us-east-1"),
                             S("s3"), key);
    plinth_sigv4_hex(key, 32, hex);
    ok(same("key", hex, 64, "dbb893acc010964918f1fd433add87c70e8b0db6be30c1f"
            "beafefa5ec6ba8378", 64),
       "S3 examples: signing key for 20130524/us-east-1/s3");

    for (i = 0; i < sizeof(examples) / sizeof(examples[0]); i++) {
        s3_example(&examples[i], i == 6 ? seed : NULL);
    }

    /* the presigned URL */

    {
        unsigned char  scratch[512];
        const char    *q =
            "X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1"
            "%2Fs3%2Faws4_request"
            "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
            "&X-Amz-SignedHeaders=host"
            "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c2659"
            "57d157751f604d404";

        ok(plinth_sigv4_is_presigned(S(q))
           && !plinth_sigv4_is_presigned(S("max-keys=2&prefix=J")),
           "S3 example presigned: recognized as presigned");

        rc = plinth_sigv4_parse_presigned(S(q), scratch, sizeof(scratch),
                                          &auth);
        ok(rc == PLINTH_SIGV4_OK && auth.presigned
           && same("ak", auth.access_key.data, auth.access_key.len,
                   "AKIAIOSFODNN7EXAMPLE", 20)
           && same("scope", auth.scope.data, auth.scope.len,
                   "20130524/us-east-1/s3/aws4_request", 34)
           && auth.expires == 86400 && auth.time == 1369353600,
           "S3 example presigned: query parses (credential decoded)");

        h[0].name = S("Host");
        h[0].value = S("examplebucket.s3.amazonaws.com");

        memset(&req, 0, sizeof(req));
        req.method = S("GET");
        req.path = S("/test.txt");
        req.query = S(q);
        req.headers = h;
        req.nheaders = 1;
        req.payload_hash = S("UNSIGNED-PAYLOAD");
        req.flags = PLINTH_SIGV4_PRESIGNED;

        rc = plinth_sigv4_canonical_request(&req, &auth, creq, sizeof(creq),
                                            &len);
        plinth_sigv4_sha256(creq, len, md);
        plinth_sigv4_hex(md, 32, hex);
        ok(rc == PLINTH_SIGV4_OK
           && same("creq hash", hex, 64, "3bfa292879f6447bbcda7001decf97f4a5"
                   "4dc650c8942174ae0a9121cf58ad04", 64),
           "S3 example presigned: canonical request hash 3bfa2928...");

        rc = plinth_sigv4_verify(&req, &auth, key, creq, sizeof(creq), NULL);
        ok(rc == PLINTH_SIGV4_OK,
           "S3 example presigned: signature aeeed9bb... verifies");

        ok(plinth_sigv4_check_presigned_time(&auth, 1369353600 + 86400)
           == PLINTH_SIGV4_OK
           && plinth_sigv4_check_presigned_time(&auth, 1369353600)
              == PLINTH_SIGV4_OK
           && plinth_sigv4_check_presigned_time(&auth, 1369353600 - 900)
              == PLINTH_SIGV4_OK,
           "S3 example presigned: valid from -15 min to +86400 s");
        ok(plinth_sigv4_check_presigned_time(&auth, 1369353600 + 86401)
           == PLINTH_SIGV4_ERR_EXPIRED,
           "S3 example presigned: expired one second after X-Amz-Expires");
        ok(plinth_sigv4_check_presigned_time(&auth, 1369353600 - 901)
           == PLINTH_SIGV4_ERR_NOT_YET_VALID,
           "S3 example presigned: not valid yet 15 min before X-Amz-Date");

        req.flags = 0;
        rc = plinth_sigv4_verify(&req, &auth, key, creq, sizeof(creq), NULL);
        ok(rc == PLINTH_SIGV4_ERR_MISMATCH,
           "S3 example presigned: X-Amz-Signature must be left out");
    }

    /* the chunked upload: 64 KiB + 1 KiB of 'a', then the empty chunk */

    ok(same("seed", seed, 64, examples[6].signature, 64),
       "S3 example chunked: verify returns the seed signature");

    rc = plinth_sigv4_chain_init(&chain, key, S("20130524T000000Z"),
                                 S("20130524/us-east-1/s3/aws4_request"),
                                 SN(seed, 64));
    ok(rc == PLINTH_SIGV4_OK, "S3 example chunked: chain starts at seed");

    chunk = malloc(65536);
    memset(chunk, 'a', 65536);

    plinth_sigv4_sha256(chunk, 65536, md);
    plinth_sigv4_chunk_string_to_sign(S("20130524T000000Z"),
                                      S("20130524/us-east-1/s3/aws4_request"),
                                      SN(seed, 64), md, sts, sizeof(sts),
                                      &len);
    ok(same("chunk sts", sts, len, chunk1_sts, sizeof(chunk1_sts) - 1),
       "S3 example chunked: string to sign of the 64 KiB chunk");

    ctx = EVP_MD_CTX_new();

    for (i = 0; i < 3; i++) {
        size_t  n = i == 0 ? 65536 : i == 1 ? 1024 : 0;

        /* hash as a caller would, in pieces */
        plinth_sigv4_sha256_init(ctx);
        plinth_sigv4_sha256_update(ctx, chunk, n / 3);
        plinth_sigv4_sha256_update(ctx, chunk + n / 3, n - n / 3);
        plinth_sigv4_sha256_final(ctx, md);

        rc = plinth_sigv4_chain_chunk(&chain, md, S(chunk_sigs[i]));
        ok(rc == PLINTH_SIGV4_OK,
           "S3 example chunked: chunk %zu (%zu bytes) signature %.8s...",
           i + 1, n, chunk_sigs[i]);
    }

    /* a replayed or wrong signature fails and does not advance the chain */

    rc = plinth_sigv4_chain_chunk(&chain, md, S(chunk_sigs[2]));
    ok(rc == PLINTH_SIGV4_ERR_MISMATCH,
       "S3 example chunked: a replayed chunk signature fails");

    /* with a signed trailer */

    s3_example(&trailer_seed, seed);

    plinth_sigv4_chain_init(&chain, key, S("20130524T000000Z"),
                            S("20130524/us-east-1/s3/aws4_request"),
                            SN(seed, 64));

    for (i = 0; i < 3; i++) {
        size_t  n = i == 0 ? 65536 : i == 1 ? 1024 : 0;

        plinth_sigv4_sha256(chunk, n, md);

        if (i == 1) {
            rc = plinth_sigv4_chain_chunk(&chain, md, S(trailer_sigs[0]));
            ok(rc == PLINTH_SIGV4_ERR_MISMATCH,
               "S3 example trailer: wrong chunk signature fails");
        }

        rc = plinth_sigv4_chain_chunk(&chain, md, S(trailer_sigs[i]));
        ok(rc == PLINTH_SIGV4_OK,
           "S3 example trailer: chunk %zu signature %.8s...", i + 1,
           trailer_sigs[i]);
    }

    plinth_sigv4_sha256_init(ctx);
    plinth_sigv4_trailer_update(ctx, S("x-amz-checksum-crc32c"),
                                S("sOO8/Q=="));
    plinth_sigv4_trailer_update(ctx, S("x-amz-trailer-signature"),
                                S("d81f82fc3505edab99d459891051a732e8730629a"
                                  "2e4a59689829ca17fe2e435"));
    plinth_sigv4_sha256_final(ctx, md);

    rc = plinth_sigv4_chain_trailer(&chain, md,
                                    S("d81f82fc3505edab99d459891051a732e873"
                                      "0629a2e4a59689829ca17fe2e435"));
    ok(rc == PLINTH_SIGV4_OK,
       "S3 example trailer: x-amz-trailer-signature d81f82fc...");

    /* the same trailer, name in capitals and value padded: same hash */

    plinth_sigv4_sha256_init(ctx);
    plinth_sigv4_trailer_update(ctx, S("X-Amz-Checksum-CRC32C"),
                                S("  sOO8/Q== "));
    plinth_sigv4_sha256_final(ctx, sig);
    ok(memcmp(sig, md, 32) == 0,
       "S3 example trailer: canonical form lower-cases and trims");

    plinth_sigv4_sha256_init(ctx);
    plinth_sigv4_trailer_update(ctx, S("x-amz-checksum-crc32c"),
                                S("sOO8/A=="));
    plinth_sigv4_sha256_final(ctx, md);
    memcpy(chain.prev, trailer_sigs[2], 64);
    rc = plinth_sigv4_chain_trailer(&chain, md,
                                    S("d81f82fc3505edab99d459891051a732e873"
                                      "0629a2e4a59689829ca17fe2e435"));
    ok(rc == PLINTH_SIGV4_ERR_MISMATCH,
       "S3 example trailer: a changed checksum fails the signature");

    EVP_MD_CTX_free(ctx);
    free(chunk);
}


/* negative and edge cases */

static void
test_authorization(void)
{
    char                 buf[4096];
    size_t               i;
    plinth_sigv4_auth_t  auth;
    plinth_sigv4_rc_t    rc;

#define CRED                                                                  \
    "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
#define SH   "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"
#define SIG  "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd9103" \
             "9c6036bdb41"

    static const struct {
        const char         *value;
        plinth_sigv4_rc_t   rc;
    } cases[] = {
        { "AWS4-HMAC-SHA256 " CRED ", " SH ", " SIG, PLINTH_SIGV4_OK },
        { "AWS4-HMAC-SHA256 " CRED "," SH "," SIG, PLINTH_SIGV4_OK },
        { "AWS4-HMAC-SHA256   " CRED ",   " SH ",  " SIG, PLINTH_SIGV4_OK },
        { "AWS4-HMAC-SHA256 " SIG ", " CRED ", " SH, PLINTH_SIGV4_OK },
        { "", PLINTH_SIGV4_ERR_UNSUPPORTED_ALGORITHM },
        { "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
          PLINTH_SIGV4_ERR_UNSUPPORTED_ALGORITHM },
        { "AWS4-HMAC-SHA512 " CRED ", " SH ", " SIG,
          PLINTH_SIGV4_ERR_UNSUPPORTED_ALGORITHM },
        { "aws4-hmac-sha256 " CRED ", " SH ", " SIG,
          PLINTH_SIGV4_ERR_UNSUPPORTED_ALGORITHM },
        { "AWS4-HMAC-SHA256," CRED ", " SH ", " SIG,
          PLINTH_SIGV4_ERR_UNSUPPORTED_ALGORITHM },
        { "AWS4-HMAC-SHA256", PLINTH_SIGV4_ERR_MISSING_COMPONENT },
        { "AWS4-HMAC-SHA256 ", PLINTH_SIGV4_ERR_MISSING_COMPONENT },
        { "AWS4-HMAC-SHA256 " CRED ", " SH,
          PLINTH_SIGV4_ERR_MISSING_COMPONENT },
        { "AWS4-HMAC-SHA256 " CRED ", " SIG,
          PLINTH_SIGV4_ERR_MISSING_COMPONENT },
        { "AWS4-HMAC-SHA256 " SH ", " SIG, PLINTH_SIGV4_ERR_MISSING_COMPONENT },
        { "AWS4-HMAC-SHA256 " CRED ", " CRED ", " SH ", " SIG,
          PLINTH_SIGV4_ERR_MALFORMED },
        { "AWS4-HMAC-SHA256 " CRED ", " SH ", " SIG ", Foo=bar",
          PLINTH_SIGV4_ERR_MALFORMED },
        { "AWS4-HMAC-SHA256 " CRED ", " SH ", " SIG ",",
          PLINTH_SIGV4_ERR_MALFORMED },
        { "AWS4-HMAC-SHA256 " CRED ", " SH ", " SIG " ",
          PLINTH_SIGV4_ERR_MALFORMED },
        { "AWS4-HMAC-SHA256 " CRED " , " SH ", " SIG,
          PLINTH_SIGV4_ERR_MALFORMED },
        { "AWS4-HMAC-SHA256 Credential =AKIAIOSFODNN7EXAMPLE/20130524/us-east"
          "-1/s3/aws4_request, " SH ", " SIG, PLINTH_SIGV4_ERR_MALFORMED },
        { "AWS4-HMAC-SHA256 credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east"
          "-1/s3/aws4_request, " SH ", " SIG, PLINTH_SIGV4_ERR_MALFORMED },
        { "AWS4-HMAC-SHA256 " CRED ",, " SH ", " SIG,
          PLINTH_SIGV4_ERR_MALFORMED },
        { "AWS4-HMAC-SHA256 Credential, " SH ", " SIG,
          PLINTH_SIGV4_ERR_MALFORMED },
        { "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1"
          "/s3, " SH ", " SIG, PLINTH_SIGV4_ERR_CREDENTIAL },
        { "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1"
          "/s3/aws4_request/x, " SH ", " SIG, PLINTH_SIGV4_ERR_CREDENTIAL },
        { "AWS4-HMAC-SHA256 Credential=/20130524/us-east-1/s3/aws4_request, "
          SH ", " SIG, PLINTH_SIGV4_ERR_CREDENTIAL },
        { "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130230/us-east-1"
          "/s3/aws4_request, " SH ", " SIG, PLINTH_SIGV4_ERR_CREDENTIAL },
        { "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/2013052/us-east-1"
          "/s3/aws4_request, " SH ", " SIG, PLINTH_SIGV4_ERR_CREDENTIAL },
        { "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524//s3"
          "/aws4_request, " SH ", " SIG, PLINTH_SIGV4_ERR_CREDENTIAL },
        { "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1"
          "/s3/aws4_requests, " SH ", " SIG, PLINTH_SIGV4_ERR_CREDENTIAL },
        { "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us east"
          "/s3/aws4_request, " SH ", " SIG, PLINTH_SIGV4_ERR_MALFORMED },
        { "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=Host;x-amz-date, " SIG,
          PLINTH_SIGV4_ERR_SIGNED_HEADERS },
        { "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=, " SIG,
          PLINTH_SIGV4_ERR_SIGNED_HEADERS },
        { "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host;;x-amz-date, " SIG,
          PLINTH_SIGV4_ERR_SIGNED_HEADERS },
        { "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host;x-amz-date;, " SIG,
          PLINTH_SIGV4_ERR_SIGNED_HEADERS },
        { "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host;host, " SIG,
          PLINTH_SIGV4_ERR_SIGNED_HEADERS },
        { "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=x-amz-date, " SIG,
          PLINTH_SIGV4_ERR_SIGNED_HEADERS },
        { "AWS4-HMAC-SHA256 " CRED ", SignedHeaders=host:x, " SIG,
          PLINTH_SIGV4_ERR_SIGNED_HEADERS },
        { "AWS4-HMAC-SHA256 " CRED ", " SH ", Signature=f0e8bdb87c964420e857b"
          "d35b5d6ed310bd44f0170aba48dd91039c6036bdb4",
          PLINTH_SIGV4_ERR_SIGNATURE_FORMAT },
        { "AWS4-HMAC-SHA256 " CRED ", " SH ", Signature=F0E8BDB87C964420E857B"
          "D35B5D6ED310BD44F0170ABA48DD91039C6036BDB41",
          PLINTH_SIGV4_ERR_SIGNATURE_FORMAT },
        { "AWS4-HMAC-SHA256 " CRED ", " SH ", Signature=g0e8bdb87c964420e857b"
          "d35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
          PLINTH_SIGV4_ERR_SIGNATURE_FORMAT },
        { "AWS4-HMAC-SHA256 " CRED ", " SH ", Signature=",
          PLINTH_SIGV4_ERR_SIGNATURE_FORMAT },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rc = plinth_sigv4_parse_authorization(S(cases[i].value), &auth);
        ok(rc == cases[i].rc, "authorization %zu -> %s (%s): \"%.60s%s\"",
           i, plinth_sigv4_strerror(cases[i].rc),
           rc == PLINTH_SIGV4_OK ? "ok"
                                 : plinth_sigv4_s3_error(rc, 0),
           cases[i].value, strlen(cases[i].value) > 60 ? "..." : "");
    }

    rc = plinth_sigv4_parse_authorization(S(cases[0].value), &auth);
    ok(rc == PLINTH_SIGV4_OK
       && same("ak", auth.access_key.data, auth.access_key.len,
               "AKIAIOSFODNN7EXAMPLE", 20)
       && same("date", auth.date.data, auth.date.len, "20130524", 8)
       && same("region", auth.region.data, auth.region.len, "us-east-1", 9)
       && same("service", auth.service.data, auth.service.len, "s3", 2)
       && auth.nheaders == 4
       && same("h1", auth.headers[1].data, auth.headers[1].len, "range", 5)
       && same("sig", auth.signature.data, auth.signature.len,
               "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036b"
               "db41", 64),
       "authorization: fields extracted");

    /* 64 signed headers are fine, 65 are not */

    for (i = 65; i >= 64; i--) {
        size_t  k, n;

        n = snprintf(buf, sizeof(buf), "AWS4-HMAC-SHA256 " CRED ", "
                     "SignedHeaders=host");

        for (k = 1; k < i; k++) {
            n += snprintf(buf + n, sizeof(buf) - n, ";x-h%zu", k);
        }

        snprintf(buf + n, sizeof(buf) - n, ", " SIG);
        rc = plinth_sigv4_parse_authorization(S(buf), &auth);
        ok(rc == (i == 64 ? PLINTH_SIGV4_OK
                          : PLINTH_SIGV4_ERR_TOO_MANY_HEADERS),
           "authorization: %zu signed headers -> %s", i,
           plinth_sigv4_strerror(rc));
    }

    ok(strcmp(plinth_sigv4_s3_error(PLINTH_SIGV4_ERR_CREDENTIAL, 0),
              "AuthorizationHeaderMalformed") == 0
       && strcmp(plinth_sigv4_s3_error(PLINTH_SIGV4_ERR_CREDENTIAL, 1),
                 "AuthorizationQueryParametersError") == 0
       && strcmp(plinth_sigv4_s3_error(
                     PLINTH_SIGV4_ERR_UNSUPPORTED_ALGORITHM, 0),
                 "InvalidArgument") == 0
       && strcmp(plinth_sigv4_s3_error(PLINTH_SIGV4_ERR_MISMATCH, 0),
                 "SignatureDoesNotMatch") == 0
       && strcmp(plinth_sigv4_s3_error(PLINTH_SIGV4_ERR_SKEWED, 0),
                 "RequestTimeTooSkewed") == 0
       && strcmp(plinth_sigv4_s3_error(PLINTH_SIGV4_ERR_EXPIRED, 1),
                 "AccessDenied") == 0,
       "authorization: S3 error codes");

#undef CRED
#undef SH
#undef SIG
}


static void
test_dates(void)
{
    size_t               i;
    int64_t              t;
    plinth_sigv4_auth_t  auth;
    plinth_sigv4_rc_t    rc;

    static const struct {
        const char  *s;
        int64_t      t;         /* -1: invalid */
    } cases[] = {
        { "20130524T000000Z", 1369353600 },
        { "19700101T000000Z", 0 },
        { "20150830T123600Z", 1440938160 },
        { "20160229T235959Z", 1456790399 },
        { "20000229T000000Z", 951782400 },
        { "20991231T235959Z", 4102444799LL },
        { "21000229T000000Z", -1 },
        { "20150229T000000Z", -1 },
        { "20130431T000000Z", -1 },
        { "20131301T000000Z", -1 },
        { "20130001T000000Z", -1 },
        { "20130500T000000Z", -1 },
        { "20130524T240000Z", -1 },
        { "20130524T236000Z", -1 },
        { "20130524T235960Z", -1 },
        { "20130524t000000Z", -1 },
        { "20130524T000000z", -1 },
        { "20130524T000000", -1 },
        { "20130524T0000000Z", -1 },
        { "2013-05-24T00:00:00Z", -1 },
        { "2013052AT000000Z", -1 },
        { "20130524T00000AZ", -1 },
        { "+0130524T000000Z", -1 },
        { "", -1 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t = 12345;
        rc = plinth_sigv4_parse_date(S(cases[i].s), &t);
        ok(cases[i].t < 0 ? rc == PLINTH_SIGV4_ERR_DATE
                          : rc == PLINTH_SIGV4_OK && t == cases[i].t,
           "date \"%s\" -> %s%" PRId64, cases[i].s,
           cases[i].t < 0 ? "invalid" : "", cases[i].t < 0 ? 0 : t);
    }

    plinth_sigv4_parse_authorization(S("AWS4-HMAC-SHA256 Credential=AKID/"
        "20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature="
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
        &auth);

    ok(plinth_sigv4_set_date(&auth, S("20130525T000000Z"))
       == PLINTH_SIGV4_ERR_DATE_MISMATCH,
       "x-amz-date on another day than the credential scope");
    ok(plinth_sigv4_set_date(&auth, S("2013-05-24")) == PLINTH_SIGV4_ERR_DATE
       && plinth_sigv4_s3_error(PLINTH_SIGV4_ERR_DATE, 0)[0] == 'A',
       "malformed x-amz-date -> AccessDenied");
    ok(plinth_sigv4_set_date(&auth, S("20130524T235959Z")) == PLINTH_SIGV4_OK
       && auth.time == 1369353600 + 86399,
       "x-amz-date on the scope's day");

    ok(plinth_sigv4_check_skew(1000000, 1000000 + 900) == PLINTH_SIGV4_OK
       && plinth_sigv4_check_skew(1000000, 1000000 - 900) == PLINTH_SIGV4_OK
       && plinth_sigv4_check_skew(1000000, 1000000) == PLINTH_SIGV4_OK,
       "skew: up to 15 minutes either way");
    ok(plinth_sigv4_check_skew(1000000, 1000000 + 901)
       == PLINTH_SIGV4_ERR_SKEWED
       && plinth_sigv4_check_skew(1000000, 1000000 - 901)
          == PLINTH_SIGV4_ERR_SKEWED,
       "skew: 15 minutes and 1 second -> RequestTimeTooSkewed");
}


static void
test_presigned(void)
{
    size_t               i;
    unsigned char        scratch[1024];
    plinth_sigv4_auth_t  auth;
    plinth_sigv4_rc_t    rc;

#define ALG   "X-Amz-Algorithm=AWS4-HMAC-SHA256"
#define CRED  "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1"  \
              "%2Fs3%2Faws4_request"
#define DATE  "X-Amz-Date=20130524T000000Z"
#define SH    "X-Amz-SignedHeaders=host"
#define SIG   "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c2" \
              "65957d157751f604d404"

    static const struct {
        const char         *q;
        plinth_sigv4_rc_t   rc;
    } cases[] = {
        { ALG "&" CRED "&" DATE "&X-Amz-Expires=604800&" SH "&" SIG,
          PLINTH_SIGV4_OK },
        { ALG "&" CRED "&" DATE "&X-Amz-Expires=1&" SH "&" SIG
          "&X-Amz-Security-Token=abc&foo", PLINTH_SIGV4_OK },
        { ALG "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
          "aws4_request&" DATE "&X-Amz-Expires=60&" SH "&" SIG,
          PLINTH_SIGV4_OK },
        { "X-Amz-%41lgorithm=AWS4-HMAC-SHA256&" CRED "&" DATE
          "&X-Amz-Expires=60&" SH "&" SIG, PLINTH_SIGV4_OK },
        { ALG "&" CRED "&" DATE "&" SH "&" SIG,
          PLINTH_SIGV4_ERR_MISSING_COMPONENT },
        { CRED "&" DATE "&X-Amz-Expires=60&" SH "&" SIG,
          PLINTH_SIGV4_ERR_MISSING_COMPONENT },
        { ALG "&" CRED "&" DATE "&X-Amz-Expires=60&" SH,
          PLINTH_SIGV4_ERR_MISSING_COMPONENT },
        { "", PLINTH_SIGV4_ERR_MISSING_COMPONENT },
        { ALG "&" CRED "&" DATE "&X-Amz-Expires=0&" SH "&" SIG,
          PLINTH_SIGV4_ERR_EXPIRES },
        { ALG "&" CRED "&" DATE "&X-Amz-Expires=604801&" SH "&" SIG,
          PLINTH_SIGV4_ERR_EXPIRES },
        { ALG "&" CRED "&" DATE "&X-Amz-Expires=-1&" SH "&" SIG,
          PLINTH_SIGV4_ERR_EXPIRES },
        { ALG "&" CRED "&" DATE "&X-Amz-Expires=abc&" SH "&" SIG,
          PLINTH_SIGV4_ERR_EXPIRES },
        { ALG "&" CRED "&" DATE "&X-Amz-Expires=&" SH "&" SIG,
          PLINTH_SIGV4_ERR_EXPIRES },
        { ALG "&" CRED "&" DATE "&X-Amz-Expires=99999999999999999999&" SH
          "&" SIG, PLINTH_SIGV4_ERR_EXPIRES },
        { "X-Amz-Algorithm=AWS4-HMAC-SHA1&" CRED "&" DATE
          "&X-Amz-Expires=60&" SH "&" SIG,
          PLINTH_SIGV4_ERR_UNSUPPORTED_ALGORITHM },
        { ALG "&" CRED "&" DATE "&" DATE "&X-Amz-Expires=60&" SH "&" SIG,
          PLINTH_SIGV4_ERR_MALFORMED },
        { ALG "&" CRED "&X-Amz-Date=20130525T000000Z&X-Amz-Expires=60&" SH
          "&" SIG, PLINTH_SIGV4_ERR_DATE_MISMATCH },
        { ALG "&" CRED "&X-Amz-Date=20130524&X-Amz-Expires=60&" SH "&" SIG,
          PLINTH_SIGV4_ERR_DATE },
        { ALG "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2" "&" DATE
          "&X-Amz-Expires=60&" SH "&" SIG, PLINTH_SIGV4_ERR_URI },
        { ALG "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524&" DATE
          "&X-Amz-Expires=60&" SH "&" SIG, PLINTH_SIGV4_ERR_CREDENTIAL },
        { ALG "&" CRED "&" DATE "&X-Amz-Expires=60&X-Amz-SignedHeaders="
          "x-amz-date&" SIG, PLINTH_SIGV4_ERR_SIGNED_HEADERS },
        { ALG "&" CRED "&" DATE "&X-Amz-Expires=60&" SH
          "&X-Amz-Signature=abc", PLINTH_SIGV4_ERR_SIGNATURE_FORMAT },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rc = plinth_sigv4_parse_presigned(S(cases[i].q), scratch,
                                          sizeof(scratch), &auth);
        ok(rc == cases[i].rc, "presigned %zu -> %s (%s)", i,
           plinth_sigv4_strerror(cases[i].rc),
           rc == PLINTH_SIGV4_OK ? "ok" : plinth_sigv4_s3_error(rc, 1));
    }

    rc = plinth_sigv4_parse_presigned(S(cases[0].q), scratch, 40, &auth);
    ok(rc == PLINTH_SIGV4_ERR_BUFFER, "presigned: scratch too small");

    rc = plinth_sigv4_parse_presigned(S(cases[0].q), scratch,
                                      strlen(cases[0].q), &auth);
    ok(rc == PLINTH_SIGV4_OK && auth.expires == 604800
       && plinth_sigv4_check_presigned_time(&auth, 1369353600 + 604800)
          == PLINTH_SIGV4_OK
       && plinth_sigv4_check_presigned_time(&auth, 1369353600 + 604801)
          == PLINTH_SIGV4_ERR_EXPIRED,
       "presigned: scratch of query length suffices; a week, not a second "
       "more");

#undef ALG
#undef CRED
#undef DATE
#undef SH
#undef SIG
}


/* canonical URI, query and headers on their own */

static int
creq_of(const char *path, const char *query, const plinth_sv_header_t *h,
    size_t nh, unsigned flags, char *out, size_t size)
{
    size_t                  len;
    plinth_sigv4_auth_t     auth;
    plinth_sigv4_rc_t       rc;
    plinth_sigv4_request_t  req;

    plinth_sigv4_parse_authorization(S("AWS4-HMAC-SHA256 Credential=AKID/"
        "20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-a, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6"
        "036bdb41"), &auth);

    memset(&req, 0, sizeof(req));
    req.method = S("GET");
    req.path = S(path);
    req.query = S(query);
    req.headers = h;
    req.nheaders = nh;
    req.payload_hash = S("UNSIGNED-PAYLOAD");
    req.flags = flags;

    rc = plinth_sigv4_canonical_request(&req, &auth, (unsigned char *) out,
                                        size - 1, &len);
    if (rc != PLINTH_SIGV4_OK) {
        snprintf(out, size, "error: %s", plinth_sigv4_strerror(rc));
        return rc;
    }

    out[len] = '\0';

    return 0;
}


/* the second (URI) or third (query) line of a canonical request */

static const char *
creq_line(char *creq, int n)
{
    char  *p, *nl;

    p = creq;

    while (n-- > 0 && (nl = strchr(p, '\n')) != NULL) {
        p = nl + 1;
    }

    nl = strchr(p, '\n');

    if (nl) {
        *nl = '\0';
    }

    return p;
}


static void
test_canonical(void)
{
    char                    out[4096], big[9000];
    unsigned char           key[32], creq[64];
    size_t                  i, len, n;
    plinth_sv_header_t      h[6];
    plinth_sigv4_auth_t     auth;
    plinth_sigv4_rc_t       rc;
    plinth_sigv4_request_t  req;

    static const struct {
        const char  *path;
        unsigned     flags;
        const char  *want;
    } uris[] = {
        { "", 0, "/" },
        { "/", 0, "/" },
        { "/a%2Fb", 0, "/a%2Fb" },
        { "/a%2fb", 0, "/a%2Fb" },
        { "/a b", 0, "/a%20b" },
        { "/a%20b", 0, "/a%20b" },
        { "/%7Euser/%7e", 0, "/~user/~" },
        { "/a+b", 0, "/a%2Bb" },
        { "/a%2Bb", 0, "/a%2Bb" },
        { "/caf\xc3\xa9", 0, "/caf%C3%A9" },
        { "/caf%C3%A9", 0, "/caf%C3%A9" },
        { "/photos/2006/February/sample.jpg", 0,
          "/photos/2006/February/sample.jpg" },
        { "/my-object//example//photo.user", 0,
          "/my-object//example//photo.user" },
        { "/a/./b/../c", 0, "/a/./b/../c" },
        { "/!*'();:@&=+$,?#[]", 0,
          "/%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%3F%23%5B%5D" },
        { "/%zz", 0, "error: Couldn't parse the specified URI." },
        { "/abc%", 0, "error: Couldn't parse the specified URI." },
        { "/abc%4", 0, "error: Couldn't parse the specified URI." },
        { "abc", 0, "error: Couldn't parse the specified URI." },
        { "/a/./b/../c", PLINTH_SIGV4_GENERIC, "/a/c" },
        { "/a%20b", PLINTH_SIGV4_GENERIC, "/a%2520b" },
        { "/../..", PLINTH_SIGV4_GENERIC, "/" },
        { "/a/b/../../..", PLINTH_SIGV4_GENERIC, "/" },
        { "/a/b/c/../../d/", PLINTH_SIGV4_GENERIC, "/a/d/" },
        { "/a/b/..", PLINTH_SIGV4_GENERIC, "/a" },
        { "/x/../a/./b", PLINTH_SIGV4_GENERIC, "/a/b" },
        { "", PLINTH_SIGV4_GENERIC, "/" },
    };

    static const struct {
        const char  *query;
        const char  *want;
    } queries[] = {
        { "", "" },
        { "lifecycle", "lifecycle=" },
        { "acl&versioning", "acl=&versioning=" },
        { "a=1&&b=2&", "a=1&b=2" },
        { "b=2&a=3&a=1&a=", "a=&a=1&a=3&b=2" },
        { "x=a+b", "x=a%2Bb" },
        { "x=a%20b", "x=a%20b" },
        { "x=a b", "x=a%20b" },
        { "x=%7e%2d%2E", "x=~-." },
        { "prefix=photos/2006/&delimiter=/",
          "delimiter=%2F&prefix=photos%2F2006%2F" },
        { "%C3%A9=1&~=2&z=3", "%C3%A9=1&z=3&~=2" },
        { "a=%2f&a=%2F", "a=%2F&a=%2F" },
        { "k=v=w", "k=v%3Dw" },
        { "=v", "=v" },
        { "A=1&a=1&B=1", "A=1&B=1&a=1" },
        { "x=%zz", "error: Couldn't parse the specified URI." },
        { "x%=1", "error: Couldn't parse the specified URI." },
        { "X-Amz-Signature=abc&b=1", "X-Amz-Signature=abc&b=1" },
    };

    for (i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
        creq_of(uris[i].path, "", NULL, 0, uris[i].flags, out, sizeof(out));
        ok(strcmp(out[0] == 'e' ? out : creq_line(out, 1), uris[i].want)
           == 0, "canonical URI%s \"%s\" -> \"%s\"",
           uris[i].flags ? " (generic)" : "", uris[i].path, uris[i].want);
    }

    for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        creq_of("/", queries[i].query, NULL, 0, 0, out, sizeof(out));
        ok(strcmp(out[0] == 'e' ? out : creq_line(out, 2), queries[i].want)
           == 0, "canonical query \"%s\" -> \"%s\"", queries[i].query,
           queries[i].want);
    }

    creq_of("/", "X-Amz-Signature=abc&b=1", NULL, 0, PLINTH_SIGV4_PRESIGNED,
            out, sizeof(out));
    ok(strcmp(creq_line(out, 2), "b=1") == 0,
       "canonical query: presigned leaves X-Amz-Signature out");

    creq_of("/", "X-Amz-Signaturex=1&X-Amz-Signatur=2&X-Amz-%53ignature=3",
            NULL, 0, PLINTH_SIGV4_PRESIGNED, out, sizeof(out));
    ok(strcmp(creq_line(out, 2), "X-Amz-Signatur=2&X-Amz-Signaturex=1") == 0,
       "canonical query: only X-Amz-Signature itself is left out");

    /* 256 parameters are fine, 257 are not */

    for (n = 0, i = 0; i < 257; i++) {
        n += snprintf(big + n, sizeof(big) - n, "%sp%zu=%zu", i ? "&" : "",
                      256 - i, i);
    }

    rc = creq_of("/", big, NULL, 0, 0, out, sizeof(out));
    ok(rc == PLINTH_SIGV4_ERR_TOO_MANY_PARAMS,
       "canonical query: 257 parameters -> too many");

    *strrchr(big, '&') = '\0';
    rc = creq_of("/", big, NULL, 0, 0, out, sizeof(out));
    ok(rc == 0 && strncmp(creq_line(out, 2), "p1=255&p10=246&p100=156&", 24)
       == 0, "canonical query: 256 parameters sorted");

    /* headers: case-insensitive names, trimming, repeats, missing ones */

    h[0].name = S("HOST");
    h[0].value = S("  example.com ");
    h[1].name = S("X-A");
    h[1].value = S("\t a  \t b   c\t");
    h[2].name = S("x-b");
    h[2].value = S("ignored");
    h[3].name = S("x-a");
    h[3].value = S("");
    h[4].name = S("x-A");
    h[4].value = S("z");

    creq_of("/", "", h, 5, 0, out, sizeof(out));
    ok(strcmp(out, "GET\n/\n\nhost:example.com\nx-a:a b c,,z\n\nhost;x-a\n"
              "UNSIGNED-PAYLOAD") == 0,
       "canonical headers: trim, collapse, repeats joined, unsigned left");

    creq_of("/", "", h, 1, 0, out, sizeof(out));
    ok(strcmp(out, "GET\n/\n\nhost:example.com\nx-a:\n\nhost;x-a\n"
              "UNSIGNED-PAYLOAD") == 0,
       "canonical headers: a signed header the request lacks is empty");

    /* the buffer: too small says how much is needed */

    plinth_sigv4_parse_authorization(S("AWS4-HMAC-SHA256 Credential=AKID/"
        "20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-a, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6"
        "036bdb41"), &auth);
    plinth_sigv4_set_date(&auth, S("20130524T000000Z"));

    memset(&req, 0, sizeof(req));
    req.method = S("GET");
    req.path = S("/some/key");
    req.query = S("b=2&a=1");
    req.headers = h;
    req.nheaders = 5;
    req.payload_hash = S(EMPTY_SHA256);

    rc = plinth_sigv4_canonical_request(&req, &auth, NULL, 0, &len);
    n = len;
    rc = plinth_sigv4_canonical_request(&req, &auth, (unsigned char *) out,
                                        n, &len);
    ok(rc == PLINTH_SIGV4_OK && len == n,
       "canonical request: ERR_BUFFER gave the exact size needed (%zu)", n);

    rc = plinth_sigv4_canonical_request(&req, &auth, (unsigned char *) out,
                                        n - 1, &len);
    ok(rc == PLINTH_SIGV4_ERR_BUFFER && len == n,
       "canonical request: one byte short -> ERR_BUFFER");

    plinth_sigv4_signing_key(S(S3_SECRET), auth.date, auth.region,
                             auth.service, key);
    rc = plinth_sigv4_verify(&req, &auth, key, creq, sizeof(creq), NULL);
    ok(rc == PLINTH_SIGV4_ERR_BUFFER,
       "verify: a small buffer is ERR_BUFFER, not a mismatch");

    rc = plinth_sigv4_verify(&req, &auth, key, (unsigned char *) out,
                             sizeof(out), NULL);
    ok(rc == PLINTH_SIGV4_ERR_MISMATCH && strcmp(plinth_sigv4_s3_error(rc, 0),
       "SignatureDoesNotMatch") == 0,
       "verify: a wrong signature -> SignatureDoesNotMatch");
}


static void
test_wrong_signatures(void)
{
    unsigned char           key[32], good[64], creq[4096];
    char                    authz[512];
    size_t                  i;
    plinth_sv_header_t      h[4];
    plinth_sigv4_auth_t     auth;
    plinth_sigv4_rc_t       rc;
    plinth_sigv4_request_t  req;

    h[0].name = S("host");
    h[0].value = S("examplebucket.s3.amazonaws.com");
    h[1].name = S("range");
    h[1].value = S("bytes=0-9");
    h[2].name = S("x-amz-content-sha256");
    h[2].value = S(EMPTY_SHA256);
    h[3].name = S("x-amz-date");
    h[3].value = S("20130524T000000Z");

    memset(&req, 0, sizeof(req));
    req.method = S("GET");
    req.path = S("/test.txt");
    req.headers = h;
    req.nheaders = 4;
    req.payload_hash = S(EMPTY_SHA256);

    memcpy(good, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c603"
           "6bdb41", 64);

    for (i = 0; i < 6; i++) {
        unsigned char  sig[65];

        memcpy(sig, good, 64);
        sig[64] = '\0';

        if (i == 1) {
            sig[0] = 'e';
        } else if (i == 2) {
            sig[63] = '0';
        }

        snprintf(authz, sizeof(authz),
                 "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
                 "us-east-1/s3/aws4_request, SignedHeaders=host;range;"
                 "x-amz-content-sha256;x-amz-date, Signature=%s", sig);
        plinth_sigv4_parse_authorization(S(authz), &auth);
        plinth_sigv4_set_date(&auth, S("20130524T000000Z"));

        plinth_sigv4_signing_key(S(i == 3 ? "wJalrXUtnFEMI/K7MDENG/"
                                 "bPxRfiCYEXAMPLEKEZ" : S3_SECRET),
                                 auth.date, auth.region, auth.service, key);

        req.method = S(i == 4 ? "HEAD" : "GET");
        h[1].value = S(i == 5 ? "bytes=0-10" : "bytes=0-9");

        rc = plinth_sigv4_verify(&req, &auth, key, creq, sizeof(creq), NULL);
        ok(rc == (i == 0 ? PLINTH_SIGV4_OK : PLINTH_SIGV4_ERR_MISMATCH),
           "wrong signature: %s", (const char *[]) {
               "the right one verifies", "first digit changed",
               "last digit changed", "another secret", "another method",
               "a signed header changed" }[i]);
    }

    ok(!plinth_sigv4_signature_eq(SN(good, 63), good)
       && !plinth_sigv4_signature_eq(SN(NULL, 0), good)
       && plinth_sigv4_signature_eq(SN(good, 64), good),
       "signature_eq: length must be 64");

    ok(plinth_sigv4_payload_kind(S(EMPTY_SHA256))
       == PLINTH_SIGV4_PAYLOAD_SHA256
       && plinth_sigv4_payload_kind(S("UNSIGNED-PAYLOAD"))
          == PLINTH_SIGV4_PAYLOAD_UNSIGNED
       && plinth_sigv4_payload_kind(S("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"))
          == PLINTH_SIGV4_PAYLOAD_STREAMING
       && plinth_sigv4_payload_kind(
              S("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"))
          == PLINTH_SIGV4_PAYLOAD_STREAMING_TRAILER
       && plinth_sigv4_payload_kind(S("STREAMING-UNSIGNED-PAYLOAD-TRAILER"))
          == PLINTH_SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER
       && plinth_sigv4_payload_kind(
              S("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"))
          == PLINTH_SIGV4_PAYLOAD_UNSUPPORTED
       && plinth_sigv4_payload_kind(S("unsigned-payload"))
          == PLINTH_SIGV4_PAYLOAD_INVALID
       && plinth_sigv4_payload_kind(S("E3B0C44298FC1C149AFBF4C8996FB92427AE"
                                      "41E4649B934CA495991B7852B855"))
          == PLINTH_SIGV4_PAYLOAD_INVALID
       && plinth_sigv4_payload_kind(S("")) == PLINTH_SIGV4_PAYLOAD_INVALID,
       "payload kinds of x-amz-content-sha256");
}


/* random input: nothing may crash, read out of bounds or lie about sizes */

static size_t
random_text(unsigned char *buf, size_t max)
{
    size_t  n, i, k;

    static const char  *tokens[] = {
        "AWS4-HMAC-SHA256 ", "Credential=", "SignedHeaders=", "Signature=",
        "AKID/20130524/us-east-1/s3/aws4_request", ", ", ",", ";", "host",
        "=", "&", "%", "%2F", "%4", "/", "..", ".", "X-Amz-Algorithm",
        "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-Signature",
        "X-Amz-SignedHeaders", "20130524T000000Z", "604800", " ",
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    };

    n = rnd() % max;

    for (i = 0; i < n; /* void */ ) {
        if (rnd() % 3 == 0) {
            buf[i++] = (unsigned char) rnd();
            continue;
        }

        k = rnd() % (sizeof(tokens) / sizeof(tokens[0]));

        if (strlen(tokens[k]) > n - i) {
            break;
        }

        memcpy(buf + i, tokens[k], strlen(tokens[k]));
        i += strlen(tokens[k]);
    }

    return i;
}


static void
test_random(unsigned iterations)
{
    unsigned char           *a, *b, *c, *scratch, *out;
    unsigned                 it, bad;
    size_t                   la, lb, lc, len, len2;
    int64_t                  t;
    plinth_sv_header_t       h[4];
    plinth_sigv4_auth_t      auth;
    plinth_sigv4_rc_t        rc;
    plinth_sigv4_request_t   req;

    bad = 0;

    for (it = 0; it < iterations; it++) {
        /* exact-size heap copies, so ASan sees any overread */

        a = malloc(512);
        la = random_text(a, 512);
        a = realloc(a, la ? la : 1);
        b = malloc(512);
        lb = random_text(b, 512);
        b = realloc(b, lb ? lb : 1);
        c = malloc(64);
        lc = random_text(c, 64);
        c = realloc(c, lc ? lc : 1);

        plinth_sigv4_parse_authorization(SN(a, la), &auth);
        plinth_sigv4_parse_date(SN(c, lc), &t);
        plinth_sigv4_is_presigned(SN(b, lb));

        scratch = malloc(lb ? lb : 1);
        rc = plinth_sigv4_parse_presigned(SN(b, lb), scratch, lb, &auth);
        if (rc == PLINTH_SIGV4_ERR_BUFFER) {
            bad++;
        }

        if (rc != PLINTH_SIGV4_OK) {
            plinth_sigv4_parse_authorization(
                S("AWS4-HMAC-SHA256 Credential=A/20130524/r/s/aws4_request,"
                  "SignedHeaders=host;x-a,Signature=f0e8bdb87c964420e857bd3"
                  "5b5d6ed310bd44f0170aba48dd91039c6036bdb41"), &auth);
        }

        h[0].name = SN(c, lc);
        h[0].value = SN(a, la);
        h[1].name = S("host");
        h[1].value = SN(c, lc);
        h[2].name = S("X-A");
        h[2].value = SN(b, lb);
        h[3].name = SN(b, lb);
        h[3].value = SN(c, lc);

        memset(&req, 0, sizeof(req));
        req.method = SN(c, lc);
        req.path = SN(a, la);
        req.query = SN(b, lb);
        req.headers = h;
        req.nheaders = 4;
        req.payload_hash = SN(c, lc);
        req.flags = (unsigned) (rnd() % 4);

        rc = plinth_sigv4_canonical_request(&req, &auth, NULL, 0, &len);

        if (rc == PLINTH_SIGV4_ERR_BUFFER) {
            out = malloc(len);
            rc = plinth_sigv4_canonical_request(&req, &auth, out, len, &len2);

            if (rc != PLINTH_SIGV4_OK || len2 != len) {
                bad++;
            }

            free(out);

        } else if (rc != PLINTH_SIGV4_ERR_URI
                   && rc != PLINTH_SIGV4_ERR_TOO_MANY_PARAMS)
        {
            bad++;
        }

        free(scratch);
        free(a);
        free(b);
        free(c);
    }

    ok(bad == 0, "random: %u inputs through the parsers and the "
       "canonicalizer, sizes consistent", iterations);
}


int
main(int argc, char **argv)
{
    test_rng = 20130524;

    if (argc > 1 && argv[1][0]) {
        snprintf(suite_dir, sizeof(suite_dir), "%s", argv[1]);
    }

    if (argc > 2) {
        test_rng = strtoull(argv[2], NULL, 0);
    }

    printf("# AWS suite in %s, random seed %" PRIu64 "\n", suite_dir,
           test_rng);

    test_suite();
    test_s3_examples();
    test_authorization();
    test_dates();
    test_presigned();
    test_canonical();
    test_wrong_signatures();
    test_random(20000);

    printf("1..%d\n", test_count);

    if (test_failed) {
        printf("# %d of %d failed\n", test_failed, test_count);
    }

    return test_failed ? 1 : 0;
}
