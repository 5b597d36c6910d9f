/*
 * plinth-loadgen: a load generator for any S3 endpoint, on libcurl's multi
 * interface (one thread, N transfers in flight, keep-alive connections).
 *
 *   plinth-loadgen --endpoint http://127.0.0.1:9000 --access-key ID
 *       --secret-key SECRET --bucket b --workload get --size 4K
 *       --concurrency 8 --duration 10 [--ops N] [--keys N] [--populate]
 *
 * Requests are signed with AWS SigV4 by libcurl (CURLOPT_AWS_SIGV4,
 * "aws:amz:<region>:s3") with x-amz-content-sha256: UNSIGNED-PAYLOAD, or
 * sent unsigned with --no-sign (plain nginx ceilings). Keys are
 * <key-prefix><8 digits>, index 0 .. keys-1: PUT walks them in order, GET
 * picks one at random, LIST asks for max-keys keys (from the start, or
 * after a random key with --list-random). mixed draws GET/PUT/LIST by
 * --mix G:P:L percentages. list-all pages once through the whole of
 * --list-prefix (default: the key prefix) with continuation tokens, one
 * client, one page after another, and stops at the last page (or at
 * --duration / --ops / the first error); it reports the keys listed,
 * keys/s and every page's latency (lat_ms). batch sends Plinth's batch GET (POST
 * /bucket?batch) of --batch random keys (each --size bytes) and checks the
 * tar answer's length; it also reports objects and objects/s.
 *
 * Prints one JSON line per run: ops, errors, retries (requests sent again
 * after a kept-alive connection closed under them: retry_stale), ops/s,
 * MB/s (10^6 bytes of object data), latency p50/p95/p99/max in ms, for
 * GET and batch the time to the first byte of the answer (ttfb_ms), the
 * client's CPU seconds (getrusage), and, for every --cpu-pid NAME=PID, the
 * CPU seconds used by that process and its descendants (/proc/PID/stat,
 * before and after), and for every --rss-pid NAME=PID the RSS of the
 * process and its descendants
 * (--rss-children NAME=PID: its descendants only, e.g. nginx's workers
 * without the master) at the start, the end and the highest sampled
 * (every 20 ms).
 *
 * --lat-log FILE writes one line per measured operation as it completes:
 * seconds since the start, latency in ms, the operation, and 1 or 0 for
 * success; for finding where a tail comes from (is it spread out, or a
 * stall every few seconds?).
 *
 * Bounded: a run stops starting operations at --duration seconds or
 * --ops operations, whichever comes first; every transfer has a timeout
 * (--op-timeout); the whole run is abandoned at duration + op-timeout.
 * Only loopback endpoints (127.0.0.0/8, localhost) are accepted.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "s3curl.h"

#define MAX_CONC     1024
#define MAX_PIDS     32
#define MAX_LAT      (20 * 1000 * 1000)
#define PATTERN_SIZE (1 << 20)
#define LIST_BUF_MAX (8 << 20)

enum op { OP_GET, OP_PUT, OP_LIST, OP_CREATE, OP_BATCH };
static const char *op_name[] = { "get", "put", "list", "create-bucket",
                                 "batch" };

struct opts {
    const char *endpoint, *access_key, *secret_key, *region, *bucket;
    const char *workload, *key_prefix, *label, *list_prefix;
    const char *lat_log;   /* --lat-log: one line per measured operation */
    uint64_t size;
    int conc;
    double duration, op_timeout;
    uint64_t max_ops, keys;
    int populate, create_bucket, no_sign, list_random, list_max, verbose;
    int mix_get, mix_put, mix_list;
    int batch;             /* entries per batch GET */
    int list_all;          /* --workload list-all */
};

struct slot {
    CURL *easy;
    struct curl_slist *hdrs;
    enum op op;
    double t0;
    uint64_t body_off, body_len, got;
    char *lbuf;            /* LIST answer (counted for <Key>) */
    char *bbuf;            /* batch GET body (JSON) */
    size_t lbuf_len;
    char url[8192];
    char errbuf[CURL_ERROR_SIZE];
    int busy;
    int retried;           /* this operation was sent again once */
};

struct pidspec { char name[64]; long pid; double cpu0, cpu1;
                 long rss0, rss1, rssmax; int children_only; };

