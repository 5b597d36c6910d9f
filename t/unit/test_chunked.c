/*
 * Unit test for the aws-chunked decoder (ngx_plinth_module/
 * ngx_plinth_chunked.c), with the SigV4 chain of ngx_plinth_sigv4.c
 * verifying each chunk as a gateway would.
 *
 * Prints TAP: "ok N - ..." / "not ok N - ...", notes as "# ...", the plan
 * "1..N" last; exits 1 if anything failed. It feeds bodies in every way a
 * network could deliver them: whole, one byte at a time, split at every
 * byte boundary (every pair of boundaries for small bodies), and in random
 * slices; checks the event order, the decoded bytes (DATA spans must point
 * into the input, never copies), the chunk and trailer signatures, the
 * errors of malformed bodies; and round-trips random payloads encoded with
 * random chunk sizes, modes and trailers. The seed is fixed; argv[1] picks
 * another.
 */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_plinth_chunked.h"
#include "ngx_plinth_sigv4.h"


#define DATE   "20130524T000000Z"
#define SCOPE  "20130524/us-east-1/s3/aws4_request"
#define SEED                                                                  \
    "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
#define TSEED                                                                 \
    "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
#define SIG0                                                                  \
    "0000000000000000000000000000000000000000000000000000000000000000"

#define MAX_TRAILER_TEXT  4096


typedef struct {
    /* what the decoder reported */
    plinth_chunked_rc_t    rc;          /* first error, or finish() */
    unsigned char         *out;         /* decoded payload (if kept) */
    size_t                 out_len;
    size_t                 out_cap;
    size_t                 nchunks;
    int                    order_ok;
    int                    spans_ok;
    int                    last_seen;
    int                    done_seen;
    char                   trailers[MAX_TRAILER_TEXT];
    size_t                 trailers_len;

    /* checking signatures on the way (chain == NULL: don't) */
    plinth_sigv4_chain_t  *chain;
    EVP_MD_CTX            *md;
    unsigned char          sig[64];
    int                    sigs_ok;
    size_t                 sigs_checked;

    /* internal */
    int                    phase;       /* 0 size, 1 data, 2 trailers, 3 done */
    uint64_t               expect;
    uint64_t               got;
    const unsigned char   *body;
    size_t                 body_len;
} run_t;


static int       test_count;
static int       test_failed;
static uint64_t  test_rng;
static unsigned char  test_key[32];


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


/* a growable byte buffer for building bodies */

typedef struct {
    unsigned char  *p;
    size_t          len;
    size_t          cap;
} buf_t;


static void
buf_add(buf_t *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }

    memcpy(b->p + b->len, data, len);
    b->len += len;
}


static void
buf_str(buf_t *b, const char *s)
{
    buf_add(b, s, strlen(s));
}


/* one event: check its place in the order and what it carries */

static void
run_event(run_t *r, const plinth_chunked_event_t *ev)
{
    unsigned char  md[32];

    switch (ev->type) {

    case PLINTH_CHUNKED_EV_CHUNK:
        if (r->phase != 0 || ev->size == 0) {
            r->order_ok = 0;
        }

        r->phase = 1;
        r->expect = ev->size;
        r->got = 0;
        r->nchunks++;

        if (r->chain) {
            if (ev->signature == NULL) {
                r->sigs_ok = 0;
            } else {
                memcpy(r->sig, ev->signature, 64);
            }

            plinth_sigv4_sha256_init(r->md);
        }

        break;

    case PLINTH_CHUNKED_EV_DATA:
        if (r->phase != 1 || ev->len == 0 || r->got + ev->len > r->expect) {
            r->order_ok = 0;
        }

        if (ev->data < r->body || ev->data + ev->len > r->body + r->body_len)
        {
            r->spans_ok = 0;
        }

        r->got += ev->len;

        if (r->out) {
            if (r->out_len + ev->len > r->out_cap) {
                r->order_ok = 0;
            } else {
                memcpy(r->out + r->out_len, ev->data, ev->len);
            }
        }

        r->out_len += ev->len;

        if (r->chain) {
            plinth_sigv4_sha256_update(r->md, ev->data, ev->len);
        }

        break;

    case PLINTH_CHUNKED_EV_CHUNK_END:
        if (r->phase != 1 || r->got != r->expect) {
            r->order_ok = 0;
        }

        r->phase = 0;

        if (r->chain) {
            plinth_sigv4_sha256_final(r->md, md);

            if (plinth_sigv4_chain_chunk(r->chain, md, SN(r->sig, 64))
                != PLINTH_SIGV4_OK)
            {
                r->sigs_ok = 0;
            }

            r->sigs_checked++;
        }

        break;

    case PLINTH_CHUNKED_EV_LAST:
        if (r->phase != 0) {
            r->order_ok = 0;
        }

        r->phase = 2;
        r->last_seen = 1;

        if (r->chain) {
            plinth_sigv4_sha256(NULL, 0, md);

            if (ev->signature == NULL
                || plinth_sigv4_chain_chunk(r->chain, md,
                                            SN(ev->signature, 64))
                   != PLINTH_SIGV4_OK)
            {
                r->sigs_ok = 0;
            }

            r->sigs_checked++;
            plinth_sigv4_sha256_init(r->md);
        }

        break;

    case PLINTH_CHUNKED_EV_TRAILER:
        if (r->phase != 2) {
            r->order_ok = 0;
        }

        if (r->trailers_len + ev->name_len + ev->len + 2 < MAX_TRAILER_TEXT)
        {
            memcpy(r->trailers + r->trailers_len, ev->name, ev->name_len);
            r->trailers_len += ev->name_len;
            r->trailers[r->trailers_len++] = ':';
            memcpy(r->trailers + r->trailers_len, ev->data, ev->len);
            r->trailers_len += ev->len;
            r->trailers[r->trailers_len++] = '\n';
            r->trailers[r->trailers_len] = '\0';
        }

        if (r->chain) {
            if (ev->name_len == 23
                && memcmp(ev->name, "x-amz-trailer-signature", 23) == 0)
            {
                plinth_sigv4_sha256_final(r->md, md);

                if (plinth_sigv4_chain_trailer(r->chain, md,
                                               SN(ev->data, ev->len))
                    != PLINTH_SIGV4_OK)
                {
                    r->sigs_ok = 0;
                }

                r->sigs_checked++;
                plinth_sigv4_sha256_init(r->md);

            } else {
                plinth_sigv4_trailer_update(r->md, SN(ev->name, ev->name_len),
                                            SN(ev->data, ev->len));
            }
        }

        break;

    case PLINTH_CHUNKED_EV_DONE:
        if (r->phase != 2) {
            r->order_ok = 0;
        }

        r->phase = 3;
        r->done_seen = 1;
        break;

    default:
        r->order_ok = 0;
    }
}


