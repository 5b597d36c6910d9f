/*
 * Plinth SigV4: see ngx_plinth_sigv4.h for the contract and the S3 rules.
 *
 * Output is written through a counting writer: bytes that do not fit are
 * dropped but counted, so one pass both fills a large enough buffer and
 * tells the caller how large it must be. Query parameters are sorted in a
 * fixed array on the stack (PLINTH_SIGV4_MAX_QUERY_PARAMS entries, 8 KB)
 * with heapsort, comparing the encoded forms lazily, byte by byte, so no
 * encoded copy is ever made.
 *
 * Hashing: OpenSSL 3 looks SHA-256 and HMAC up by name in its providers on
 * every HMAC() and every EVP_sha256() digest (3.8 and 1.1 us a call here,
 * against 1.2 and 0.3 us with what was fetched once), and a request's
 * check makes five HMACs and a digest. So SHA-256 and an HMAC-SHA256
 * context are fetched once per process and reused. Not thread-safe: the
 * gateway's workers, the unit tests and the fuzz targets each use it from
 * one thread.
 */

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "ngx_plinth_sigv4.h"


#define PLINTH_SIGV4_ALGORITHM   "AWS4-HMAC-SHA256"
#define PLINTH_SIGV4_TERMINATOR  "aws4_request"
#define PLINTH_SIGV4_EMPTY_SHA256                                            \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


typedef struct {
    unsigned char        *buf;
    size_t                size;
    size_t                len;       /* produced, may exceed size */
} plinth_sv_out_t;

typedef struct {
    plinth_sv_str_t       name;      /* raw, still percent-encoded */
    plinth_sv_str_t       value;
} plinth_sv_param_t;

/* yields UriEncode(percent-decode(raw)) one byte at a time */
typedef struct {
    const unsigned char  *p;
    const unsigned char  *end;
    unsigned char         pend[2];
    size_t                npend;
} plinth_sv_enc_t;


static int plinth_sv_hexval(unsigned c);
static int plinth_sv_unreserved(unsigned c);
static int plinth_sv_lit(plinth_sv_str_t s, const char *lit);
static int plinth_sv_lit_ci(plinth_sv_str_t s, const char *lit);
static int plinth_sv_name_eq(plinth_sv_str_t name, plinth_sv_str_t lower);
static int plinth_sv_tchar(unsigned c);
static void plinth_sv_put(plinth_sv_out_t *o, unsigned c);
static void plinth_sv_puts(plinth_sv_out_t *o, const void *data, size_t len);
static void plinth_sv_put_enc(plinth_sv_out_t *o, unsigned c);
static void plinth_sv_put_value(plinth_sv_out_t *o, plinth_sv_str_t v);
static void plinth_sv_enc_init(plinth_sv_enc_t *it, plinth_sv_str_t raw);
static int plinth_sv_enc_next(plinth_sv_enc_t *it);
static int plinth_sv_enc_cmp(plinth_sv_str_t a, plinth_sv_str_t b);
static int plinth_sv_pct_valid(plinth_sv_str_t raw);
static int plinth_sv_dec_eq(plinth_sv_str_t raw, const char *lit);
static plinth_sigv4_rc_t plinth_sv_decode(plinth_sv_str_t raw,
    unsigned char *buf, size_t size, plinth_sv_str_t *out);
static int plinth_sv_param_cmp(const plinth_sv_param_t *a,
    const plinth_sv_param_t *b);
static void plinth_sv_sift(plinth_sv_param_t *a, size_t root, size_t n);
static void plinth_sv_sort(plinth_sv_param_t *a, size_t n);
static int plinth_sv_digits(const unsigned char *p, size_t n, int64_t *v);
static int plinth_sv_ymd(const unsigned char *p, int64_t *days);
static plinth_sigv4_rc_t plinth_sigv4_parse_credential(plinth_sv_str_t v,
    plinth_sigv4_auth_t *auth);
static plinth_sigv4_rc_t plinth_sigv4_parse_signed(plinth_sv_str_t v,
    plinth_sigv4_auth_t *auth);
static plinth_sigv4_rc_t plinth_sigv4_check_signature(plinth_sv_str_t v);
static plinth_sigv4_rc_t plinth_sigv4_uri_s3(plinth_sv_out_t *o,
    plinth_sv_str_t path);
static plinth_sigv4_rc_t plinth_sigv4_uri_generic(plinth_sv_out_t *o,
    plinth_sv_str_t path);
static plinth_sigv4_rc_t plinth_sigv4_query(plinth_sv_out_t *o,
    plinth_sv_str_t query, unsigned flags);
static plinth_sigv4_rc_t plinth_sigv4_hmac(const unsigned char *key,
    size_t klen, const void *data, size_t len, unsigned char out[32]);
static plinth_sigv4_rc_t plinth_sigv4_finish(plinth_sv_out_t *o,
    size_t *len);


static const char  plinth_sv_hex_upper[] = "0123456789ABCDEF";
static const char  plinth_sv_hex_lower[] = "0123456789abcdef";


/* small helpers */

static int
plinth_sv_hexval(unsigned c)
{
    if (c >= '0' && c <= '9') {
        return (int) (c - '0');
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return (int) (c - 'a' + 10);
    }

    return -1;
}


static int
plinth_sv_unreserved(unsigned c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9')
           || c == '-' || c == '.' || c == '_' || c == '~';
}


static int
plinth_sv_lit(plinth_sv_str_t s, const char *lit)
{
    size_t  n;

    n = strlen(lit);

    return s.len == n && (n == 0 || memcmp(s.data, lit, n) == 0);
}


static int
plinth_sv_lit_ci(plinth_sv_str_t s, const char *lit)
{
    size_t    i, n;
    unsigned  c;

    n = strlen(lit);

    if (s.len != n) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        c = s.data[i];

        if (c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }

        if (c != (unsigned char) lit[i]) {
            return 0;
        }
    }

    return 1;
}


/* a header name against a lower-case one, ignoring the name's case */

static int
plinth_sv_name_eq(plinth_sv_str_t name, plinth_sv_str_t lower)
{
    size_t    i;
    unsigned  c;

    if (name.len != lower.len) {
        return 0;
    }

    for (i = 0; i < name.len; i++) {
        c = name.data[i];

        if (c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }

        if (c != lower.data[i]) {
            return 0;
        }
    }

    return 1;
}


/* RFC 9110 token characters */

static int
plinth_sv_tchar(unsigned c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9'))
    {
        return 1;
    }

    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'':
    case '*': case '+': case '-': case '.': case '^': case '_':
    case '`': case '|': case '~':
        return 1;
    }

    return 0;
}


static void
plinth_sv_put(plinth_sv_out_t *o, unsigned c)
{
    if (o->len < o->size) {
        o->buf[o->len] = (unsigned char) c;
    }

    o->len++;
}


static void
plinth_sv_puts(plinth_sv_out_t *o, const void *data, size_t len)
{
    if (o->len < o->size && len <= o->size - o->len) {
        memcpy(o->buf + o->len, data, len);
    }

    o->len += len;
}


