/*
 * plinth-chaos: the client side of the crash-consistency checker.
 *
 *   plinth-chaos --endpoint http://127.0.0.1:9000 [--endpoint ...]
 *       --access-key ID --secret-key SECRET --bucket b --history FILE
 *       [--keys 8] [--clients 6] [--duration 30] [--ops N]
 *       [--op-timeout 15] [--seed N] [--mix P:G:D] [--max-size 2621440]
 *       [--final]
 *
 * N clients (libcurl multi, one thread, each client one request at a time)
 * do PUT, GET and DELETE (--mix percentages) of random keys out of a small
 * key set (k000 .. k<keys-1>), each request to a random endpoint. Every
 * operation becomes one line of the history file when it ends:
 *
 *   client op key t_start t_end status curl_code value detail md5   (TAB-separated)
 *
 * t_start is taken before the request is handed to libcurl and t_end after
 * libcurl reports it done (CLOCK_MONOTONIC, shared by every process of the
 * machine), so the recorded interval contains the real one. status is the
 * HTTP status (0: no answer). value: for a PUT the id of its body; for a
 * GET the id of the body read, "-" for 404, "!" for a body that is not a
 * whole body of this key (detail says why) or "?" when the GET failed; for
 * a DELETE "-". md5: a PUT's body's MD5 (hex), "-" for the others: the
 * checker finds the PUTs without an answer in the database by it (ETag).
 *
 * Bodies are unique and self-describing: a header line
 *
 *   PLINTH-CHAOS key=<key> id=r<seed>c<client>s<seq> len=<total> fnv=<hex>\n
 *
 * then a payload generated from the id; fnv is FNV-1a 64 of the payload.
 * A GET checks from the bytes alone that the body is whole (length, hash)
 * and is one of this key's; whether it may be returned at that moment is
 * the checker's job (t/lib/Plinth/Chaos.pm), from the history.
 *
 * --final: no random load; one GET of every key, one after the other, to
 * record the final state (run after the faults stopped and repair ran).
 *
 * Bounded: no operation starts after --duration seconds, --ops
 * operations or SIGUSR1 (the test's "the faults are over"); every transfer has a timeout (--op-timeout); the run is
 * abandoned at duration + op-timeout + 5 s. Loopback endpoints only.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3curl.h"

#define MAX_CLIENTS   64
#define MAX_ENDPOINTS 8
#define MAX_KEYS      1000
#define HDR_MAX       256

enum op { OP_PUT, OP_GET, OP_DEL, OP_BUCKET };
static const char *op_name[] = { "PUT", "GET", "DEL", "BUCKET" };

static struct {
    const char *endpoints[MAX_ENDPOINTS];
    int n_endpoints;
    const char *access_key, *secret_key, *region, *bucket, *history;
    int keys, clients, final, create_bucket;
    double duration, op_timeout;
    uint64_t max_ops, seed, max_size;
    int mix_put, mix_get, mix_del;
} O;

struct client {
    int id;
    CURL *easy;
    struct curl_slist *hdrs;
    enum op op;
    int key;
    double t0;
    uint64_t seq;
    char vid[64];
    char md5[33];
    unsigned char *body;          /* PUT: the body sent; GET: bytes read */
    size_t body_len, body_off, body_cap;
    int overflow;
    char ebuf[1024];
    size_t ebuf_len;
    char url[1024];
    char errbuf[CURL_ERROR_SIZE];
    int busy;
};

static FILE *hist;
static volatile sig_atomic_t stop_flag;

static void on_usr1(int sig) { (void)sig; stop_flag = 1; }
static uint64_t rng;
static uint64_t n_ops, n_put, n_put_ack, n_get, n_get_ok, n_get_404, n_get_bad,
                n_get_err, n_del, n_del_ack;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "plinth-chaos: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t xs(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t rnd(void) { return xs(&rng); }