static struct opts O;
static unsigned char *pattern;
static struct pidspec cpu_pids[MAX_PIDS], rss_pids[MAX_PIDS];
static int n_cpu_pids, n_rss_pids;
static double *lat;                 /* latencies of the measured phase, ms */
static FILE *lat_log;               /* --lat-log, or NULL */
static uint64_t n_lat;
static double *ttfb;                /* GET, batch: time to the first byte, ms */
static uint64_t n_ttfb;
static uint64_t n_ops, n_err, n_bytes, n_list_keys, n_list, n_objects;
static uint64_t n_retries;          /* sent again: retry_stale */
static uint64_t seq_put;
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static int err_printed;
/* list-all: the next page's continuation token (URL-encoded), and whether
 * the last page came */
static char list_token[4096];
static int list_first = 1, list_done;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "plinth-loadgen: ");
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

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        die("bad size '%s'", s);
    switch (toupper((unsigned char)*end)) {
    case 'K': v <<= 10; end++; break;
    case 'M': v <<= 20; end++; break;
    case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'I')
        end++;
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end)
        die("bad size '%s'", s);
    return v;
}

static double client_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
         + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ---- /proc: a process and its descendants */

static int read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = 0;
    return (int)n;
}

/* parent of pid, and (if cpu) utime+stime+cutime+cstime in ticks */
static long stat_of(long pid, long *ppid, unsigned long long *ticks)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    if (read_file(path, buf, sizeof buf) <= 0)
        return -1;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime cutime cstime */
    char state;
    long pp;
    unsigned long long f[12];
    if (sscanf(p + 2, "%c %ld %llu %llu %llu %llu %llu %llu %llu %llu %llu "
               "%llu %llu %llu", &state, &pp, &f[0], &f[1], &f[2], &f[3],
               &f[4], &f[5], &f[6], &f[7], &f[8], &f[9], &f[10], &f[11]) != 14)
        return -1;
    *ppid = pp;
    *ticks = f[8] + f[9] + f[10] + f[11];
    return 0;
}

/* pid and its descendants, at most max */
static int family(long root, long *out, int max)
{
    static long pids[65536], ppids[65536];
    int n = 0, k = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 65536) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        long pid = atol(e->d_name);
        long pp;
        unsigned long long t;
        if (stat_of(pid, &pp, &t) == 0) {
            pids[n] = pid;
            ppids[n] = pp;
            n++;
        }
    }
    closedir(d);
    out[k++] = root;
    for (int i = 0; i < k && k < max; i++)          /* breadth first */
        for (int j = 0; j < n && k < max; j++)
            if (ppids[j] == out[i])
                out[k++] = pids[j];
    return k;
}

static double family_cpu(long root)
{
    long fam[1024];
    int n = family(root, fam, 1024);
    unsigned long long sum = 0;
    for (int i = 0; i < n; i++) {
        long pp;
        unsigned long long t;
        if (stat_of(fam[i], &pp, &t) == 0)
            sum += t;
    }
    return (double)sum / sysconf(_SC_CLK_TCK);
}

static long family_rss_kb(const long *fam, int n)
{
    long sum = 0;
    for (int i = 0; i < n; i++) {
        char path[64], buf[4096];
        snprintf(path, sizeof path, "/proc/%ld/status", fam[i]);
        if (read_file(path, buf, sizeof buf) <= 0)
            continue;
        char *p = strstr(buf, "VmRSS:");
        if (p)
            sum += atol(p + 6);
    }
    return sum;
}

static long rss_fam[MAX_PIDS][256];
static int rss_fam_n[MAX_PIDS];

static void rss_sample(int which)       /* 0 start, 1 during, 2 end */
{
    for (int i = 0; i < n_rss_pids; i++) {
        long v = family_rss_kb(rss_fam[i], rss_fam_n[i]);
        if (which == 0)
            rss_pids[i].rss0 = rss_pids[i].rssmax = v;
        if (v > rss_pids[i].rssmax)
            rss_pids[i].rssmax = v;
        if (which == 2)
            rss_pids[i].rss1 = v;
    }
}

static void add_pid(struct pidspec *arr, int *n, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof arr[0].name)
        die("expected NAME=PID, not '%s'", arg);
    if (*n >= MAX_PIDS)
        die("too many pids");
    struct pidspec *p = &arr[(*n)++];
    memset(p, 0, sizeof *p);
    memcpy(p->name, arg, eq - arg);
    p->pid = atol(eq + 1);
    if (p->pid <= 1)
        die("bad pid in '%s'", arg);
}