static void
plinth_sv_put_enc(plinth_sv_out_t *o, unsigned c)
{
    if (plinth_sv_unreserved(c)) {
        plinth_sv_put(o, c);
        return;
    }

    plinth_sv_put(o, '%');
    plinth_sv_put(o, (unsigned char) plinth_sv_hex_upper[c >> 4]);
    plinth_sv_put(o, (unsigned char) plinth_sv_hex_upper[c & 0x0f]);
}


/* a header value trimmed, runs of spaces and tabs collapsed to one space */

static void
plinth_sv_put_value(plinth_sv_out_t *o, plinth_sv_str_t v)
{
    int                   space;
    const unsigned char  *p, *end;

    p = v.data;
    end = p + v.len;

    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }

    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }

    space = 0;

    for ( /* void */ ; p < end; p++) {
        if (*p == ' ' || *p == '\t') {
            space = 1;
            continue;
        }

        if (space) {
            plinth_sv_put(o, ' ');
            space = 0;
        }

        plinth_sv_put(o, *p);
    }
}


static void
plinth_sv_enc_init(plinth_sv_enc_t *it, plinth_sv_str_t raw)
{
    it->p = raw.data;
    it->end = raw.data + raw.len;
    it->npend = 0;
}


/* the next byte of the encoded form, -1 at the end */

static int
plinth_sv_enc_next(plinth_sv_enc_t *it)
{
    int       hi, lo;
    unsigned  c;

    if (it->npend) {
        c = it->pend[2 - it->npend];
        it->npend--;
        return (int) c;
    }

    if (it->p == it->end) {
        return -1;
    }

    c = *it->p++;

    if (c == '%' && it->end - it->p >= 2
        && (hi = plinth_sv_hexval(it->p[0])) >= 0
        && (lo = plinth_sv_hexval(it->p[1])) >= 0)
    {
        c = (unsigned) (hi << 4 | lo);
        it->p += 2;
    }

    if (plinth_sv_unreserved(c)) {
        return (int) c;
    }

    it->pend[0] = (unsigned char) plinth_sv_hex_upper[c >> 4];
    it->pend[1] = (unsigned char) plinth_sv_hex_upper[c & 0x0f];
    it->npend = 2;

    return '%';
}


static int
plinth_sv_enc_cmp(plinth_sv_str_t a, plinth_sv_str_t b)
{
    int              ca, cb;
    plinth_sv_enc_t  ia, ib;

    plinth_sv_enc_init(&ia, a);
    plinth_sv_enc_init(&ib, b);

    for ( ;; ) {
        ca = plinth_sv_enc_next(&ia);
        cb = plinth_sv_enc_next(&ib);

        if (ca != cb) {
            return ca < cb ? -1 : 1;
        }

        if (ca == -1) {
            return 0;
        }
    }
}


static int
plinth_sv_pct_valid(plinth_sv_str_t raw)
{
    size_t  i;

    for (i = 0; i < raw.len; i++) {
        if (raw.data[i] != '%') {
            continue;
        }

        if (raw.len - i < 3
            || plinth_sv_hexval(raw.data[i + 1]) < 0
            || plinth_sv_hexval(raw.data[i + 2]) < 0)
        {
            return 0;
        }

        i += 2;
    }

    return 1;
}


/* non-zero if raw percent-decodes exactly to lit */

static int
plinth_sv_dec_eq(plinth_sv_str_t raw, const char *lit)
{
    int                   hi, lo;
    size_t                i, n;
    unsigned              c;
    const unsigned char  *p, *end;

    p = raw.data;
    end = p + raw.len;
    n = strlen(lit);

    for (i = 0; i < n; i++) {
        if (p == end) {
            return 0;
        }

        c = *p++;

        if (c == '%') {
            if (end - p < 2
                || (hi = plinth_sv_hexval(p[0])) < 0
                || (lo = plinth_sv_hexval(p[1])) < 0)
            {
                return 0;
            }

            c = (unsigned) (hi << 4 | lo);
            p += 2;
        }

        if (c != (unsigned char) lit[i]) {
            return 0;
        }
    }

    return p == end;
}


static plinth_sigv4_rc_t
plinth_sv_decode(plinth_sv_str_t raw, unsigned char *buf, size_t size,
    plinth_sv_str_t *out)
{
    size_t    i, n;
    unsigned  c;

    if (!plinth_sv_pct_valid(raw)) {
        return PLINTH_SIGV4_ERR_URI;
    }

    n = 0;

    for (i = 0; i < raw.len; i++) {
        c = raw.data[i];

        if (c == '%') {
            c = (unsigned) (plinth_sv_hexval(raw.data[i + 1]) << 4
                            | plinth_sv_hexval(raw.data[i + 2]));
            i += 2;
        }

        if (n == size) {
            return PLINTH_SIGV4_ERR_BUFFER;
        }

        buf[n++] = (unsigned char) c;
    }

    out->data = buf;
    out->len = n;

    return PLINTH_SIGV4_OK;
}


static int
plinth_sv_param_cmp(const plinth_sv_param_t *a, const plinth_sv_param_t *b)
{
    int  rc;

    rc = plinth_sv_enc_cmp(a->name, b->name);

    if (rc != 0) {
        return rc;
    }

    return plinth_sv_enc_cmp(a->value, b->value);
}


static void
plinth_sv_sift(plinth_sv_param_t *a, size_t root, size_t n)
{
    size_t             child;
    plinth_sv_param_t  t;

    for ( ;; ) {
        child = 2 * root + 1;

        if (child >= n) {
            return;
        }

        if (child + 1 < n && plinth_sv_param_cmp(&a[child], &a[child + 1]) < 0)
        {
            child++;
        }

        if (plinth_sv_param_cmp(&a[root], &a[child]) >= 0) {
            return;
        }

        t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}


/* heapsort: no recursion, no memory, O(n log n) whatever the input */

static void
plinth_sv_sort(plinth_sv_param_t *a, size_t n)
{
    size_t             i;
    plinth_sv_param_t  t;

    if (n < 2) {
        return;
    }

    for (i = n / 2; i-- > 0; /* void */ ) {
        plinth_sv_sift(a, i, n);
    }

    for (i = n - 1; i > 0; i--) {
        t = a[0];
        a[0] = a[i];
        a[i] = t;
        plinth_sv_sift(a, 0, i);
    }
}


static int
plinth_sv_digits(const unsigned char *p, size_t n, int64_t *v)
{
    size_t  i;

    *v = 0;

    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }

        *v = *v * 10 + (p[i] - '0');
    }

    return 1;
}


/* "YYYYMMDD" to days since 1970-01-01; 0 if not a calendar date */

static int
plinth_sv_ymd(const unsigned char *p, int64_t *days)
{
    int64_t  y, m, d, era, yoe, doy, doe, mdays;

    if (!plinth_sv_digits(p, 4, &y)
        || !plinth_sv_digits(p + 4, 2, &m)
        || !plinth_sv_digits(p + 6, 2, &d))
    {
        return 0;
    }

    if (y < 1 || m < 1 || m > 12 || d < 1) {
        return 0;
    }

    if (m == 2) {
        mdays = ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0) ? 29 : 28;

    } else if (m == 4 || m == 6 || m == 9 || m == 11) {
        mdays = 30;

    } else {
        mdays = 31;
    }

    if (d > mdays) {
        return 0;
    }

    /* days from civil (proleptic Gregorian), y >= 1 so no negative eras */

    y -= m <= 2;
    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    *days = era * 146097 + doe - 719468;

    return 1;
}