/*
 * Decodes body, cut at the boundaries in cuts[0..ncuts) (ascending), or
 * in random slices of 1..rand_max bytes if rand_max > 0. Every slice up to
 * 4 KiB is a separate heap copy of exactly its size, so reading past it
 * trips ASan (larger ones point into body, to keep the many runs cheap).
 */

static void
run(run_t *r, plinth_chunked_mode_t mode, int64_t decoded_length,
    uint64_t min_chunk, const unsigned char *body, size_t len,
    const size_t *cuts, size_t ncuts, size_t rand_max, int keep)
{
    size_t                  off, next, k, n;
    unsigned char          *slice;
    plinth_chunked_t       *d;
    plinth_chunked_rc_t     rc;
    plinth_chunked_event_t  ev;
    const unsigned char    *p, *end;
    plinth_sigv4_chain_t   *chain;
    EVP_MD_CTX             *md;

    chain = r->chain;
    md = r->md;
    memset(r, 0, sizeof(run_t));
    r->chain = chain;
    r->md = md;
    r->order_ok = 1;
    r->spans_ok = 1;
    r->sigs_ok = 1;
    r->rc = PLINTH_CHUNKED_OK;

    if (keep) {
        r->out_cap = len;
        r->out = malloc(len ? len : 1);
    }

    d = malloc(sizeof(plinth_chunked_t));
    plinth_chunked_init(d, mode, decoded_length);
    d->min_chunk_size = min_chunk;

    off = 0;
    k = 0;

    while (off < len) {
        if (rand_max) {
            next = off + 1 + rnd() % rand_max;

        } else if (k < ncuts) {
            next = cuts[k++];

        } else {
            next = len;
        }

        if (next > len) {
            next = len;
        }

        if (next <= off) {
            continue;
        }

        n = next - off;

        if (n <= 4096) {
            slice = malloc(n);
            memcpy(slice, body + off, n);

        } else {
            slice = NULL;
        }

        r->body = slice ? slice : body + off;
        r->body_len = n;
        p = r->body;
        end = p + n;

        for ( ;; ) {
            rc = plinth_chunked_next(d, &p, end, &ev);

            if (rc != PLINTH_CHUNKED_OK) {
                break;
            }

            run_event(r, &ev);
        }

        free(slice);

        if (rc != PLINTH_CHUNKED_AGAIN) {
            r->rc = rc;

            /* errors are sticky */
            p = end = NULL;
            if (plinth_chunked_next(d, &p, end, &ev) != rc) {
                r->order_ok = 0;
            }

            free(d);
            return;
        }

        if (p != end) {
            r->order_ok = 0;
        }

        off = next;
    }

    r->rc = plinth_chunked_finish(d);

    if (r->rc == PLINTH_CHUNKED_OK && !r->done_seen) {
        r->order_ok = 0;
    }

    free(d);
}


static void
run_free(run_t *r)
{
    free(r->out);
    r->out = NULL;
}


/* the S3 examples */

static const char  *aws_sigs[] = {
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
};

static const char  *aws_tsigs[] = {
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
};


static void
aws_body(buf_t *b, int trailer)
{
    static unsigned char  a[65536];
    const char          **sigs;

    memset(a, 'a', sizeof(a));
    sigs = trailer ? aws_tsigs : aws_sigs;

    b->len = 0;
    buf_str(b, "10000;chunk-signature=");
    buf_str(b, sigs[0]);
    buf_str(b, "\r\n");
    buf_add(b, a, 65536);
    buf_str(b, "\r\n400;chunk-signature=");
    buf_str(b, sigs[1]);
    buf_str(b, "\r\n");
    buf_add(b, a, 1024);
    buf_str(b, "\r\n0;chunk-signature=");
    buf_str(b, sigs[2]);
    buf_str(b, "\r\n");

    if (trailer) {
        buf_str(b, "x-amz-checksum-crc32c:sOO8/Q==\r\n"
                "x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8"
                "730629a2e4a59689829ca17fe2e435\r\n");
    }

    buf_str(b, "\r\n");
}