static uint64_t fnv1a(const unsigned char *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

#define FNV_INIT 0xcbf29ce484222325ULL

static void key_name(char *out, size_t len, int k)
{
    snprintf(out, len, "k%03d", k);
}

/* The payload of body id: a stream seeded by the id. */
static void fill_payload(unsigned char *p, size_t n, const char *vid)
{
    uint64_t s = fnv1a((const unsigned char *)vid, strlen(vid), FNV_INIT) | 1;
    size_t i = 0;
    while (i < n) {
        uint64_t v = xs(&s);
        for (int b = 0; b < 8 && i < n; b++, i++)
            p[i] = (unsigned char)(v >> (8 * b));
    }
}

static size_t pick_size(void)
{
    uint64_t r = rnd() % 100;
    if (r < 60)
        return 100 + rnd() % (16 * 1024);
    if (r < 90 || O.max_size <= 256 * 1024)
        return 16 * 1024 + rnd() % (240 * 1024);
    return 256 * 1024 + rnd() % (O.max_size - 256 * 1024 + 1);
}

static void make_body(struct client *c)
{
    char key[32], hdr[HDR_MAX];
    key_name(key, sizeof key, c->key);
    size_t plen = pick_size();
    /* the header's own length is in len=: settle it by fixed-width digits */
    int hlen = snprintf(hdr, sizeof hdr,
                        "PLINTH-CHAOS key=%s id=%s len=%010zu fnv=%016" PRIx64 "\n",
                        key, c->vid, (size_t)0, (uint64_t)0);
    size_t total = (size_t)hlen + plen;
    if (total > c->body_cap) {
        unsigned char *nb = realloc(c->body, total);
        if (!nb)
            die("out of memory");
        c->body = nb;
        c->body_cap = total;
    }
    fill_payload(c->body + hlen, plen, c->vid);
    uint64_t h = fnv1a(c->body + hlen, plen, FNV_INIT);
    snprintf(hdr, sizeof hdr,
             "PLINTH-CHAOS key=%s id=%s len=%010zu fnv=%016" PRIx64 "\n",
             key, c->vid, total, h);
    memcpy(c->body, hdr, (size_t)hlen);
    c->body_len = total;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(c->body, total, md, &mdlen, EVP_md5(), NULL) || mdlen != 16)
        die("MD5 failed");
    for (unsigned i = 0; i < 16; i++)
        snprintf(c->md5 + 2 * i, 3, "%02x", md[i]);
}

/*
 * Judge a GET's bytes: id into vid and 1 when it is a whole body of key,
 * else 0 and why into detail.
 */
static int judge_body(const struct client *c, char *vid, size_t vlen,
                      char *detail, size_t dlen)
{
    char key[32], hk[64], hid[64];
    size_t hlen_total;
    uint64_t h;
    key_name(key, sizeof key, c->key);
    if (c->overflow) {
        snprintf(detail, dlen, "longer than any body written (%zu+ bytes)",
                 c->body_len);
        return 0;
    }
    const unsigned char *nl = memchr(c->body, '\n',
                                     c->body_len < HDR_MAX ? c->body_len : HDR_MAX);
    if (c->body_len < 13 || memcmp(c->body, "PLINTH-CHAOS ", 13) != 0 || !nl) {
        snprintf(detail, dlen, "no header (%zu bytes)", c->body_len);
        return 0;
    }
    char line[HDR_MAX + 1];
    size_t hl = (size_t)(nl - c->body);
    memcpy(line, c->body, hl);
    line[hl] = 0;
    if (sscanf(line, "PLINTH-CHAOS key=%63s id=%63s len=%zu fnv=%" SCNx64,
               hk, hid, &hlen_total, &h) != 4) {
        snprintf(detail, dlen, "bad header (%zu bytes)", c->body_len);
        return 0;
    }
    snprintf(vid, vlen, "%s", hid);
    if (strcmp(hk, key) != 0) {
        snprintf(detail, dlen, "body of key %s (id %s)", hk, hid);
        return 0;
    }
    if (hlen_total != c->body_len) {
        snprintf(detail, dlen, "id %s: %zu bytes, written %zu", hid,
                 c->body_len, hlen_total);
        return 0;
    }
    uint64_t got = fnv1a(nl + 1, c->body_len - hl - 1, FNV_INIT);
    if (got != h) {
        snprintf(detail, dlen, "id %s: payload hash %016" PRIx64
                 ", written %016" PRIx64, hid, got, h);
        return 0;
    }
    /* the payload is the one generated from the id (not another body's
     * bytes under a copied header) */
    uint64_t s = fnv1a((const unsigned char *)hid, strlen(hid), FNV_INIT) | 1;
    const unsigned char *p = nl + 1;
    size_t n = c->body_len - hl - 1, i = 0;
    while (i < n) {
        uint64_t v = xs(&s);
        for (int b = 0; b < 8 && i < n; b++, i++)
            if (p[i] != (unsigned char)(v >> (8 * b))) {
                snprintf(detail, dlen, "id %s: payload differs at %zu", hid, i);
                return 0;
            }
    }
    return 1;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    struct client *c = ud;
    size_t n = size * nitems;
    if (n > c->body_len - c->body_off)
        n = c->body_len - c->body_off;
    memcpy(buf, c->body + c->body_off, n);
    c->body_off += n;
    return n;
}