/* parsing */

plinth_sigv4_rc_t
plinth_sigv4_parse_date(plinth_sv_str_t v, int64_t *t)
{
    int64_t               days, h, mi, s;
    const unsigned char  *p;

    p = v.data;

    if (v.len != 16 || p[8] != 'T' || p[15] != 'Z'
        || !plinth_sv_ymd(p, &days)
        || !plinth_sv_digits(p + 9, 2, &h)
        || !plinth_sv_digits(p + 11, 2, &mi)
        || !plinth_sv_digits(p + 13, 2, &s)
        || h > 23 || mi > 59 || s > 59)
    {
        return PLINTH_SIGV4_ERR_DATE;
    }

    *t = days * 86400 + h * 3600 + mi * 60 + s;

    return PLINTH_SIGV4_OK;
}


static plinth_sigv4_rc_t
plinth_sigv4_parse_credential(plinth_sv_str_t v, plinth_sigv4_auth_t *auth)
{
    size_t                i, n;
    int64_t               days;
    unsigned              c;
    plinth_sv_str_t       part[5];
    const unsigned char  *p, *end;

    p = v.data;
    end = p + v.len;
    n = 0;

    part[0].data = p;

    for ( /* void */ ; p < end; p++) {
        if (*p != '/') {
            continue;
        }

        if (n == 4) {
            return PLINTH_SIGV4_ERR_CREDENTIAL;
        }

        part[n].len = p - part[n].data;
        part[++n].data = p + 1;
    }

    if (n != 4) {
        return PLINTH_SIGV4_ERR_CREDENTIAL;
    }

    part[4].len = end - part[4].data;

    for (i = 0; i < 4; i++) {
        if (part[i].len == 0) {
            return PLINTH_SIGV4_ERR_CREDENTIAL;
        }
    }

    for (i = 0; i < part[0].len; i++) {
        c = part[0].data[i];

        if (c <= ' ' || c >= 0x7f || c == ',' || c == '=') {
            return PLINTH_SIGV4_ERR_CREDENTIAL;
        }
    }

    if (part[1].len != 8 || !plinth_sv_ymd(part[1].data, &days)) {
        return PLINTH_SIGV4_ERR_CREDENTIAL;
    }

    for (n = 2; n < 4; n++) {
        for (i = 0; i < part[n].len; i++) {
            c = part[n].data[i];

            if (!plinth_sv_unreserved(c) || c == '~') {
                return PLINTH_SIGV4_ERR_CREDENTIAL;
            }
        }
    }

    if (!plinth_sv_lit(part[4], PLINTH_SIGV4_TERMINATOR)) {
        return PLINTH_SIGV4_ERR_CREDENTIAL;
    }

    auth->scope.data = part[1].data;
    auth->scope.len = end - part[1].data;

    if (auth->scope.len > PLINTH_SIGV4_MAX_SCOPE) {
        return PLINTH_SIGV4_ERR_CREDENTIAL;
    }

    auth->access_key = part[0];
    auth->date = part[1];
    auth->region = part[2];
    auth->service = part[3];

    return PLINTH_SIGV4_OK;
}


/* lower-case tokens separated by ';', no duplicates, "host" among them */

static plinth_sigv4_rc_t
plinth_sigv4_parse_signed(plinth_sv_str_t v, plinth_sigv4_auth_t *auth)
{
    int                   host;
    size_t                i, n;
    unsigned              c;
    plinth_sv_str_t      *h;
    const unsigned char  *p, *end, *start;

    p = v.data;
    end = p + v.len;
    n = 0;
    host = 0;

    if (v.len == 0) {
        return PLINTH_SIGV4_ERR_SIGNED_HEADERS;
    }

    for ( ;; ) {
        start = p;

        while (p < end && *p != ';') {
            c = *p;

            if ((c >= 'A' && c <= 'Z') || !plinth_sv_tchar(c)) {
                return PLINTH_SIGV4_ERR_SIGNED_HEADERS;
            }

            p++;
        }

        if (p == start) {
            return PLINTH_SIGV4_ERR_SIGNED_HEADERS;
        }

        if (n == PLINTH_SIGV4_MAX_SIGNED_HEADERS) {
            return PLINTH_SIGV4_ERR_TOO_MANY_HEADERS;
        }

        h = &auth->headers[n];
        h->data = start;
        h->len = p - start;

        for (i = 0; i < n; i++) {
            if (auth->headers[i].len == h->len
                && memcmp(auth->headers[i].data, h->data, h->len) == 0)
            {
                return PLINTH_SIGV4_ERR_SIGNED_HEADERS;
            }
        }

        if (plinth_sv_lit(*h, "host")) {
            host = 1;
        }

        n++;

        if (p == end) {
            break;
        }

        p++;                                    /* ';' */
    }

    if (!host) {
        return PLINTH_SIGV4_ERR_SIGNED_HEADERS;
    }

    auth->signed_headers = v;
    auth->nheaders = n;

    return PLINTH_SIGV4_OK;
}


static plinth_sigv4_rc_t
plinth_sigv4_check_signature(plinth_sv_str_t v)
{
    size_t  i;

    if (v.len != 64) {
        return PLINTH_SIGV4_ERR_SIGNATURE_FORMAT;
    }

    for (i = 0; i < 64; i++) {
        if (!((v.data[i] >= '0' && v.data[i] <= '9')
              || (v.data[i] >= 'a' && v.data[i] <= 'f')))
        {
            return PLINTH_SIGV4_ERR_SIGNATURE_FORMAT;
        }
    }

    return PLINTH_SIGV4_OK;
}