static int
all_a(const run_t *r)
{
    size_t  i;

    if (r->out_len != 66560) {
        return 0;
    }

    for (i = 0; i < r->out_len; i++) {
        if (r->out[i] != 'a') {
            return 0;
        }
    }

    return 1;
}


static void
chain_start(plinth_sigv4_chain_t *chain, const char *seed)
{
    plinth_sigv4_chain_init(chain, test_key, S(DATE), S(SCOPE), S(seed));
}


static void
test_aws_example(void)
{
    int                    trailer, good, i;
    size_t                 k, cut, bad, cuts[2];
    buf_t                  b;
    run_t                  r;
    EVP_MD_CTX            *md;
    plinth_sigv4_chain_t   chain;
    plinth_chunked_mode_t  mode;

    memset(&b, 0, sizeof(b));
    memset(&r, 0, sizeof(r));
    md = EVP_MD_CTX_new();

    for (trailer = 0; trailer < 2; trailer++) {
        const char  *name = trailer ? "chunked+trailer example"
                                    : "chunked example";

        aws_body(&b, trailer);
        mode = trailer ? PLINTH_CHUNKED_SIGNED_TRAILER : PLINTH_CHUNKED_SIGNED;

        ok(b.len == (trailer ? 66946u : 66824u),
           "%s: body is %zu bytes", name, b.len);

        /* whole, with every signature verified as a gateway would */

        r.chain = &chain;
        r.md = md;
        chain_start(&chain, trailer ? TSEED : SEED);
        run(&r, mode, 66560, PLINTH_CHUNKED_S3_MIN_CHUNK, b.p, b.len, NULL,
            0, 0, 1);
        ok(r.rc == PLINTH_CHUNKED_OK && r.order_ok && r.spans_ok && all_a(&r)
           && r.nchunks == 2 && r.last_seen && r.done_seen,
           "%s: decodes whole to 66560 'a's in 2 chunks + final", name);
        ok(r.sigs_ok && r.sigs_checked == (size_t) (trailer ? 4 : 3),
           "%s: every chunk signature%s verifies", name,
           trailer ? " and the trailer signature" : "");

        if (trailer) {
            ok(strcmp(r.trailers, "x-amz-checksum-crc32c:sOO8/Q==\n"
                      "x-amz-trailer-signature:d81f82fc3505edab99d45989105"
                      "1a732e8730629a2e4a59689829ca17fe2e435\n") == 0,
               "%s: trailer headers reported", name);
        }

        run_free(&r);

        /* one byte at a time */

        chain_start(&chain, trailer ? TSEED : SEED);
        run(&r, mode, 66560, 0, b.p, b.len, NULL, 0, 1, 1);
        ok(r.rc == PLINTH_CHUNKED_OK && r.order_ok && r.spans_ok && all_a(&r)
           && r.sigs_ok && r.sigs_checked == (size_t) (trailer ? 4 : 3),
           "%s: one byte at a time, same result", name);
        run_free(&r);

        /* random slices */

        good = 1;

        for (i = 0; i < 50; i++) {
            chain_start(&chain, trailer ? TSEED : SEED);
            run(&r, mode, 66560, 0, b.p, b.len, NULL, 0,
                i < 25 ? 100 : 20000, 1);
            good &= r.rc == PLINTH_CHUNKED_OK && r.order_ok && r.spans_ok
                    && all_a(&r) && r.sigs_ok;
            run_free(&r);
        }

        ok(good, "%s: 50 runs in random slices (1..100, 1..20000 bytes)",
           name);

        /*
         * Split at every byte boundary: the data spans are checked by
         * position (spans_ok, counts) rather than copied, and signatures
         * are skipped, to keep 66824 decodes cheap.
         */

        r.chain = NULL;
        bad = 0;

        for (cut = 1; cut < b.len; cut++) {
            cuts[0] = cut;
            run(&r, mode, 66560, 0, b.p, b.len, cuts, 1, 0, 0);

            if (r.rc != PLINTH_CHUNKED_OK || !r.order_ok || !r.spans_ok
                || r.out_len != 66560 || r.nchunks != 2 || !r.done_seen)
            {
                bad++;
            }
        }

        ok(bad == 0, "%s: split in two at each of %zu boundaries", name,
           b.len - 1);

        /* every prefix is a truncated body, never an error before */

        bad = 0;

        for (cut = 0; cut < b.len; cut += (cut < 200 || b.len - cut < 300
                                            || (cut > 65600 && cut < 65800))
                                           ? 1 : 97)
        {
            run(&r, mode, 66560, 0, b.p, cut, NULL, 0, 0, 0);

            if (r.rc != PLINTH_CHUNKED_ERR_TRUNCATED) {
                bad++;
            }
        }

        ok(bad == 0, "%s: truncated anywhere -> ERR_TRUNCATED (%s)", name,
           plinth_chunked_s3_error(PLINTH_CHUNKED_ERR_TRUNCATED));

        /* a flipped data byte fails that chunk's signature */

        r.chain = &chain;
        b.p[5000] = 'b';
        chain_start(&chain, trailer ? TSEED : SEED);
        run(&r, mode, 66560, 0, b.p, b.len, NULL, 0, 0, 0);
        ok(r.rc == PLINTH_CHUNKED_OK && !r.sigs_ok,
           "%s: one changed data byte fails the chunk signature", name);
        b.p[5000] = 'a';

        /* a wrong decoded length */

        run(&r, mode, 66559, 0, b.p, b.len, NULL, 0, 0, 0);
        ok(r.rc == PLINTH_CHUNKED_ERR_LENGTH,
           "%s: x-amz-decoded-content-length 66559 -> ERR_LENGTH (%s)", name,
           plinth_chunked_s3_error(r.rc));
        run(&r, mode, 66561, 0, b.p, b.len, NULL, 0, 0, 0);
        ok(r.rc == PLINTH_CHUNKED_ERR_LENGTH,
           "%s: x-amz-decoded-content-length 66561 -> ERR_LENGTH", name);

        /* the wrong mode */

        run(&r, PLINTH_CHUNKED_UNSIGNED_TRAILER, 66560, 0, b.p, b.len, NULL,
            0, 0, 0);
        ok(r.rc == PLINTH_CHUNKED_ERR_EXTENSION,
           "%s: decoded as unsigned -> ERR_EXTENSION", name);

        if (trailer) {
            run(&r, PLINTH_CHUNKED_SIGNED, 66560, 0, b.p, b.len, NULL, 0, 0,
                0);
            ok(r.rc == PLINTH_CHUNKED_ERR_TRAILER,
               "%s: a trailer where none is expected -> ERR_TRAILER (%s)",
               name, plinth_chunked_s3_error(r.rc));

            /* a changed trailer value fails the trailer signature */

            k = b.len - 102;                    /* the 's' of "sOO8/Q==" */
            b.p[k] = 'X';
            chain_start(&chain, TSEED);
            run(&r, mode, 66560, 0, b.p, b.len, NULL, 0, 0, 0);
            ok(r.rc == PLINTH_CHUNKED_OK && !r.sigs_ok,
               "%s: a changed checksum value fails the trailer signature",
               name);
            b.p[k] = 's';
        }

        r.chain = NULL;
    }

    EVP_MD_CTX_free(md);
    free(b.p);
}