/* ---- transfers */

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    struct slot *s = ud;
    size_t want = size * nitems, n = 0;
    while (n < want && s->body_off < s->body_len) {
        size_t off = s->body_off % PATTERN_SIZE;
        size_t chunk = PATTERN_SIZE - off;
        if (chunk > want - n)
            chunk = want - n;
        if (chunk > s->body_len - s->body_off)
            chunk = s->body_len - s->body_off;
        memcpy(buf + n, pattern + off, chunk);
        n += chunk;
        s->body_off += chunk;
    }
    return n;
}

/*
 * The body can be sent again from any offset: libcurl rewinds it when a
 * kept-alive connection turns out to be closed by the server (an idle
 * connection an nginx reload or a timeout ended) and it retries the
 * request on a new one, as any S3 client does for an idempotent PUT.
 */
static int on_seek(void *ud, curl_off_t offset, int origin)
{
    struct slot *s = ud;
    if (origin != SEEK_SET || offset < 0 || (size_t)offset > s->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    s->body_off = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static size_t on_write(char *buf, size_t size, size_t nmemb, void *ud)
{
    struct slot *s = ud;
    size_t n = size * nmemb;
    s->got += n;
    if (s->op == OP_LIST || s->op == OP_CREATE
        || (s->op == OP_BATCH && s->lbuf_len < 1024)) {  /* an error's head */
        if (s->lbuf_len + n + 1 > LIST_BUF_MAX)
            return n;                       /* keep the head only */
        char *nb = realloc(s->lbuf, s->lbuf_len + n + 1);
        if (!nb)
            return 0;
        s->lbuf = nb;
        memcpy(s->lbuf + s->lbuf_len, buf, n);
        s->lbuf_len += n;
        s->lbuf[s->lbuf_len] = 0;
    }
    return n;
}

static void key_name(char *out, size_t len, uint64_t idx)
{
    snprintf(out, len, "%s%08" PRIu64, O.key_prefix, idx);
}

/* RFC 3986 percent-encoding (SigV4's canonical form: unreserved bytes
 * as they are, the rest %XX in upper case); 0 if it does not fit */
static int url_encode(char *out, size_t len, const char *in, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (o + 4 > len)
            return 0;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            out[o++] = (char)c;
        else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = 0;
    return 1;
}

/* list-all: the next page from an answer: NextContinuationToken when
 * IsTruncated is true; list_done otherwise. 0 when the answer has neither */
static int list_next(const char *xml)
{
    if (!xml)
        return 0;
    if (strstr(xml, "<IsTruncated>false</IsTruncated>")) {
        list_done = 1;
        return 1;
    }
    const char *t = strstr(xml, "<NextContinuationToken>");
    if (!strstr(xml, "<IsTruncated>true</IsTruncated>") || !t)
        return 0;
    t += strlen("<NextContinuationToken>");
    const char *e = strchr(t, '<');
    if (!e || e == t)
        return 0;
    list_first = 0;
    return url_encode(list_token, sizeof list_token, t, (size_t)(e - t));
}

static void slot_init(struct slot *s)
{
    CURL *e = s->easy = s3_easy_new(s, on_read, on_seek, on_write, s->errbuf,
                                    O.op_timeout, die);
    if (!O.no_sign)
        s3_sign(e, O.access_key, O.secret_key, O.region, &s->hdrs);
    /* no 100-continue round trip before the body */
    s->hdrs = curl_slist_append(s->hdrs, "Expect:");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->hdrs);
    /* a batch answer (megabytes of tar) is read 256 KiB a call, as a data
     * loader reads an archive; curl's 16 KiB default took a call and a
     * wake-up per sample. Single GETs keep the default (a 4 or 10 KiB
     * object is one read either way; the ceilings' 1 MiB GETs are read
     * as Plinth's are). */
    if (!strcmp(O.workload, "batch"))
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256 * 1024L);
}

/* what one attempt of an operation received and sent so far */
static void slot_attempt_reset(struct slot *s)
{
    s->got = 0;
    s->body_off = 0;
    s->lbuf_len = 0;
    s->errbuf[0] = 0;
}