/* libcurl rewinds a PUT body to retry on a kept-alive connection the
 * server had closed */
static int on_seek(void *ud, curl_off_t offset, int origin)
{
    struct client *c = ud;
    if (origin != SEEK_SET || offset < 0 || (size_t)offset > c->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    c->body_off = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static size_t on_write(char *buf, size_t size, size_t nmemb, void *ud)
{
    struct client *c = ud;
    size_t n = size * nmemb;
    if (c->op != OP_GET) {          /* an error document: its head */
        size_t room = sizeof c->ebuf - 1 - c->ebuf_len;
        size_t k = n < room ? n : room;
        memcpy(c->ebuf + c->ebuf_len, buf, k);
        c->ebuf_len += k;
        c->ebuf[c->ebuf_len] = 0;
        return n;
    }
    size_t limit = O.max_size + HDR_MAX;
    if (c->body_len + n > limit) {
        c->overflow = 1;
        return n;
    }
    if (c->body_len + n > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 65536;
        while (cap < c->body_len + n)
            cap *= 2;
        unsigned char *nb = realloc(c->body, cap);
        if (!nb)
            return 0;
        c->body = nb;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, buf, n);
    c->body_len += n;
    return n;
}

static void client_init(struct client *c, int id)
{
    c->id = id;
    CURL *e = c->easy = s3_easy_new(c, on_read, on_seek, on_write, c->errbuf,
                                    O.op_timeout, die);
    s3_sign(e, O.access_key, O.secret_key, O.region, &c->hdrs);
    c->hdrs = curl_slist_append(c->hdrs, "Expect:");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->hdrs);
}

static void client_start(CURLM *m, struct client *c, enum op op, int key)
{
    CURL *e = c->easy;
    char kn[32];
    const char *ep = O.endpoints[rnd() % (uint64_t)O.n_endpoints];
    c->op = op;
    c->key = key;
    c->body_len = 0;
    c->body_off = 0;
    c->overflow = 0;
    c->ebuf_len = 0;
    c->ebuf[0] = 0;
    c->vid[0] = 0;
    c->errbuf[0] = 0;
    key_name(kn, sizeof kn, key);
    snprintf(c->url, sizeof c->url, "%s/%s/%s", ep, O.bucket, kn);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 0L);
    curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    switch (op) {
    case OP_PUT:
        c->seq++;
        snprintf(c->vid, sizeof c->vid, "r%" PRIu64 "c%ds%" PRIu64, O.seed,
                 c->id, c->seq);
        make_body(c);
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->body_len);
        break;
    case OP_GET:
        break;
    case OP_DEL:
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
        break;
    case OP_BUCKET:
        snprintf(c->url, sizeof c->url, "%s/%s", ep, O.bucket);
        c->body_len = 0;
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)0);
        break;
    }
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    c->busy = 1;
    c->t0 = now();
    curl_multi_add_handle(m, e);
}

static void sanitize(char *s)
{
    for (; *s; s++)
        if (*s == '\t' || *s == '\n' || *s == '\r')
            *s = ' ';
}

/* "<Code>: <Message>" of an S3 error document, into out */
static void s3_error(const char *doc, char *out, size_t len)
{
    const char *code = strstr(doc, "<Code>"), *msg = strstr(doc, "<Message>");
    const char *ce = code ? strstr(code, "</Code>") : NULL;
    const char *me = msg ? strstr(msg, "</Message>") : NULL;
    if (!code || !ce)
        return;
    code += 6;
    if (msg && me) {
        msg += 9;
        snprintf(out, len, "%.*s: %.*s", (int)(ce - code), code,
                 (int)(me - msg), msg);
    } else {
        snprintf(out, len, "%.*s", (int)(ce - code), code);
    }
}