/* small bodies: every split into two and three slices */

static void
test_small_splits(void)
{
    size_t    i, j, len, bad, total;
    run_t     r;
    size_t    cuts[2];

    static const struct {
        const char             *name;
        plinth_chunked_mode_t   mode;
        const char             *body;
        const char             *payload;
        const char             *trailers;
    } cases[] = {
        { "signed", PLINTH_CHUNKED_SIGNED,
          "5;chunk-signature=" SIG0 "\r\nhello\r\n"
          "1;chunk-signature=" SIG0 "\r\n!\r\n"
          "0;chunk-signature=" SIG0 "\r\n\r\n",
          "hello!", "" },
        { "signed with trailer", PLINTH_CHUNKED_SIGNED_TRAILER,
          "3;chunk-signature=" SIG0 "\r\nabc\r\n"
          "0;chunk-signature=" SIG0 "\r\n"
          "x-amz-checksum-crc32:NSRBwg==\r\n"
          "x-amz-trailer-signature:" SIG0 "\r\n\r\n",
          "abc", "x-amz-checksum-crc32:NSRBwg==\nx-amz-trailer-signature:"
          SIG0 "\n" },
        { "unsigned with trailer", PLINTH_CHUNKED_UNSIGNED_TRAILER,
          "A\r\n0123456789\r\n"
          "3\r\nabc\r\n"
          "0\r\n"
          "x-amz-checksum-crc32:  NSRBwg== \r\n\r\n",
          "0123456789abc", "x-amz-checksum-crc32:NSRBwg==\n" },
        { "unsigned, no trailer", PLINTH_CHUNKED_UNSIGNED_TRAILER,
          "00000000000000a\r\n0123456789\r\n0\r\n\r\n",
          "0123456789", "" },
        { "unsigned, empty object", PLINTH_CHUNKED_UNSIGNED_TRAILER,
          "0\r\n\r\n", "", "" },
        { "signed, empty object", PLINTH_CHUNKED_SIGNED,
          "0;chunk-signature=" SIG0 "\r\n\r\n", "", "" },
    };

    memset(&r, 0, sizeof(r));

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        len = strlen(cases[i].body);
        bad = 0;
        total = 0;

        for (cuts[0] = 0; cuts[0] <= len; cuts[0]++) {
            for (cuts[1] = cuts[0]; cuts[1] <= len; cuts[1]++) {
                run(&r, cases[i].mode, strlen(cases[i].payload), 0,
                    (const unsigned char *) cases[i].body, len, cuts, 2, 0,
                    1);

                if (r.rc != PLINTH_CHUNKED_OK || !r.order_ok || !r.spans_ok
                    || r.out_len != strlen(cases[i].payload)
                    || memcmp(r.out, cases[i].payload, r.out_len) != 0
                    || strcmp(r.trailers, cases[i].trailers) != 0)
                {
                    bad++;
                }

                run_free(&r);
                total++;
            }
        }

        ok(bad == 0, "small %s: %zu ways to split %zu bytes in three",
           cases[i].name, total, len);

        run(&r, cases[i].mode, -1, 0, (const unsigned char *) cases[i].body,
            len, NULL, 0, 1, 1);
        ok(r.rc == PLINTH_CHUNKED_OK && r.order_ok
           && r.out_len == strlen(cases[i].payload),
           "small %s: one byte at a time, no declared length", cases[i].name);
        run_free(&r);

        for (j = 0, bad = 0; j < len; j++) {
            run(&r, cases[i].mode, -1, 0,
                (const unsigned char *) cases[i].body, j, NULL, 0, 1, 0);

            if (r.rc != PLINTH_CHUNKED_ERR_TRUNCATED) {
                bad++;
            }
        }

        ok(bad == 0, "small %s: each of its %zu prefixes is truncated",
           cases[i].name, len);
    }
}