plinth_sigv4_rc_t
plinth_sigv4_parse_authorization(plinth_sv_str_t value,
    plinth_sigv4_auth_t *auth)
{
    size_t                alen;
    unsigned              seen, bit;
    plinth_sv_str_t       name, val, cred, sh, sig;
    plinth_sigv4_rc_t     rc;
    const unsigned char  *p, *end, *q;

    memset(auth, 0, sizeof(plinth_sigv4_auth_t));

    p = value.data;
    end = p + value.len;
    alen = sizeof(PLINTH_SIGV4_ALGORITHM) - 1;

    for (q = p; q < end && *q != ' '; q++) { /* void */ }

    if ((size_t) (q - p) != alen
        || memcmp(p, PLINTH_SIGV4_ALGORITHM, alen) != 0)
    {
        return PLINTH_SIGV4_ERR_UNSUPPORTED_ALGORITHM;
    }

    p = q;

    while (p < end && *p == ' ') {
        p++;
    }

    if (p == end) {
        return PLINTH_SIGV4_ERR_MISSING_COMPONENT;
    }

    seen = 0;
    cred.data = sh.data = sig.data = NULL;
    cred.len = sh.len = sig.len = 0;

    for ( ;; ) {
        name.data = p;

        while (p < end && *p != '=' && *p != ',' && *p != ' ') {
            p++;
        }

        if (p == end || *p != '=') {
            return PLINTH_SIGV4_ERR_MALFORMED;
        }

        name.len = p - name.data;
        val.data = ++p;

        while (p < end && *p != ',') {
            if (*p == ' ') {
                return PLINTH_SIGV4_ERR_MALFORMED;
            }

            p++;
        }

        val.len = p - val.data;

        if (plinth_sv_lit(name, "Credential")) {
            bit = 1;
            cred = val;

        } else if (plinth_sv_lit(name, "SignedHeaders")) {
            bit = 2;
            sh = val;

        } else if (plinth_sv_lit(name, "Signature")) {
            bit = 4;
            sig = val;

        } else {
            return PLINTH_SIGV4_ERR_MALFORMED;
        }

        if (seen & bit) {
            return PLINTH_SIGV4_ERR_MALFORMED;
        }

        seen |= bit;

        if (p == end) {
            break;
        }

        p++;                                    /* ',' */

        while (p < end && *p == ' ') {
            p++;
        }

        if (p == end) {
            return PLINTH_SIGV4_ERR_MALFORMED;
        }
    }

    if (seen != 7) {
        return PLINTH_SIGV4_ERR_MISSING_COMPONENT;
    }

    rc = plinth_sigv4_parse_credential(cred, auth);
    if (rc != PLINTH_SIGV4_OK) {
        return rc;
    }

    rc = plinth_sigv4_parse_signed(sh, auth);
    if (rc != PLINTH_SIGV4_OK) {
        return rc;
    }

    rc = plinth_sigv4_check_signature(sig);
    if (rc != PLINTH_SIGV4_OK) {
        return rc;
    }

    auth->signature = sig;

    return PLINTH_SIGV4_OK;
}


int
plinth_sigv4_is_presigned(plinth_sv_str_t query)
{
    plinth_sv_str_t       name;
    const unsigned char  *p, *end;

    if (query.len == 0) {
        return 0;
    }

    p = query.data;
    end = p + query.len;

    while (p < end) {
        name.data = p;

        while (p < end && *p != '&' && *p != '=') {
            p++;
        }

        name.len = p - name.data;

        if (plinth_sv_dec_eq(name, "X-Amz-Algorithm")
            || plinth_sv_dec_eq(name, "X-Amz-Credential"))
        {
            return 1;
        }

        while (p < end && *p != '&') {
            p++;
        }

        if (p < end) {
            p++;
        }
    }

    return 0;
}


plinth_sigv4_rc_t
plinth_sigv4_parse_presigned(plinth_sv_str_t query, unsigned char *scratch,
    size_t size, plinth_sigv4_auth_t *auth)
{
    static const char    *names[] = {
        "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
        "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"
    };

    size_t                i, used;
    int64_t               expires;
    unsigned              seen;
    plinth_sv_str_t       name, raw, val[6];
    plinth_sigv4_rc_t     rc;
    const unsigned char  *p, *end;

    memset(auth, 0, sizeof(plinth_sigv4_auth_t));

    p = query.data;
    end = p + query.len;
    seen = 0;
    used = 0;

    while (p < end) {
        name.data = p;

        while (p < end && *p != '&' && *p != '=') {
            p++;
        }

        name.len = p - name.data;
        raw.data = p;
        raw.len = 0;

        if (p < end && *p == '=') {
            raw.data = ++p;

            while (p < end && *p != '&') {
                p++;
            }

            raw.len = p - raw.data;
        }

        if (p < end) {
            p++;                                /* '&' */
        }

        for (i = 0; i < 6; i++) {
            if (plinth_sv_dec_eq(name, names[i])) {
                break;
            }
        }

        if (i == 6) {
            continue;
        }

        if (seen & (1u << i)) {
            return PLINTH_SIGV4_ERR_MALFORMED;
        }

        seen |= 1u << i;

        rc = plinth_sv_decode(raw, scratch + used, size - used, &val[i]);
        if (rc != PLINTH_SIGV4_OK) {
            return rc;
        }

        used += val[i].len;
    }

    if ((seen & 1) && !plinth_sv_lit(val[0], PLINTH_SIGV4_ALGORITHM)) {
        return PLINTH_SIGV4_ERR_UNSUPPORTED_ALGORITHM;
    }

    if (seen != 0x3f) {
        return PLINTH_SIGV4_ERR_MISSING_COMPONENT;
    }

    rc = plinth_sigv4_parse_credential(val[1], auth);
    if (rc != PLINTH_SIGV4_OK) {
        return rc;
    }

    rc = plinth_sigv4_parse_signed(val[4], auth);
    if (rc != PLINTH_SIGV4_OK) {
        return rc;
    }

    rc = plinth_sigv4_check_signature(val[5]);
    if (rc != PLINTH_SIGV4_OK) {
        return rc;
    }

    auth->signature = val[5];

    rc = plinth_sigv4_set_date(auth, val[2]);
    if (rc != PLINTH_SIGV4_OK) {
        return rc;
    }

    if (val[3].len == 0 || val[3].len > 6
        || !plinth_sv_digits(val[3].data, val[3].len, &expires)
        || expires < 1 || expires > PLINTH_SIGV4_MAX_EXPIRES)
    {
        return PLINTH_SIGV4_ERR_EXPIRES;
    }

    auth->expires = expires;
    auth->presigned = 1;

    return PLINTH_SIGV4_OK;
}


plinth_sigv4_rc_t
plinth_sigv4_set_date(plinth_sigv4_auth_t *auth, plinth_sv_str_t amz_date)
{
    int64_t            t;
    plinth_sigv4_rc_t  rc;

    rc = plinth_sigv4_parse_date(amz_date, &t);
    if (rc != PLINTH_SIGV4_OK) {
        return rc;
    }

    if (auth->date.len != 8 || memcmp(auth->date.data, amz_date.data, 8) != 0)
    {
        return PLINTH_SIGV4_ERR_DATE_MISMATCH;
    }

    auth->amz_date = amz_date;
    auth->time = t;

    return PLINTH_SIGV4_OK;
}


plinth_sigv4_rc_t
plinth_sigv4_check_skew(int64_t t, int64_t now)
{
    if (t > now + PLINTH_SIGV4_MAX_SKEW || t < now - PLINTH_SIGV4_MAX_SKEW) {
        return PLINTH_SIGV4_ERR_SKEWED;
    }

    return PLINTH_SIGV4_OK;
}


plinth_sigv4_rc_t
plinth_sigv4_check_presigned_time(const plinth_sigv4_auth_t *auth,
    int64_t now)
{
    if (auth->time > now + PLINTH_SIGV4_MAX_SKEW) {
        return PLINTH_SIGV4_ERR_NOT_YET_VALID;
    }

    if (now > auth->time + auth->expires) {
        return PLINTH_SIGV4_ERR_EXPIRED;
    }

    return PLINTH_SIGV4_OK;
}