static void slot_start(CURLM *m, struct slot *s, enum op op, uint64_t idx)
{
    CURL *e = s->easy;
    char key[256];
    s->op = op;
    s->body_len = 0;
    s->retried = 0;
    slot_attempt_reset(s);
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 0L);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 0L);
    curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    switch (op) {
    case OP_CREATE:
        snprintf(s->url, sizeof s->url, "%s/%s", O.endpoint, O.bucket);
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)0);
        break;
    case OP_PUT:
        key_name(key, sizeof key, idx);
        snprintf(s->url, sizeof s->url, "%s/%s/%s", O.endpoint, O.bucket, key);
        s->body_len = O.size;
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)O.size);
        break;
    case OP_GET:
        key_name(key, sizeof key, idx);
        snprintf(s->url, sizeof s->url, "%s/%s/%s", O.endpoint, O.bucket, key);
        break;
    case OP_BATCH: {
        /* {"entries":[{"key":"k00000042"},...]}: random keys */
        size_t cap = (size_t)O.batch * (strlen(O.key_prefix) + 24) + 64;
        if (!s->bbuf && !(s->bbuf = malloc(cap)))
            die("out of memory");
        size_t n = (size_t)snprintf(s->bbuf, cap, "{\"entries\":[");
        for (int i = 0; i < O.batch; i++) {
            key_name(key, sizeof key, rnd() % O.keys);
            n += (size_t)snprintf(s->bbuf + n, cap - n, "%s{\"key\":\"%s\"}",
                                  i ? "," : "", key);
        }
        n += (size_t)snprintf(s->bbuf + n, cap - n, "]}");
        snprintf(s->url, sizeof s->url, "%s/%s?batch=", O.endpoint, O.bucket);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)n);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->bbuf);
        break;
    }
    case OP_LIST:
        /* parameters in canonical (sorted) order */
        if (O.list_all) {
            char pfx[1024];
            if (!url_encode(pfx, sizeof pfx, O.list_prefix,
                            strlen(O.list_prefix)))
                die("--list-prefix too long");
            snprintf(s->url, sizeof s->url,
                     "%s/%s?%s%s%slist-type=2&max-keys=%d&prefix=%s",
                     O.endpoint, O.bucket,
                     list_first ? "" : "continuation-token=",
                     list_first ? "" : list_token, list_first ? "" : "&",
                     O.list_max, pfx);
        } else if (O.list_random) {
            char ekey[1024];
            key_name(key, sizeof key, idx);
            if (!url_encode(ekey, sizeof ekey, key, strlen(key)))
                die("key too long");
            snprintf(s->url, sizeof s->url,
                     "%s/%s?list-type=2&max-keys=%d&start-after=%s",
                     O.endpoint, O.bucket, O.list_max, ekey);
        } else {
            snprintf(s->url, sizeof s->url, "%s/%s?list-type=2&max-keys=%d",
                     O.endpoint, O.bucket, O.list_max);
        }
        break;
    }
    curl_easy_setopt(e, CURLOPT_URL, s->url);
    s->busy = 1;
    s->t0 = now();
    curl_multi_add_handle(m, e);
}

static enum op pick_op(enum op base)
{
    if (strcmp(O.workload, "mixed") != 0)
        return base;
    int r = (int)(rnd() % 100);
    if (r < O.mix_get)
        return OP_GET;
    if (r < O.mix_get + O.mix_put)
        return OP_PUT;
    return OP_LIST;
}

static uint64_t pick_idx(enum op op)
{
    if (op == OP_PUT)
        return seq_put++ % O.keys;
    return rnd() % O.keys;
}

static unsigned count_keys(const char *xml)
{
    unsigned n = 0;
    const char *p = xml;
    while (p && (p = strstr(p, "<Key>"))) {
        n++;
        p += 5;
    }
    return n;
}

/*
 * A request that failed on a kept-alive connection before any byte of an
 * answer came back (the server closed the idle connection as the request
 * went out: nginx does this to idle connections when a reload retires a
 * worker) was never served; like the AWS SDKs, send it once more on a new
 * connection. Every operation here is idempotent (GET, PUT of the same
 * bytes, LIST, batch GET). Counted as "retries" in the JSON line.
 */
static int retry_stale(CURLM *m, struct slot *s, CURLcode res, long code)
{
    long connects = -1;
    if (s->retried || code != 0
        || (res != CURLE_SEND_ERROR && res != CURLE_RECV_ERROR
            && res != CURLE_GOT_NOTHING))
        return 0;
    if (curl_easy_getinfo(s->easy, CURLINFO_NUM_CONNECTS, &connects) != CURLE_OK
        || connects != 0)
        return 0;              /* a new connection failed: a real error */
    curl_multi_remove_handle(m, s->easy);
    slot_attempt_reset(s);
    s->retried = 1;
    n_retries++;
    curl_easy_setopt(s->easy, CURLOPT_FRESH_CONNECT, 1L);
    curl_multi_add_handle(m, s->easy);
    return 1;
}