/* malformed bodies */

static void
test_malformed(void)
{
    char                    line[6000];
    size_t                  i, len;
    int                     same;
    run_t                   r;
    plinth_chunked_rc_t     rc1;

#define SIGX ";chunk-signature=" SIG0

    static const struct {
        const char             *name;
        plinth_chunked_mode_t   mode;
        int64_t                 length;
        uint64_t                min;
        const char             *body;
        plinth_chunked_rc_t     rc;
    } cases[] = {
        { "bad hex digit", PLINTH_CHUNKED_SIGNED, -1, 0,
          "1g" SIGX "\r\n", PLINTH_CHUNKED_ERR_SIZE },
        { "no size", PLINTH_CHUNKED_SIGNED, -1, 0,
          SIGX "\r\n", PLINTH_CHUNKED_ERR_SIZE },
        { "no size (unsigned)", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0,
          "\r\n", PLINTH_CHUNKED_ERR_SIZE },
        { "space after size", PLINTH_CHUNKED_SIGNED, -1, 0,
          "3 " SIGX "\r\nabc\r\n", PLINTH_CHUNKED_ERR_SIZE },
        { "negative size", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0,
          "-3\r\nabc\r\n", PLINTH_CHUNKED_ERR_SIZE },
        { "0x prefix", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0,
          "0x3\r\nabc\r\n", PLINTH_CHUNKED_ERR_SIZE },
        { "17 hex digits", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0,
          "00000000000000003\r\nabc\r\n0\r\n\r\n", PLINTH_CHUNKED_ERR_SIZE },
        { "size overflow", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0,
          "10000000000000000\r\n", PLINTH_CHUNKED_ERR_SIZE },
        { "2^64-1 then more", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0,
          "1\r\na\r\nffffffffffffffff\r\n", PLINTH_CHUNKED_ERR_SIZE },
        { "2^64-1 over the declared length",
          PLINTH_CHUNKED_UNSIGNED_TRAILER, 10, 0,
          "ffffffffffffffff\r\n", PLINTH_CHUNKED_ERR_LENGTH },
        { "chunk beyond the declared length", PLINTH_CHUNKED_SIGNED, 2, 0,
          "3" SIGX "\r\nabc\r\n", PLINTH_CHUNKED_ERR_LENGTH },
        { "fewer bytes than declared", PLINTH_CHUNKED_SIGNED, 5, 0,
          "3" SIGX "\r\nabc\r\n0" SIGX "\r\n\r\n", PLINTH_CHUNKED_ERR_LENGTH },
        { "data longer than its size", PLINTH_CHUNKED_SIGNED, -1, 0,
          "3" SIGX "\r\nabcd\r\n", PLINTH_CHUNKED_ERR_CRLF },
        { "LF only after data", PLINTH_CHUNKED_SIGNED, -1, 0,
          "3" SIGX "\r\nabc\n0" SIGX "\r\n\r\n", PLINTH_CHUNKED_ERR_CRLF },
        { "CR only after data", PLINTH_CHUNKED_SIGNED, -1, 0,
          "3" SIGX "\r\nabc\r0" SIGX "\r\n\r\n", PLINTH_CHUNKED_ERR_CRLF },
        { "LF only after size", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0,
          "3\nabc\r\n0\r\n\r\n", PLINTH_CHUNKED_ERR_CRLF },
        { "no chunk-signature", PLINTH_CHUNKED_SIGNED, -1, 0,
          "3\r\nabc\r\n", PLINTH_CHUNKED_ERR_SIGNATURE },
        { "no final chunk-signature", PLINTH_CHUNKED_SIGNED_TRAILER, -1, 0,
          "3" SIGX "\r\nabc\r\n0\r\n\r\n", PLINTH_CHUNKED_ERR_SIGNATURE },
        { "short chunk-signature", PLINTH_CHUNKED_SIGNED, -1, 0,
          "3;chunk-signature=abc\r\nabc\r\n", PLINTH_CHUNKED_ERR_SIGNATURE },
        { "upper-case chunk-signature", PLINTH_CHUNKED_SIGNED, -1, 0,
          "3;chunk-signature=AD80C730A21E5B8D04586A2213DD63B9A0E99E0E2307B0A"
          "DE35A65485A288648\r\nabc\r\n", PLINTH_CHUNKED_ERR_SIGNATURE },
        { "another extension", PLINTH_CHUNKED_SIGNED, -1, 0,
          "3;foo=bar\r\nabc\r\n", PLINTH_CHUNKED_ERR_SIGNATURE },
        { "extension after the signature", PLINTH_CHUNKED_SIGNED, -1, 0,
          "3" SIGX ";foo=bar\r\nabc\r\n", PLINTH_CHUNKED_ERR_SIGNATURE },
        { "chunk-signature when unsigned", PLINTH_CHUNKED_UNSIGNED_TRAILER,
          -1, 0, "3" SIGX "\r\nabc\r\n", PLINTH_CHUNKED_ERR_EXTENSION },
        { "small chunk not last", PLINTH_CHUNKED_SIGNED, -1, 8192,
          "3" SIGX "\r\nabc\r\n3" SIGX "\r\nabc\r\n",
          PLINTH_CHUNKED_ERR_SMALL_CHUNK },
        { "extra data after the end", PLINTH_CHUNKED_SIGNED, -1, 0,
          "3" SIGX "\r\nabc\r\n0" SIGX "\r\n\r\nX",
          PLINTH_CHUNKED_ERR_EXTRA },
        { "a second body after the end", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1,
          0, "0\r\n\r\n0\r\n\r\n", PLINTH_CHUNKED_ERR_EXTRA },
        { "trailer when none is allowed", PLINTH_CHUNKED_SIGNED, -1, 0,
          "0" SIGX "\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n",
          PLINTH_CHUNKED_ERR_TRAILER },
        { "trailer without colon", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0,
          "0\r\nx-amz-checksum-crc32\r\n\r\n", PLINTH_CHUNKED_ERR_TRAILER },
        { "trailer without name", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0,
          "0\r\n:AAAAAA==\r\n\r\n", PLINTH_CHUNKED_ERR_TRAILER },
        { "trailer name with space", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0,
          "0\r\nx-amz checksum:AAAAAA==\r\n\r\n", PLINTH_CHUNKED_ERR_TRAILER },
        { "space before trailer colon", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1,
          0, "0\r\nx-amz-checksum-crc32 :AAAAAA==\r\n\r\n",
          PLINTH_CHUNKED_ERR_TRAILER },
        { "control byte in trailer value", PLINTH_CHUNKED_UNSIGNED_TRAILER,
          -1, 0, "0\r\nx-amz-checksum-crc32:AA\001A==\r\n\r\n",
          PLINTH_CHUNKED_ERR_TRAILER },
        { "trailer line ends in LF", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0,
          "0\r\nx-amz-checksum-crc32:AAAAAA==\n\r\n",
          PLINTH_CHUNKED_ERR_TRAILER },
        { "body ends in LF LF", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0,
          "0\r\n\n", PLINTH_CHUNKED_ERR_TRAILER },
        { "17 trailers", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0,
          "0\r\na:1\r\nb:1\r\nc:1\r\nd:1\r\ne:1\r\nf:1\r\ng:1\r\nh:1\r\n"
          "i:1\r\nj:1\r\nk:1\r\nl:1\r\nm:1\r\nn:1\r\no:1\r\np:1\r\nq:1\r\n"
          "\r\n", PLINTH_CHUNKED_ERR_TRAILER },
        { "16 trailers", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0,
          "0\r\na:1\r\nb:1\r\nc:1\r\nd:1\r\ne:1\r\nf:1\r\ng:1\r\nh:1\r\n"
          "i:1\r\nj:1\r\nk:1\r\nl:1\r\nm:1\r\nn:1\r\no:1\r\np:1\r\n"
          "\r\n", PLINTH_CHUNKED_OK },
        { "empty trailer value", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0,
          "0\r\nx-amz-checksum-crc32:\r\n\r\n", PLINTH_CHUNKED_OK },
        { "truncated in the size line", PLINTH_CHUNKED_SIGNED, -1, 0,
          "3;chunk-sig", PLINTH_CHUNKED_ERR_TRUNCATED },
        { "truncated in the data", PLINTH_CHUNKED_SIGNED, -1, 0,
          "3" SIGX "\r\nab", PLINTH_CHUNKED_ERR_TRUNCATED },
        { "truncated before the final chunk", PLINTH_CHUNKED_SIGNED, -1, 0,
          "3" SIGX "\r\nabc\r\n", PLINTH_CHUNKED_ERR_TRUNCATED },
        { "truncated before the last CRLF", PLINTH_CHUNKED_SIGNED, -1, 0,
          "3" SIGX "\r\nabc\r\n0" SIGX "\r\n", PLINTH_CHUNKED_ERR_TRUNCATED },
        { "truncated in the trailer", PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0,
          "0\r\nx-amz-checksum-crc32:AAAA", PLINTH_CHUNKED_ERR_TRUNCATED },
        { "empty body", PLINTH_CHUNKED_SIGNED, -1, 0,
          "", PLINTH_CHUNKED_ERR_TRUNCATED },
    };

    memset(&r, 0, sizeof(r));

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        len = strlen(cases[i].body);

        run(&r, cases[i].mode, cases[i].length, cases[i].min,
            (const unsigned char *) cases[i].body, len, NULL, 0, 0, 0);
        rc1 = r.rc;
        same = r.order_ok;

        run(&r, cases[i].mode, cases[i].length, cases[i].min,
            (const unsigned char *) cases[i].body, len, NULL, 0, 1, 0);

        ok(rc1 == cases[i].rc && r.rc == cases[i].rc && same && r.order_ok,
           "malformed: %s -> %s (%s), whole and byte by byte",
           cases[i].name, plinth_chunked_strerror(cases[i].rc),
           cases[i].rc == PLINTH_CHUNKED_OK
           ? "ok" : plinth_chunked_s3_error(cases[i].rc));
    }

    /* line limits: 4096 bytes with CRLF is fine, 4097 is not */

    memset(line, '0', sizeof(line));
    memcpy(line, "3" SIGX, 82);
    memcpy(line + 4094, "\r\nabc\r\n", 7);
    run(&r, PLINTH_CHUNKED_SIGNED, -1, 0, (unsigned char *) line, 4101,
        NULL, 0, 0, 0);
    ok(r.rc == PLINTH_CHUNKED_ERR_SIGNATURE,
       "malformed: a 4096-byte size line is read (then rejected)");

    memset(line, 'f', sizeof(line));
    memcpy(line + 4095, "\r\n", 2);
    run(&r, PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0, (unsigned char *) line,
        4097, NULL, 0, 0, 0);
    ok(r.rc == PLINTH_CHUNKED_ERR_LINE,
       "malformed: a 4097-byte size line -> ERR_LINE (%s)",
       plinth_chunked_s3_error(r.rc));

    run(&r, PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0, (unsigned char *) line,
        5000, NULL, 0, 7, 0);
    ok(r.rc == PLINTH_CHUNKED_ERR_LINE,
       "malformed: an endless size line -> ERR_LINE, in slices too");

    for (i = 1024; i <= 1025; i++) {
        memcpy(line, "0\r\nx-amz-meta:", 14);         /* line starts at 3 */
        memset(line + 14, 'v', 3 + i - 2 - 14);
        memcpy(line + 3 + i - 2, "\r\n\r\n", 4);
        run(&r, PLINTH_CHUNKED_UNSIGNED_TRAILER, -1, 0,
            (unsigned char *) line, 3 + i + 2, NULL, 0, 0, 0);
        ok(r.rc == (i == 1024 ? PLINTH_CHUNKED_OK : PLINTH_CHUNKED_ERR_TRAILER),
           "malformed: a trailer line of %zu bytes with CRLF -> %s", i,
           plinth_chunked_strerror(r.rc));
    }

    /* the S3 minimum chunk size: only the last data chunk may be small */

    {
        buf_t          b;
        unsigned char  *a;

        memset(&b, 0, sizeof(b));
        a = calloc(1, 8192);
        buf_str(&b, "2000\r\n");
        buf_add(&b, a, 8192);
        buf_str(&b, "\r\n1\r\nz\r\n0\r\n\r\n");
        run(&r, PLINTH_CHUNKED_UNSIGNED_TRAILER, 8193,
            PLINTH_CHUNKED_S3_MIN_CHUNK, b.p, b.len, NULL, 0, 0, 0);
        ok(r.rc == PLINTH_CHUNKED_OK,
           "min chunk: 8192 then 1 byte then the final chunk is fine");

        b.len = 0;
        buf_str(&b, "1fff\r\n");
        buf_add(&b, a, 8191);
        buf_str(&b, "\r\n1\r\nz\r\n0\r\n\r\n");
        run(&r, PLINTH_CHUNKED_UNSIGNED_TRAILER, 8192,
            PLINTH_CHUNKED_S3_MIN_CHUNK, b.p, b.len, NULL, 0, 0, 0);
        ok(r.rc == PLINTH_CHUNKED_ERR_SMALL_CHUNK,
           "min chunk: 8191 bytes not last -> ERR_SMALL_CHUNK (%s)",
           plinth_chunked_s3_error(r.rc));

        free(a);
        free(b.p);
    }