plinth_sigv4_payload_t
plinth_sigv4_payload_kind(plinth_sv_str_t v)
{
    if (plinth_sigv4_check_signature(v) == PLINTH_SIGV4_OK) {
        return PLINTH_SIGV4_PAYLOAD_SHA256;
    }

    if (plinth_sv_lit(v, "UNSIGNED-PAYLOAD")) {
        return PLINTH_SIGV4_PAYLOAD_UNSIGNED;
    }

    if (plinth_sv_lit(v, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")) {
        return PLINTH_SIGV4_PAYLOAD_STREAMING;
    }

    if (plinth_sv_lit(v, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")) {
        return PLINTH_SIGV4_PAYLOAD_STREAMING_TRAILER;
    }

    if (plinth_sv_lit(v, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")) {
        return PLINTH_SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER;
    }

    if (plinth_sv_lit(v, "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD")
        || plinth_sv_lit(v, "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"))
    {
        return PLINTH_SIGV4_PAYLOAD_UNSUPPORTED;
    }

    return PLINTH_SIGV4_PAYLOAD_INVALID;
}


/* the canonical request */

static plinth_sigv4_rc_t
plinth_sigv4_uri_s3(plinth_sv_out_t *o, plinth_sv_str_t path)
{
    size_t    i;
    unsigned  c;

    if (path.len == 0) {
        plinth_sv_put(o, '/');
        return PLINTH_SIGV4_OK;
    }

    if (path.data[0] != '/' || !plinth_sv_pct_valid(path)) {
        return PLINTH_SIGV4_ERR_URI;
    }

    for (i = 0; i < path.len; i++) {
        c = path.data[i];

        if (c == '/') {
            plinth_sv_put(o, '/');
            continue;
        }

        if (c == '%') {
            c = (unsigned) (plinth_sv_hexval(path.data[i + 1]) << 4
                            | plinth_sv_hexval(path.data[i + 2]));
            i += 2;
        }

        plinth_sv_put_enc(o, c);
    }

    return PLINTH_SIGV4_OK;
}


/*
 * The generic rules: drop empty and "." segments, let ".." cancel the
 * segment before it, keep a trailing '/', encode the raw bytes again. A
 * segment survives if no later ".." reaches it: scanning right, each
 * surviving plain segment absorbs one "..".
 */

static plinth_sigv4_rc_t
plinth_sigv4_uri_generic(plinth_sv_out_t *o, plinth_sv_str_t path)
{
    int                   wrote, cancelled;
    size_t                nseg, depth, i;
    plinth_sv_str_t       s, t;
    const unsigned char  *p, *end, *q, *r;

    if (path.len == 0) {
        plinth_sv_put(o, '/');
        return PLINTH_SIGV4_OK;
    }

    if (path.data[0] != '/') {
        return PLINTH_SIGV4_ERR_URI;
    }

    end = path.data + path.len;
    nseg = 0;

    for (p = path.data; p < end; p++) {
        if (*p == '/' && ++nseg > PLINTH_SIGV4_MAX_GENERIC_SEGMENTS) {
            return PLINTH_SIGV4_ERR_URI;
        }
    }

    wrote = 0;
    p = path.data + 1;

    for ( ;; ) {
        for (q = p; q < end && *q != '/'; q++) { /* void */ }

        s.data = p;
        s.len = q - p;

        if (s.len != 0 && !plinth_sv_lit(s, ".") && !plinth_sv_lit(s, "..")) {
            depth = 0;
            cancelled = 0;
            r = q;

            while (r < end) {
                t.data = ++r;

                while (r < end && *r != '/') {
                    r++;
                }

                t.len = r - t.data;

                if (t.len == 0 || plinth_sv_lit(t, ".")) {
                    continue;
                }

                if (!plinth_sv_lit(t, "..")) {
                    depth++;

                } else if (depth == 0) {
                    cancelled = 1;
                    break;

                } else {
                    depth--;
                }
            }

            if (!cancelled) {
                plinth_sv_put(o, '/');

                for (i = 0; i < s.len; i++) {
                    plinth_sv_put_enc(o, s.data[i]);
                }

                wrote = 1;
            }
        }

        if (q == end) {
            break;
        }

        p = q + 1;
    }

    if (!wrote || end[-1] == '/') {
        plinth_sv_put(o, '/');
    }

    return PLINTH_SIGV4_OK;
}


static plinth_sigv4_rc_t
plinth_sigv4_query(plinth_sv_out_t *o, plinth_sv_str_t query, unsigned flags)
{
    size_t                i, n;
    plinth_sv_enc_t       it;
    plinth_sv_param_t     params[PLINTH_SIGV4_MAX_QUERY_PARAMS];
    plinth_sv_param_t    *pm;
    const unsigned char  *p, *end, *start;
    int                   c;

    p = query.data;
    end = query.len ? p + query.len : p;   /* an empty query may be NULL */
    n = 0;

    while (p < end) {
        start = p;

        while (p < end && *p != '&') {
            p++;
        }

        if (p == start) {
            p++;
            continue;
        }

        if (n == PLINTH_SIGV4_MAX_QUERY_PARAMS) {
            return PLINTH_SIGV4_ERR_TOO_MANY_PARAMS;
        }

        pm = &params[n];
        pm->name.data = start;

        while (start < p && *start != '=') {
            start++;
        }

        pm->name.len = start - pm->name.data;
        pm->value.data = start < p ? start + 1 : p;
        pm->value.len = p - pm->value.data;

        if (p < end) {
            p++;
        }

        if (!plinth_sv_pct_valid(pm->name) || !plinth_sv_pct_valid(pm->value))
        {
            return PLINTH_SIGV4_ERR_URI;
        }

        if ((flags & PLINTH_SIGV4_PRESIGNED)
            && plinth_sv_dec_eq(pm->name, "X-Amz-Signature"))
        {
            continue;
        }

        n++;
    }

    plinth_sv_sort(params, n);

    for (i = 0; i < n; i++) {
        if (i) {
            plinth_sv_put(o, '&');
        }

        plinth_sv_enc_init(&it, params[i].name);

        while ((c = plinth_sv_enc_next(&it)) != -1) {
            plinth_sv_put(o, (unsigned) c);
        }

        plinth_sv_put(o, '=');

        plinth_sv_enc_init(&it, params[i].value);

        while ((c = plinth_sv_enc_next(&it)) != -1) {
            plinth_sv_put(o, (unsigned) c);
        }
    }

    return PLINTH_SIGV4_OK;
}


static plinth_sigv4_rc_t
plinth_sigv4_finish(plinth_sv_out_t *o, size_t *len)
{
    *len = o->len;

    return o->len <= o->size ? PLINTH_SIGV4_OK : PLINTH_SIGV4_ERR_BUFFER;
}


plinth_sigv4_rc_t
plinth_sigv4_canonical_request(const plinth_sigv4_request_t *req,
    const plinth_sigv4_auth_t *auth, unsigned char *buf, size_t size,
    size_t *len)
{
    size_t                     i, j;
    int                        first;
    plinth_sv_out_t            o;
    plinth_sigv4_rc_t          rc;
    const plinth_sv_str_t     *s;
    const plinth_sv_header_t  *h;

    o.buf = buf;
    o.size = buf ? size : 0;
    o.len = 0;
    *len = 0;

    plinth_sv_puts(&o, req->method.data, req->method.len);
    plinth_sv_put(&o, '\n');

    if (req->flags & PLINTH_SIGV4_GENERIC) {
        rc = plinth_sigv4_uri_generic(&o, req->path);

    } else {
        rc = plinth_sigv4_uri_s3(&o, req->path);
    }

    if (rc != PLINTH_SIGV4_OK) {
        return rc;
    }

    plinth_sv_put(&o, '\n');

    rc = plinth_sigv4_query(&o, req->query, req->flags);
    if (rc != PLINTH_SIGV4_OK) {
        return rc;
    }

    plinth_sv_put(&o, '\n');

    for (i = 0; i < auth->nheaders && i < PLINTH_SIGV4_MAX_SIGNED_HEADERS; i++)
    {
        s = &auth->headers[i];
        plinth_sv_puts(&o, s->data, s->len);
        plinth_sv_put(&o, ':');
        first = 1;

        for (j = 0; j < req->nheaders; j++) {
            h = &req->headers[j];

            if (!plinth_sv_name_eq(h->name, *s)) {
                continue;
            }

            if (!first) {
                plinth_sv_put(&o, ',');
            }

            plinth_sv_put_value(&o, h->value);
            first = 0;
        }

        plinth_sv_put(&o, '\n');
    }

    plinth_sv_put(&o, '\n');
    plinth_sv_puts(&o, auth->signed_headers.data, auth->signed_headers.len);
    plinth_sv_put(&o, '\n');
    plinth_sv_puts(&o, req->payload_hash.data, req->payload_hash.len);

    return plinth_sigv4_finish(&o, len);
}


/* hashing and signing */

static EVP_MD       *plinth_sigv4_md;     /* SHA-256, fetched once */
static EVP_MAC_CTX  *plinth_sigv4_mac;    /* HMAC-SHA256, keyed per call */


static const EVP_MD *
plinth_sigv4_sha256_md(void)
{
    if (plinth_sigv4_md == NULL) {
        plinth_sigv4_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    }

    return plinth_sigv4_md ? plinth_sigv4_md : EVP_sha256();
}


static plinth_sigv4_rc_t
plinth_sigv4_hmac(const unsigned char *key, size_t klen, const void *data,
    size_t len, unsigned char out[32])
{
    size_t       olen;
    EVP_MAC     *mac;
    OSSL_PARAM   params[2];

    if (data == NULL) {
        data = "";
    }

    if (plinth_sigv4_mac == NULL) {
        mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (mac == NULL) {
            return PLINTH_SIGV4_ERR_CRYPTO;
        }

        plinth_sigv4_mac = EVP_MAC_CTX_new(mac);
        EVP_MAC_free(mac);      /* the context keeps its own reference */

        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                     (char *) "SHA256", 0);
        params[1] = OSSL_PARAM_construct_end();

        if (plinth_sigv4_mac == NULL
            || EVP_MAC_CTX_set_params(plinth_sigv4_mac, params) != 1)
        {
            EVP_MAC_CTX_free(plinth_sigv4_mac);
            plinth_sigv4_mac = NULL;
            return PLINTH_SIGV4_ERR_CRYPTO;
        }
    }

    /* a new key starts a new MAC in the same context */
    if (EVP_MAC_init(plinth_sigv4_mac, key, klen, NULL) != 1
        || EVP_MAC_update(plinth_sigv4_mac, data, len) != 1
        || EVP_MAC_final(plinth_sigv4_mac, out, &olen, 32) != 1
        || olen != 32)
    {
        return PLINTH_SIGV4_ERR_CRYPTO;
    }

    return PLINTH_SIGV4_OK;
}


plinth_sigv4_rc_t
plinth_sigv4_sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int  olen;

    if (data == NULL) {
        data = "";
    }

    if (EVP_Digest(data, len, out, &olen, plinth_sigv4_sha256_md(), NULL)
        != 1
        || olen != 32)
    {
        return PLINTH_SIGV4_ERR_CRYPTO;
    }

    return PLINTH_SIGV4_OK;
}


plinth_sigv4_rc_t
plinth_sigv4_sha256_init(EVP_MD_CTX *ctx)
{
    if (EVP_DigestInit_ex(ctx, plinth_sigv4_sha256_md(), NULL) != 1) {
        return PLINTH_SIGV4_ERR_CRYPTO;
    }

    return PLINTH_SIGV4_OK;
}


plinth_sigv4_rc_t
plinth_sigv4_sha256_update(EVP_MD_CTX *ctx, const void *data, size_t len)
{
    if (len && EVP_DigestUpdate(ctx, data, len) != 1) {
        return PLINTH_SIGV4_ERR_CRYPTO;
    }

    return PLINTH_SIGV4_OK;
}


plinth_sigv4_rc_t
plinth_sigv4_sha256_final(EVP_MD_CTX *ctx, unsigned char out[32])
{
    unsigned int  olen;

    if (EVP_DigestFinal_ex(ctx, out, &olen) != 1 || olen != 32) {
        return PLINTH_SIGV4_ERR_CRYPTO;
    }

    return PLINTH_SIGV4_OK;
}


void
plinth_sigv4_hex(const unsigned char *in, size_t n, unsigned char *out)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        out[2 * i] = (unsigned char) plinth_sv_hex_lower[in[i] >> 4];
        out[2 * i + 1] = (unsigned char) plinth_sv_hex_lower[in[i] & 0x0f];
    }
}