static void client_done(CURLM *m, struct client *c, CURLcode cc)
{
    double t1 = now();
    long status = 0;
    char key[32], value[64], detail[CURL_ERROR_SIZE + 64] = "";
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(m, c->easy);
    c->busy = 0;
    if (cc != CURLE_OK)
        status = 0;     /* an answer cut off is no answer */
    key_name(key, sizeof key, c->key);
    n_ops++;
    switch (c->op) {
    case OP_PUT:
        n_put++;
        if (status == 200)
            n_put_ack++;
        snprintf(value, sizeof value, "%s", c->vid);
        break;
    case OP_GET:
        n_get++;
        if (status == 200) {
            char vid[64] = "";
            if (judge_body(c, vid, sizeof vid, detail, sizeof detail)) {
                snprintf(value, sizeof value, "%s", vid);
                n_get_ok++;
            } else {
                snprintf(value, sizeof value, "!");
                n_get_bad++;
            }
        } else if (status == 404) {
            snprintf(value, sizeof value, "-");
            n_get_404++;
        } else {
            snprintf(value, sizeof value, "?");
            n_get_err++;
        }
        break;
    case OP_DEL:
        n_del++;
        if (status == 204)
            n_del_ack++;
        snprintf(value, sizeof value, "-");
        break;
    case OP_BUCKET:
        snprintf(value, sizeof value, "-");
        snprintf(key, sizeof key, "-");
        break;
    }
    if (cc == CURLE_OK && status >= 300 && status != 404) {
        if (c->op == OP_GET) {
            if (c->body_len >= c->body_cap) {   /* room for the NUL */
                unsigned char *nb = realloc(c->body, c->body_len + 1);
                if (!nb)
                    die("out of memory");
                c->body = nb;
                c->body_cap = c->body_len + 1;
            }
            c->body[c->body_len] = 0;
            s3_error((const char *)c->body, detail, sizeof detail);
        } else {
            s3_error(c->ebuf, detail, sizeof detail);
        }
    }
    if (cc != CURLE_OK && !detail[0])
        snprintf(detail, sizeof detail, "curl %d: %s", (int)cc,
                 c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
    sanitize(detail);
    fprintf(hist, "%d\t%s\t%s\t%.6f\t%.6f\t%ld\t%d\t%s\t%s\t%s\n", c->id,
            op_name[c->op], key, c->t0, t1, status, (int)cc, value, detail,
            c->op == OP_PUT ? c->md5 : "-");
}

static enum op pick_op(void)
{
    int r = (int)(rnd() % 100);
    if (r < O.mix_put)
        return OP_PUT;
    if (r < O.mix_put + O.mix_get)
        return OP_GET;
    return OP_DEL;
}

static void usage(void)
{
    fprintf(stderr,
        "usage: plinth-chaos --endpoint URL [--endpoint URL ...] --access-key ID\n"
        "       --secret-key SECRET [--region R] --bucket B --history FILE\n"
        "       [--keys 8] [--clients 6] [--duration 30] [--ops N] [--op-timeout 15]\n"
        "       [--seed N] [--mix P:G:D] [--max-size BYTES] [--final] [--create-bucket]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    O.region = "us-east-1";
    O.keys = 8;
    O.clients = 6;
    O.duration = 30;
    O.op_timeout = 15;
    O.max_ops = 1000000;
    O.seed = 1;
    O.max_size = 2621440;
    O.mix_put = 35;
    O.mix_get = 55;
    O.mix_del = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define ARG() (i + 1 < argc ? argv[++i] : (usage(), ""))
        if (!strcmp(a, "--endpoint")) {
            if (O.n_endpoints == MAX_ENDPOINTS)
                die("at most %d endpoints", MAX_ENDPOINTS);
            O.endpoints[O.n_endpoints++] = ARG();
        }
        else if (!strcmp(a, "--access-key")) O.access_key = ARG();
        else if (!strcmp(a, "--secret-key")) O.secret_key = ARG();
        else if (!strcmp(a, "--region")) O.region = ARG();
        else if (!strcmp(a, "--bucket")) O.bucket = ARG();
        else if (!strcmp(a, "--history")) O.history = ARG();
        else if (!strcmp(a, "--keys")) O.keys = atoi(ARG());
        else if (!strcmp(a, "--clients")) O.clients = atoi(ARG());
        else if (!strcmp(a, "--duration")) O.duration = atof(ARG());
        else if (!strcmp(a, "--ops")) O.max_ops = strtoull(ARG(), NULL, 10);
        else if (!strcmp(a, "--op-timeout")) O.op_timeout = atof(ARG());
        else if (!strcmp(a, "--seed")) O.seed = strtoull(ARG(), NULL, 10);
        else if (!strcmp(a, "--max-size")) O.max_size = strtoull(ARG(), NULL, 10);
        else if (!strcmp(a, "--final")) O.final = 1;
        else if (!strcmp(a, "--create-bucket")) O.create_bucket = 1;
        else if (!strcmp(a, "--mix")) {
            if (sscanf(ARG(), "%d:%d:%d", &O.mix_put, &O.mix_get, &O.mix_del) != 3
                || O.mix_put < 0 || O.mix_get < 0 || O.mix_del < 0
                || O.mix_put + O.mix_get + O.mix_del != 100)
                die("--mix wants PUT:GET:DELETE percentages adding up to 100");
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) usage();
        else die("unknown option '%s'", a);
#undef ARG
    }
    if (!O.n_endpoints || !O.bucket || !O.history || !O.access_key
        || !O.secret_key)
        usage();
    for (int i = 0; i < O.n_endpoints; i++) {
        if (!s3_loopback(O.endpoints[i]))
            die("endpoint must be http:// on 127.0.0.0/8 or localhost: '%s'",
                O.endpoints[i]);
        if (strlen(O.endpoints[i]) > 200)
            die("endpoint too long");
    }
    if (strlen(O.bucket) > 63 || strspn(O.bucket, "abcdefghijklmnopqrstuvwxyz0123456789.-")
        != strlen(O.bucket))
        die("bad bucket name");
    if (O.keys < 1 || O.keys > MAX_KEYS)
        die("--keys: 1..%d", MAX_KEYS);
    if (O.clients < 1 || O.clients > MAX_CLIENTS)
        die("--clients: 1..%d", MAX_CLIENTS);
    if (!(O.duration > 0 && O.duration <= 3600))
        die("--duration: (0, 3600] seconds");
    if (!(O.op_timeout > 0 && O.op_timeout <= 600))
        die("--op-timeout: (0, 600] seconds");
    if (O.max_size < 1024 || O.max_size > (64u << 20))
        die("--max-size: 1024 .. 64 MiB");
    if (O.max_ops < 1)
        die("--ops: at least 1");

    hist = fopen(O.history, "a");
    if (!hist)
        die("%s: %s", O.history, strerror(errno));
    setvbuf(hist, NULL, _IOLBF, 0);
    rng = (O.seed * 0x9e3779b97f4a7c15ULL) | 1;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    int nc = O.final ? 1 : O.clients;
    struct client *cl = calloc((size_t)nc, sizeof *cl);
    if (!cl)
        die("out of memory");
    for (int i = 0; i < nc; i++)
        client_init(&cl[i], O.final ? 1000 : i);

    double start = now(), stop_at = start + O.duration,
           abandon = stop_at + O.op_timeout + 5;
    int next_final_key = 0;
    uint64_t started = 0;
    if (O.create_bucket) {
        client_start(m, &cl[0], OP_BUCKET, 0);
        started++;
    }
    for (;;) {
        double t = now();
        for (int i = 0; i < nc; i++) {
            if (cl[i].busy)
                continue;
            if (O.final) {
                if (next_final_key < O.keys) {
                    client_start(m, &cl[i], OP_GET, next_final_key++);
                    started++;
                }
            } else if (t < stop_at && started < O.max_ops && !stop_flag) {
                client_start(m, &cl[i], pick_op(), (int)(rnd() % (uint64_t)O.keys));
                started++;
            }
        }
        int running = 0;
        for (int i = 0; i < nc; i++)
            running += cl[i].busy;
        if (!running)
            break;
        if (t > abandon) {
            fprintf(stderr, "plinth-chaos: abandoned %d operations at the deadline\n",
                    running);
            /* recorded as unanswered: a PUT of them may still take effect */
            for (int i = 0; i < nc; i++)
                if (cl[i].busy)
                    client_done(m, &cl[i], CURLE_OPERATION_TIMEDOUT);
            break;
        }
        int still;
        curl_multi_perform(m, &still);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct client *c;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            client_done(m, c, msg->data.result);
        }
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    fclose(hist);
    printf("{\"ops\":%" PRIu64 ",\"put\":%" PRIu64 ",\"put_ack\":%" PRIu64
           ",\"get\":%" PRIu64 ",\"get_body\":%" PRIu64 ",\"get_404\":%" PRIu64
           ",\"get_bad\":%" PRIu64 ",\"get_err\":%" PRIu64 ",\"del\":%" PRIu64
           ",\"del_ack\":%" PRIu64 ",\"seconds\":%.1f}\n",
           n_ops, n_put, n_put_ack, n_get, n_get_ok, n_get_404, n_get_bad,
           n_get_err, n_del, n_del_ack, now() - start);
    for (int i = 0; i < nc; i++) {
        curl_easy_cleanup(cl[i].easy);
        curl_slist_free_all(cl[i].hdrs);
        free(cl[i].body);
    }
    free(cl);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return 0;
}