#undef SIGX
}


/* encode random payloads, decode them in random slices, compare */

static void
encode(buf_t *b, plinth_chunked_mode_t mode, const unsigned char *data,
    size_t len, const char *seed, char trailers[][64], size_t ntrailers,
    size_t max_chunk)
{
    char                  hdr[128];
    unsigned char         md[32], sts[PLINTH_SIGV4_STS_MAX], sig[64];
    unsigned char         prev[64];
    size_t                off, n, slen, i;
    EVP_MD_CTX           *ctx;

    memcpy(prev, seed, 64);
    b->len = 0;
    off = 0;

    for ( ;; ) {
        n = len - off;

        if (n > 0) {
            n = 1 + rnd() % (max_chunk < n ? max_chunk : n);
        }

        plinth_sigv4_sha256(data + off, n, md);
        plinth_sigv4_chunk_string_to_sign(S(DATE), S(SCOPE), SN(prev, 64),
                                          md, sts, sizeof(sts), &slen);
        plinth_sigv4_sign(test_key, sts, slen, sig);
        memcpy(prev, sig, 64);

        if (mode == PLINTH_CHUNKED_UNSIGNED_TRAILER) {
            snprintf(hdr, sizeof(hdr), "%s%zx\r\n",
                     rnd() % 4 ? "" : "000", n);
        } else {
            snprintf(hdr, sizeof(hdr), "%zx;chunk-signature=%.64s\r\n", n,
                     sig);
        }

        buf_str(b, hdr);

        if (n == 0) {
            break;
        }

        buf_add(b, data + off, n);
        buf_str(b, "\r\n");
        off += n;
    }

    if (mode != PLINTH_CHUNKED_SIGNED) {
        ctx = EVP_MD_CTX_new();
        plinth_sigv4_sha256_init(ctx);

        for (i = 0; i < ntrailers; i++) {
            char  *colon = strchr(trailers[i], ':');

            buf_str(b, trailers[i]);
            buf_str(b, "\r\n");
            plinth_sigv4_trailer_update(ctx, SN(trailers[i],
                                                colon - trailers[i]),
                                        S(colon + 1));
        }

        plinth_sigv4_sha256_final(ctx, md);
        EVP_MD_CTX_free(ctx);

        if (mode == PLINTH_CHUNKED_SIGNED_TRAILER) {
            plinth_sigv4_trailer_string_to_sign(S(DATE), S(SCOPE),
                                                SN(prev, 64), md, sts,
                                                sizeof(sts), &slen);
            plinth_sigv4_sign(test_key, sts, slen, sig);
            buf_str(b, "x-amz-trailer-signature:");
            buf_add(b, sig, 64);
            buf_str(b, "\r\n");
        }
    }

    buf_str(b, "\r\n");
}