plinth_sigv4_rc_t
plinth_sigv4_string_to_sign(plinth_sv_str_t amz_date, plinth_sv_str_t scope,
    const unsigned char *creq, size_t creq_len, unsigned char *buf,
    size_t size, size_t *len)
{
    unsigned char      md[32], hex[64];
    plinth_sv_out_t    o;
    plinth_sigv4_rc_t  rc;

    *len = 0;

    rc = plinth_sigv4_sha256(creq, creq_len, md);
    if (rc != PLINTH_SIGV4_OK) {
        return rc;
    }

    plinth_sigv4_hex(md, 32, hex);

    o.buf = buf;
    o.size = buf ? size : 0;
    o.len = 0;

    plinth_sv_puts(&o, PLINTH_SIGV4_ALGORITHM "\n",
                   sizeof(PLINTH_SIGV4_ALGORITHM));
    plinth_sv_puts(&o, amz_date.data, amz_date.len);
    plinth_sv_put(&o, '\n');
    plinth_sv_puts(&o, scope.data, scope.len);
    plinth_sv_put(&o, '\n');
    plinth_sv_puts(&o, hex, 64);

    return plinth_sigv4_finish(&o, len);
}


plinth_sigv4_rc_t
plinth_sigv4_signing_key(plinth_sv_str_t secret, plinth_sv_str_t date,
    plinth_sv_str_t region, plinth_sv_str_t service, unsigned char key[32])
{
    unsigned char      k[4 + PLINTH_SIGV4_MAX_SECRET], a[32], b[32];
    plinth_sigv4_rc_t  rc;

    if (secret.len > PLINTH_SIGV4_MAX_SECRET) {
        return PLINTH_SIGV4_ERR_BUFFER;
    }

    memcpy(k, "AWS4", 4);

    if (secret.len) {
        memcpy(k + 4, secret.data, secret.len);
    }

    rc = plinth_sigv4_hmac(k, 4 + secret.len, date.data, date.len, a);

    if (rc == PLINTH_SIGV4_OK) {
        rc = plinth_sigv4_hmac(a, 32, region.data, region.len, b);
    }

    if (rc == PLINTH_SIGV4_OK) {
        rc = plinth_sigv4_hmac(b, 32, service.data, service.len, a);
    }

    if (rc == PLINTH_SIGV4_OK) {
        rc = plinth_sigv4_hmac(a, 32, PLINTH_SIGV4_TERMINATOR,
                               sizeof(PLINTH_SIGV4_TERMINATOR) - 1, key);
    }

    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(a, sizeof(a));
    OPENSSL_cleanse(b, sizeof(b));

    return rc;
}