/* One phase: up to max_ops operations or until duration, conc at once.
 * measure: record latencies and counters. Returns errors. */
static uint64_t run_phase(CURLM *m, struct slot *slots, enum op base,
                          uint64_t max_ops, double duration, int measure,
                          double *elapsed)
{
    double t0 = now(), stop_at = t0 + duration;
    double abandon_at = stop_at + O.op_timeout + 5;
    double next_rss = t0;
    uint64_t started = 0, errs = 0;
    int active = 0;

    for (;;) {
        double t = now();
        for (int i = 0; i < O.conc && started < max_ops && t < stop_at
                        && !list_done; i++) {
            if (slots[i].busy)
                continue;
            enum op op = pick_op(base);
            slot_start(m, &slots[i], op, op == OP_CREATE ? 0 : pick_idx(op));
            started++;
            active++;
        }
        if (active == 0)
            break;
        if (t > abandon_at) {
            fprintf(stderr, "plinth-loadgen: abandoning %d transfers\n", active);
            for (int i = 0; i < O.conc; i++)
                if (slots[i].busy) {
                    curl_multi_remove_handle(m, slots[i].easy);
                    slots[i].busy = 0;
                    errs++;
                }
            break;
        }
        int running;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left, done = 0;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct slot *s;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            double lat_ms = (now() - s->t0) * 1000;
            long code = 0;
            curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
            if (retry_stale(m, s, msg->data.result, code))
                continue;
            int ok = msg->data.result == CURLE_OK && code >= 200 && code < 300;
            if (s->op == OP_CREATE && code == 409 && s->lbuf
                && strstr(s->lbuf, "BucketAlreadyOwnedByYou"))
                ok = 1;
            if (ok && s->op == OP_GET && s->got != O.size)
                ok = 0;
            if (O.list_all && s->op == OP_LIST && (!ok || !list_next(s->lbuf))) {
                ok = 0;
                list_done = 1;      /* no next page: stop the pass */
            }
            /* the tar: a 512-byte header and the padded data per entry,
             * two zero blocks at the end */
            if (ok && s->op == OP_BATCH
                && s->got != (uint64_t)O.batch * (512 + (O.size + 511) / 512 * 512)
                             + 1024)
                ok = 0;
            if (!ok) {
                errs++;
                if (err_printed < 5 || O.verbose) {
                    err_printed++;
                    fprintf(stderr, "plinth-loadgen: %s %s: %s (HTTP %ld, "
                            "%" PRIu64 " bytes)%s%.300s\n", op_name[s->op],
                            s->url, msg->data.result == CURLE_OK
                            ? (code >= 200 && code < 300 ? "wrong body size"
                               : "failed")
                            : (s->errbuf[0] ? s->errbuf
                               : curl_easy_strerror(msg->data.result)),
                            code, s->got, s->lbuf_len ? ": " : "",
                            s->lbuf_len ? s->lbuf : "");
                }
            }
            if (measure) {
                n_ops++;
                if (!ok)
                    n_err++;
                if (ok && s->op == OP_PUT)
                    n_bytes += O.size;
                if (ok && s->op == OP_GET) {
                    n_bytes += s->got;
                    n_objects++;
                }
                if (ok && s->op == OP_BATCH) {
                    n_bytes += (uint64_t)O.batch * O.size;
                    n_objects += O.batch;
                }
                if (ok && s->op == OP_LIST) {
                    n_list++;
                    n_list_keys += count_keys(s->lbuf);
                }
                if (n_lat < MAX_LAT)
                    lat[n_lat++] = lat_ms;
                if (lat_log)        /* seconds since the start, ms, op, ok */
                    fprintf(lat_log, "%.6f %.3f %s %d\n", now() - t0, lat_ms,
                            op_name[s->op], ok);
                curl_off_t first_us;
                if (ok && (s->op == OP_GET || s->op == OP_BATCH)
                    && n_ttfb < MAX_LAT
                    && curl_easy_getinfo(s->easy, CURLINFO_STARTTRANSFER_TIME_T,
                                         &first_us) == CURLE_OK)
                    ttfb[n_ttfb++] = first_us / 1000.0;
            }
            curl_multi_remove_handle(m, s->easy);
            s->busy = 0;
            active--;
            done++;
        }
        if (measure && n_rss_pids && now() >= next_rss) {
            rss_sample(1);
            next_rss = now() + 0.02;
        }
        /* a slot came free: start its next operation at once */
        if (!done)
            curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    *elapsed = now() - t0;
    return errs;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct_of(const double *v, uint64_t n, double p)
{
    if (n == 0)
        return 0;
    uint64_t i = (uint64_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i];
}

static double pct(double p)
{
    return pct_of(lat, n_lat, p);
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void usage(void)
{
    fprintf(stderr,
"usage: plinth-loadgen --endpoint http://127.0.0.1:PORT --bucket B\n"
"         [--access-key ID --secret-key SECRET | --no-sign] [--region us-east-1]\n"
"         [--workload put|get|list|list-all|mixed|batch] [--batch 256] [--size 4K]\n"
"         [--concurrency 8]\n"
"         [--duration 10] [--ops N] [--keys 1000] [--key-prefix k]\n"
"         [--populate] [--create-bucket] [--list-max 1000] [--list-random]\n"
"         [--list-prefix P]\n"
"         [--mix 80:15:5] [--op-timeout 120] [--label NAME]\n"
"         [--cpu-pid NAME=PID]... [--rss-pid NAME=PID]...\n"
"         [--rss-children NAME=PID]... [--verbose]\n"
"         [--lat-log FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    O.region = "us-east-1";
    O.workload = "get";
    O.key_prefix = "k";
    O.label = "";
    O.size = 4096;
    O.conc = 8;
    O.duration = 10;
    O.op_timeout = 120;
    O.max_ops = UINT64_MAX;
    O.keys = 1000;
    O.list_max = 1000;
    O.batch = 256;
    O.mix_get = 80;
    O.mix_put = 15;
    O.mix_list = 5;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define ARG() (i + 1 < argc ? argv[++i] : (usage(), ""))
        if (!strcmp(a, "--endpoint")) O.endpoint = ARG();
        else if (!strcmp(a, "--access-key")) O.access_key = ARG();
        else if (!strcmp(a, "--secret-key")) O.secret_key = ARG();
        else if (!strcmp(a, "--region")) O.region = ARG();
        else if (!strcmp(a, "--bucket")) O.bucket = ARG();
        else if (!strcmp(a, "--workload")) O.workload = ARG();
        else if (!strcmp(a, "--size")) O.size = parse_size(ARG());
        else if (!strcmp(a, "--concurrency")) O.conc = atoi(ARG());
        else if (!strcmp(a, "--duration")) O.duration = atof(ARG());
        else if (!strcmp(a, "--ops")) O.max_ops = strtoull(ARG(), NULL, 10);
        else if (!strcmp(a, "--keys")) O.keys = strtoull(ARG(), NULL, 10);
        else if (!strcmp(a, "--key-prefix")) O.key_prefix = ARG();
        else if (!strcmp(a, "--label")) O.label = ARG();
        else if (!strcmp(a, "--populate")) O.populate = 1;
        else if (!strcmp(a, "--create-bucket")) O.create_bucket = 1;
        else if (!strcmp(a, "--no-sign")) O.no_sign = 1;
        else if (!strcmp(a, "--list-max")) O.list_max = atoi(ARG());
        else if (!strcmp(a, "--batch")) O.batch = atoi(ARG());
        else if (!strcmp(a, "--list-random")) O.list_random = 1;
        else if (!strcmp(a, "--list-prefix")) O.list_prefix = ARG();
        else if (!strcmp(a, "--op-timeout")) O.op_timeout = atof(ARG());
        else if (!strcmp(a, "--verbose")) O.verbose = 1;
        else if (!strcmp(a, "--lat-log")) O.lat_log = ARG();
        else if (!strcmp(a, "--cpu-pid")) add_pid(cpu_pids, &n_cpu_pids, ARG());
        else if (!strcmp(a, "--rss-pid")) add_pid(rss_pids, &n_rss_pids, ARG());
        else if (!strcmp(a, "--rss-children")) {
            add_pid(rss_pids, &n_rss_pids, ARG());
            rss_pids[n_rss_pids - 1].children_only = 1;
        }
        else if (!strcmp(a, "--mix")) {
            if (sscanf(ARG(), "%d:%d:%d", &O.mix_get, &O.mix_put, &O.mix_list) != 3
                || O.mix_get < 0 || O.mix_put < 0 || O.mix_list < 0
                || O.mix_get + O.mix_put + O.mix_list != 100)
                die("--mix wants G:P:L percentages adding up to 100");
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) usage();
        else die("unknown option '%s'", a);
#undef ARG
    }
    if (!O.endpoint || !O.bucket)
        usage();
    if (!O.no_sign && (!O.access_key || !O.secret_key))
        die("give --access-key and --secret-key, or --no-sign");
    if (!s3_loopback(O.endpoint))
        die("endpoint must be http:// on 127.0.0.0/8 or localhost: '%s'",
            O.endpoint);
    size_t eplen = strlen(O.endpoint);
    if (eplen > 200)
        die("endpoint too long");
    if (O.endpoint[eplen - 1] == '/') {
        char *e = strdup(O.endpoint);
        e[eplen - 1] = 0;
        O.endpoint = e;
    }
    for (const char *p = O.key_prefix; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-/", *p))
            die("--key-prefix: letters, digits, '.', '_', '-', '/' only");
    if (!O.list_prefix)
        O.list_prefix = O.key_prefix;
    if (strlen(O.list_prefix) > 200)
        die("--list-prefix too long");
    if (strlen(O.key_prefix) > 200 || strlen(O.bucket) > 63)
        die("bucket or key prefix too long");
    for (const char *p = O.bucket; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-", *p))
            die("bad bucket name");
    enum op base;
    if (!strcmp(O.workload, "get") || !strcmp(O.workload, "mixed"))
        base = OP_GET;
    else if (!strcmp(O.workload, "put"))
        base = OP_PUT;
    else if (!strcmp(O.workload, "list"))
        base = OP_LIST;
    else if (!strcmp(O.workload, "list-all")) {
        base = OP_LIST;
        O.list_all = 1;
        O.conc = 1;         /* one client, one page after another */
    }
    else if (!strcmp(O.workload, "batch"))
        base = OP_BATCH;
    else
        die("--workload: put, get, list, list-all, mixed or batch");
    if (O.batch < 1 || O.batch > 10000)
        die("--batch: 1..10000");
    if (O.conc < 1 || O.conc > MAX_CONC)
        die("--concurrency: 1..%d", MAX_CONC);
    if (!(O.duration > 0 && O.duration <= 3600))
        die("--duration: (0, 3600] seconds");
    if (!(O.op_timeout > 0 && O.op_timeout <= 3600))
        die("--op-timeout: (0, 3600] seconds");
    if (O.keys < 1 || O.keys > 100000000)
        die("--keys: 1..100000000");
    if (O.max_ops < 1)
        die("--ops: at least 1");
    if (O.size > ((uint64_t)64 << 30))
        die("--size: at most 64G");
    if (O.list_max < 1 || O.list_max > 1000)
        die("--list-max: 1..1000");

    rng ^= (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
    pattern = malloc(PATTERN_SIZE);
    lat = malloc(sizeof(double) * MAX_LAT);
    if (O.lat_log && !(lat_log = fopen(O.lat_log, "w")))
        die("%s: %s", O.lat_log, strerror(errno));
    ttfb = malloc(sizeof(double) * MAX_LAT);
    if (!pattern || !lat || !ttfb)
        die("out of memory");
    for (size_t i = 0; i < PATTERN_SIZE; i += 8) {
        uint64_t r = rnd();
        memcpy(pattern + i, &r, 8);
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        die("curl_global_init failed");
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)O.conc);
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)O.conc);
    struct slot *slots = calloc(O.conc, sizeof *slots);
    if (!slots)
        die("out of memory");
    for (int i = 0; i < O.conc; i++)
        slot_init(&slots[i]);

    double el;
    int saved_conc = O.conc;
    if (O.create_bucket) {
        O.conc = 1;
        if (run_phase(m, slots, OP_CREATE, 1, 30, 0, &el))
            die("cannot create bucket %s", O.bucket);
        O.conc = saved_conc;
    }
    if (O.populate) {
        seq_put = 0;
        if (run_phase(m, slots, OP_PUT, O.keys, 3600, 0, &el))
            die("populating %" PRIu64 " keys failed", O.keys);
        seq_put = 0;
    }

    for (int i = 0; i < n_cpu_pids; i++)
        cpu_pids[i].cpu0 = family_cpu(cpu_pids[i].pid);
    for (int i = 0; i < n_rss_pids; i++) {
        rss_fam_n[i] = family(rss_pids[i].pid, rss_fam[i], 256);
        if (rss_pids[i].children_only) {        /* drop the root itself */
            memmove(rss_fam[i], rss_fam[i] + 1,
                    (rss_fam_n[i] - 1) * sizeof rss_fam[i][0]);
            rss_fam_n[i]--;
        }
    }
    rss_sample(0);
    double cpu0 = client_cpu();
    run_phase(m, slots, base, O.max_ops, O.duration, 1, &el);
    double ccpu = client_cpu() - cpu0;
    for (int i = 0; i < n_cpu_pids; i++)
        cpu_pids[i].cpu1 = family_cpu(cpu_pids[i].pid);
    rss_sample(2);

    qsort(lat, n_lat, sizeof *lat, cmp_double);
    double mean = 0;
    for (uint64_t i = 0; i < n_lat; i++)
        mean += lat[i];
    mean = n_lat ? mean / n_lat : 0;

    printf("{\"label\":");
    json_str(O.label);
    printf(",\"workload\":\"%s\",\"size\":%" PRIu64 ",\"concurrency\":%d,"
           "\"signed\":%s,\"ops\":%" PRIu64 ",\"errors\":%" PRIu64
           ",\"retries\":%" PRIu64 ",\"seconds\":%.3f,\"ops_per_s\":%.1f,"
           "\"mb_per_s\":%.2f,"
           "\"bytes\":%" PRIu64 ",\"lat_ms\":{\"p50\":%.3f,\"p95\":%.3f,"
           "\"p99\":%.3f,\"max\":%.3f,\"mean\":%.3f},\"client_cpu_s\":%.3f",
           O.workload, O.size, O.conc, O.no_sign ? "false" : "true",
           n_ops, n_err, n_retries, el, el > 0 ? n_ops / el : 0,
           el > 0 ? n_bytes / el / 1e6 : 0, n_bytes, pct(50), pct(95),
           pct(99), n_lat ? lat[n_lat - 1] : 0, mean, ccpu);
    if (n_list)
        printf(",\"list_keys_avg\":%.1f", (double)n_list_keys / n_list);
    if (O.list_all) {
        printf(",\"list_prefix\":");
        json_str(O.list_prefix);
        printf(",\"list_pages\":%" PRIu64 ",\"list_keys\":%" PRIu64
               ",\"keys_per_s\":%.1f,\"list_complete\":%s", n_list,
               n_list_keys, el > 0 ? n_list_keys / el : 0,
               list_done && !n_err ? "true" : "false");
    }
    if (n_ttfb) {
        /* curl's CURLINFO_STARTTRANSFER_TIME: request start (connection
         * reuse included) to the first byte of the answer */
        qsort(ttfb, n_ttfb, sizeof *ttfb, cmp_double);
        printf(",\"ttfb_ms\":{\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f,"
               "\"max\":%.3f}", pct_of(ttfb, n_ttfb, 50),
               pct_of(ttfb, n_ttfb, 95), pct_of(ttfb, n_ttfb, 99),
               ttfb[n_ttfb - 1]);
    }
    if (base == OP_GET || base == OP_BATCH)
        printf(",\"batch\":%d,\"objects\":%" PRIu64 ",\"objects_per_s\":%.1f",
               base == OP_BATCH ? O.batch : 1, n_objects,
               el > 0 ? n_objects / el : 0);
    if (n_cpu_pids) {
        printf(",\"server_cpu_s\":{");
        for (int i = 0; i < n_cpu_pids; i++) {
            printf("%s", i ? "," : "");
            json_str(cpu_pids[i].name);
            printf(":%.3f", cpu_pids[i].cpu1 - cpu_pids[i].cpu0);
        }
        printf("}");
    }
    if (n_rss_pids) {
        printf(",\"rss_kb\":{");
        for (int i = 0; i < n_rss_pids; i++) {
            printf("%s", i ? "," : "");
            json_str(rss_pids[i].name);
            printf(":{\"start\":%ld,\"max\":%ld,\"end\":%ld}", rss_pids[i].rss0,
                   rss_pids[i].rssmax, rss_pids[i].rss1);
        }
        printf("}");
    }
    printf("}\n");
    fflush(stdout);

    for (int i = 0; i < O.conc; i++) {
        curl_easy_cleanup(slots[i].easy);
        curl_slist_free_all(slots[i].hdrs);
        free(slots[i].lbuf);
    }
    free(slots);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    free(lat);
    if (lat_log && fclose(lat_log) != 0)
        fprintf(stderr, "plinth-loadgen: %s: %s\n", O.lat_log, strerror(errno));
    free(ttfb);
    free(pattern);
    return n_err ? 1 : 0;
}