static void
test_round_trip(unsigned iterations)
{
    char                   trailers[4][64], want[512];
    size_t                 i, len, ntr, wlen, bad, bytes;
    unsigned               it;
    buf_t                  b;
    run_t                  r;
    unsigned char         *data;
    EVP_MD_CTX            *md;
    plinth_sigv4_chain_t   chain;
    plinth_chunked_mode_t  mode;

    memset(&b, 0, sizeof(b));
    memset(&r, 0, sizeof(r));
    md = EVP_MD_CTX_new();
    bad = 0;
    bytes = 0;

    for (it = 0; it < iterations; it++) {
        mode = (plinth_chunked_mode_t) (rnd() % 3);
        len = rnd() % 4 == 0 ? rnd() % 16 : rnd() % 200000;
        data = malloc(len ? len : 1);

        for (i = 0; i < len; i++) {
            data[i] = (unsigned char) rnd();
        }

        ntr = mode == PLINTH_CHUNKED_SIGNED ? 0 : rnd() % 4;
        wlen = 0;
        want[0] = '\0';

        for (i = 0; i < ntr; i++) {
            snprintf(trailers[i], sizeof(trailers[i]),
                     "x-amz-checksum-%s:%08" PRIx64 "==",
                     (const char *[]) { "crc32", "crc32c", "sha1",
                                        "sha256" }[i], rnd() >> 32);
            wlen += snprintf(want + wlen, sizeof(want) - wlen, "%s\n",
                             trailers[i]);
        }

        encode(&b, mode, data, len, SEED, trailers, ntr,
               len < 20000 && rnd() % 2 ? 1 + rnd() % 100
                                        : 1 + rnd() % 70000);
        bytes += b.len;

        r.chain = mode == PLINTH_CHUNKED_UNSIGNED_TRAILER ? NULL : &chain;
        r.md = md;
        chain_start(&chain, SEED);
        run(&r, mode, rnd() % 2 ? (int64_t) len : -1, 0, b.p, b.len, NULL, 0,
            1 + rnd() % (rnd() % 2 ? 16 : 30000), 1);

        if (r.rc != PLINTH_CHUNKED_OK || !r.order_ok || !r.spans_ok
            || !r.sigs_ok || r.out_len != len
            || (len && memcmp(r.out, data, len) != 0)
            || strncmp(r.trailers, want, wlen) != 0)
        {
            bad++;
            printf("# round trip %u failed: mode %d, %zu bytes, rc %s\n",
                   it, (int) mode, len, plinth_chunked_strerror(r.rc));
        }

        run_free(&r);
        free(data);
    }

    ok(bad == 0, "round trip: %u random payloads (%zu encoded bytes), "
       "random chunks, modes, trailers and slices, signatures verified",
       iterations, bytes);

    EVP_MD_CTX_free(md);
    free(b.p);
}