plinth_sigv4_rc_t
plinth_sigv4_sign(const unsigned char key[32], const unsigned char *sts,
    size_t len, unsigned char hex[64])
{
    unsigned char      md[32];
    plinth_sigv4_rc_t  rc;

    rc = plinth_sigv4_hmac(key, 32, sts, len, md);
    if (rc != PLINTH_SIGV4_OK) {
        return rc;
    }

    plinth_sigv4_hex(md, 32, hex);

    return PLINTH_SIGV4_OK;
}


int
plinth_sigv4_signature_eq(plinth_sv_str_t claimed, const unsigned char hex[64])
{
    if (claimed.len != 64 || claimed.data == NULL) {
        return 0;
    }

    return CRYPTO_memcmp(claimed.data, hex, 64) == 0;
}


plinth_sigv4_rc_t
plinth_sigv4_verify(const plinth_sigv4_request_t *req,
    const plinth_sigv4_auth_t *auth, const unsigned char key[32],
    unsigned char *buf, size_t size, unsigned char sig[64])
{
    size_t             len, slen;
    unsigned char      sts[PLINTH_SIGV4_STS_MAX], hex[64];
    plinth_sigv4_rc_t  rc;

    if (auth->amz_date.len != 16) {
        return PLINTH_SIGV4_ERR_DATE;
    }

    rc = plinth_sigv4_canonical_request(req, auth, buf, size, &len);
    if (rc != PLINTH_SIGV4_OK) {
        return rc;
    }

    rc = plinth_sigv4_string_to_sign(auth->amz_date, auth->scope, buf, len,
                                     sts, sizeof(sts), &slen);
    if (rc != PLINTH_SIGV4_OK) {
        return rc;
    }

    rc = plinth_sigv4_sign(key, sts, slen, hex);
    if (rc != PLINTH_SIGV4_OK) {
        return rc;
    }

    if (sig) {
        memcpy(sig, hex, 64);
    }

    return plinth_sigv4_signature_eq(auth->signature, hex)
           ? PLINTH_SIGV4_OK : PLINTH_SIGV4_ERR_MISMATCH;
}


/* aws-chunked */

plinth_sigv4_rc_t
plinth_sigv4_trailer_update(EVP_MD_CTX *ctx, plinth_sv_str_t name,
    plinth_sv_str_t value)
{
    size_t                i, n;
    unsigned char         low[64];
    unsigned              c;
    plinth_sigv4_rc_t     rc;
    const unsigned char  *p, *end;

    if (plinth_sv_lit_ci(name, "x-amz-trailer-signature")) {
        return PLINTH_SIGV4_OK;
    }

    for (i = 0; i < name.len; i += n) {
        n = name.len - i < sizeof(low) ? name.len - i : sizeof(low);

        for (c = 0; c < n; c++) {
            low[c] = name.data[i + c];

            if (low[c] >= 'A' && low[c] <= 'Z') {
                low[c] |= 0x20;
            }
        }

        rc = plinth_sigv4_sha256_update(ctx, low, n);
        if (rc != PLINTH_SIGV4_OK) {
            return rc;
        }
    }

    p = value.data;
    end = p + value.len;

    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }

    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }

    rc = plinth_sigv4_sha256_update(ctx, ":", 1);

    if (rc == PLINTH_SIGV4_OK) {
        rc = plinth_sigv4_sha256_update(ctx, p, end - p);
    }

    if (rc == PLINTH_SIGV4_OK) {
        rc = plinth_sigv4_sha256_update(ctx, "\n", 1);
    }

    return rc;
}


static plinth_sigv4_rc_t
plinth_sigv4_stream_sts(const char *algorithm, plinth_sv_str_t amz_date,
    plinth_sv_str_t scope, plinth_sv_str_t prev, int empty,
    const unsigned char sha256[32], unsigned char *buf, size_t size,
    size_t *len)
{
    unsigned char    hex[64];
    plinth_sv_out_t  o;

    o.buf = buf;
    o.size = buf ? size : 0;
    o.len = 0;

    plinth_sigv4_hex(sha256, 32, hex);

    plinth_sv_puts(&o, algorithm, strlen(algorithm));
    plinth_sv_put(&o, '\n');
    plinth_sv_puts(&o, amz_date.data, amz_date.len);
    plinth_sv_put(&o, '\n');
    plinth_sv_puts(&o, scope.data, scope.len);
    plinth_sv_put(&o, '\n');
    plinth_sv_puts(&o, prev.data, prev.len);
    plinth_sv_put(&o, '\n');

    if (empty) {
        plinth_sv_puts(&o, PLINTH_SIGV4_EMPTY_SHA256 "\n", 65);
    }

    plinth_sv_puts(&o, hex, 64);

    return plinth_sigv4_finish(&o, len);
}


plinth_sigv4_rc_t
plinth_sigv4_chunk_string_to_sign(plinth_sv_str_t amz_date,
    plinth_sv_str_t scope, plinth_sv_str_t prev,
    const unsigned char chunk_sha256[32], unsigned char *buf, size_t size,
    size_t *len)
{
    return plinth_sigv4_stream_sts("AWS4-HMAC-SHA256-PAYLOAD", amz_date,
                                   scope, prev, 1, chunk_sha256, buf, size,
                                   len);
}


plinth_sigv4_rc_t
plinth_sigv4_trailer_string_to_sign(plinth_sv_str_t amz_date,
    plinth_sv_str_t scope, plinth_sv_str_t prev,
    const unsigned char trailer_sha256[32], unsigned char *buf, size_t size,
    size_t *len)
{
    return plinth_sigv4_stream_sts("AWS4-HMAC-SHA256-TRAILER", amz_date,
                                   scope, prev, 0, trailer_sha256, buf, size,
                                   len);
}


plinth_sigv4_rc_t
plinth_sigv4_chain_init(plinth_sigv4_chain_t *chain,
    const unsigned char key[32], plinth_sv_str_t amz_date,
    plinth_sv_str_t scope, plinth_sv_str_t seed)
{
    int64_t  t;

    if (plinth_sigv4_parse_date(amz_date, &t) != PLINTH_SIGV4_OK) {
        return PLINTH_SIGV4_ERR_DATE;
    }

    if (scope.len > PLINTH_SIGV4_MAX_SCOPE) {
        return PLINTH_SIGV4_ERR_CREDENTIAL;
    }

    if (plinth_sigv4_check_signature(seed) != PLINTH_SIGV4_OK) {
        return PLINTH_SIGV4_ERR_SIGNATURE_FORMAT;
    }

    memcpy(chain->key, key, 32);
    memcpy(chain->amz_date, amz_date.data, 16);

    if (scope.len) {
        memcpy(chain->scope, scope.data, scope.len);
    }

    chain->scope_len = scope.len;
    memcpy(chain->prev, seed.data, 64);

    return PLINTH_SIGV4_OK;
}


static plinth_sigv4_rc_t
plinth_sigv4_chain_step(plinth_sigv4_chain_t *chain, int trailer,
    const unsigned char sha256[32], plinth_sv_str_t claimed)
{
    size_t             len;
    unsigned char      sts[PLINTH_SIGV4_STS_MAX], hex[64];
    plinth_sv_str_t    date, scope, prev;
    plinth_sigv4_rc_t  rc;

    date.data = chain->amz_date;
    date.len = 16;
    scope.data = chain->scope;
    scope.len = chain->scope_len;
    prev.data = chain->prev;
    prev.len = 64;

    if (trailer) {
        rc = plinth_sigv4_trailer_string_to_sign(date, scope, prev, sha256,
                                                 sts, sizeof(sts), &len);

    } else {
        rc = plinth_sigv4_chunk_string_to_sign(date, scope, prev, sha256,
                                               sts, sizeof(sts), &len);
    }

    if (rc != PLINTH_SIGV4_OK) {
        return rc;
    }

    rc = plinth_sigv4_sign(chain->key, sts, len, hex);
    if (rc != PLINTH_SIGV4_OK) {
        return rc;
    }

    if (!plinth_sigv4_signature_eq(claimed, hex)) {
        return PLINTH_SIGV4_ERR_MISMATCH;
    }

    memcpy(chain->prev, hex, 64);

    return PLINTH_SIGV4_OK;
}


plinth_sigv4_rc_t
plinth_sigv4_chain_chunk(plinth_sigv4_chain_t *chain,
    const unsigned char chunk_sha256[32], plinth_sv_str_t claimed)
{
    return plinth_sigv4_chain_step(chain, 0, chunk_sha256, claimed);
}


plinth_sigv4_rc_t
plinth_sigv4_chain_trailer(plinth_sigv4_chain_t *chain,
    const unsigned char trailer_sha256[32], plinth_sv_str_t claimed)
{
    return plinth_sigv4_chain_step(chain, 1, trailer_sha256, claimed);
}


/* errors */

const char *
plinth_sigv4_s3_error(plinth_sigv4_rc_t rc, int presigned)
{
    switch (rc) {

    case PLINTH_SIGV4_OK:
        return NULL;

    case PLINTH_SIGV4_ERR_UNSUPPORTED_ALGORITHM:
        return presigned ? "AuthorizationQueryParametersError"
                         : "InvalidArgument";

    case PLINTH_SIGV4_ERR_MALFORMED:
    case PLINTH_SIGV4_ERR_MISSING_COMPONENT:
    case PLINTH_SIGV4_ERR_CREDENTIAL:
    case PLINTH_SIGV4_ERR_SIGNED_HEADERS:
    case PLINTH_SIGV4_ERR_TOO_MANY_HEADERS:
    case PLINTH_SIGV4_ERR_DATE_MISMATCH:
        return presigned ? "AuthorizationQueryParametersError"
                         : "AuthorizationHeaderMalformed";

    case PLINTH_SIGV4_ERR_EXPIRES:
        return "AuthorizationQueryParametersError";

    case PLINTH_SIGV4_ERR_DATE:
        return presigned ? "AuthorizationQueryParametersError"
                         : "AccessDenied";

    case PLINTH_SIGV4_ERR_EXPIRED:
    case PLINTH_SIGV4_ERR_NOT_YET_VALID:
        return "AccessDenied";

    case PLINTH_SIGV4_ERR_SKEWED:
        return "RequestTimeTooSkewed";

    case PLINTH_SIGV4_ERR_URI:
    case PLINTH_SIGV4_ERR_TOO_MANY_PARAMS:
        return "InvalidURI";

    case PLINTH_SIGV4_ERR_CONTENT_SHA256:
        return "InvalidArgument";

    case PLINTH_SIGV4_ERR_SIGNATURE_FORMAT:
    case PLINTH_SIGV4_ERR_MISMATCH:
        return "SignatureDoesNotMatch";

    default:
        return "InternalError";
    }
}


const char *
plinth_sigv4_strerror(plinth_sigv4_rc_t rc)
{
    switch (rc) {

    case PLINTH_SIGV4_OK:
        return "ok";

    case PLINTH_SIGV4_ERR_UNSUPPORTED_ALGORITHM:
        return "Unsupported Authorization Type";

    case PLINTH_SIGV4_ERR_MALFORMED:
        return "the authorization is malformed";

    case PLINTH_SIGV4_ERR_MISSING_COMPONENT:
        return "the authorization requires Credential, SignedHeaders and "
               "Signature (presigned: X-Amz-Algorithm, X-Amz-Credential, "
               "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders and "
               "X-Amz-Expires)";

    case PLINTH_SIGV4_ERR_CREDENTIAL:
        return "the Credential is mal-formed; expecting "
               "\"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"";

    case PLINTH_SIGV4_ERR_SIGNED_HEADERS:
        return "SignedHeaders must be lower-case names separated by ';', "
               "without duplicates, including host";

    case PLINTH_SIGV4_ERR_TOO_MANY_HEADERS:
        return "too many signed headers";

    case PLINTH_SIGV4_ERR_SIGNATURE_FORMAT:
        return "the signature is not 64 lower-case hex digits";

    case PLINTH_SIGV4_ERR_EXPIRES:
        return "X-Amz-Expires must be a number from 1 to 604800";

    case PLINTH_SIGV4_ERR_DATE:
        return "AWS authentication requires a valid Date or x-amz-date "
               "header";

    case PLINTH_SIGV4_ERR_DATE_MISMATCH:
        return "Invalid credential date. Date is not the same as "
               "X-Amz-Date.";

    case PLINTH_SIGV4_ERR_EXPIRED:
        return "Request has expired";

    case PLINTH_SIGV4_ERR_NOT_YET_VALID:
        return "Request is not valid yet";

    case PLINTH_SIGV4_ERR_SKEWED:
        return "The difference between the request time and the current "
               "time is too large.";

    case PLINTH_SIGV4_ERR_URI:
        return "Couldn't parse the specified URI.";

    case PLINTH_SIGV4_ERR_TOO_MANY_PARAMS:
        return "too many query parameters";

    case PLINTH_SIGV4_ERR_CONTENT_SHA256:
        return "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING "
               "value or a valid sha256 value";

    case PLINTH_SIGV4_ERR_MISMATCH:
        return "The request signature we calculated does not match the "
               "signature you provided.";

    case PLINTH_SIGV4_ERR_BUFFER:
        return "buffer too small";

    case PLINTH_SIGV4_ERR_CRYPTO:
        return "crypto library failure";
    }

    return "unknown error";
}