/* random bytes: any mode, any slicing, never a crash or a wrong answer */

static void
test_garbage(unsigned iterations)
{
    size_t         i, len, bad;
    unsigned       it;
    run_t          r;
    unsigned char  body[600];

    static const char  *pieces[] = {
        "\r\n", "0", "1", "a", "ffff", ";chunk-signature=", SIG0, "x:y",
        "\r", "\n", ":", "x-amz-trailer-signature:", "0\r\n\r\n",
    };

    memset(&r, 0, sizeof(r));
    bad = 0;

    for (it = 0; it < iterations; it++) {
        len = 0;

        while (len < sizeof(body) - 80 && rnd() % 40) {
            if (rnd() % 4 == 0) {
                body[len++] = (unsigned char) rnd();

            } else {
                i = rnd() % (sizeof(pieces) / sizeof(pieces[0]));
                memcpy(body + len, pieces[i], strlen(pieces[i]));
                len += strlen(pieces[i]);
            }
        }

        run(&r, (plinth_chunked_mode_t) (rnd() % 3),
            rnd() % 2 ? (int64_t) (rnd() % 100) : -1, rnd() % 2 ? 4 : 0,
            body, len, NULL, 0, 1 + rnd() % 20, 1);

        if (!r.order_ok || !r.spans_ok || r.rc == PLINTH_CHUNKED_AGAIN
            || (r.rc == PLINTH_CHUNKED_OK && !r.done_seen))
        {
            bad++;
        }

        run_free(&r);
    }

    ok(bad == 0, "garbage: %u random bodies, events always in order",
       iterations);
}


int
main(int argc, char **argv)
{
    test_rng = 66560;

    if (argc > 1) {
        test_rng = strtoull(argv[1], NULL, 0);
    }

    printf("# random seed %" PRIu64 "\n", test_rng);

    plinth_sigv4_signing_key(S("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                             S("20130524"), S("us-east-1"), S("s3"),
                             test_key);

    test_aws_example();
    test_small_splits();
    test_malformed();
    test_round_trip(300);
    test_garbage(20000);

    printf("1..%d\n", test_count);

    if (test_failed) {
        printf("# %d of %d failed\n", test_failed, test_count);
    }

    return test_failed ? 1 : 0;
}
