/*
 * bench/s3curl.h: what the S3 clients in bench/ share (plinth-loadgen,
 * plinth-chaos): the loopback-only endpoint check and SigV4 signing of a
 * libcurl easy handle (libcurl signs: CURLOPT_AWS_SIGV4 "aws:amz:<region>:s3",
 * the body not hashed: x-amz-content-sha256: UNSIGNED-PAYLOAD).
 * Header-only: each tool is one C file plus this.
 */
#ifndef PLINTH_BENCH_S3CURL_H
#define PLINTH_BENCH_S3CURL_H

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

/* 1 when ep is http:// on 127.0.0.0/8 or localhost (tests send traffic
 * only there). */
static inline int s3_loopback(const char *ep)
{
    const char *h = strstr(ep, "://");
    if (!h || strncmp(ep, "http://", 7) != 0)
        return 0;
    h += 3;
    if (strncmp(h, "localhost", 9) == 0 && (h[9] == ':' || h[9] == '/' || !h[9]))
        return 1;
    unsigned a, b, c, d;
    char rest;
    if (sscanf(h, "%u.%u.%u.%u%c", &a, &b, &c, &d, &rest) >= 4 && a == 127
        && b < 256 && c < 256 && d < 256)
        return 1;
    return 0;
}

/*
 * A new easy handle for one client's requests, reused for each of them:
 * ud (its CURLOPT_PRIVATE) gets the body callbacks, errbuf the error
 * text; no signals, TCP_NODELAY, HTTP only, timeout_s a request, 5 s to
 * connect. Dies (through die_fn) if libcurl cannot make one.
 */
static inline CURL *s3_easy_new(void *ud, curl_read_callback rd,
                                curl_seek_callback sk,
                                curl_write_callback wr, char *errbuf,
                                double timeout_s, void (*die_fn)(const char *,
                                                                 ...))
{
    CURL *e = curl_easy_init();
    if (!e)
        die_fn("curl_easy_init failed");
    curl_easy_setopt(e, CURLOPT_PRIVATE, ud);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, rd);
    curl_easy_setopt(e, CURLOPT_READDATA, ud);
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, sk);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, ud);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, wr);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, ud);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    return e;
}

/*
 * Sign every request of easy handle e with SigV4 under the key given;
 * the x-amz-content-sha256 header is appended to *hdrs (set it on the
 * handle with CURLOPT_HTTPHEADER after adding your own). The strings are
 * copied by libcurl.
 */
static inline void s3_sign(CURL *e, const char *access_key,
                           const char *secret_key, const char *region,
                           struct curl_slist **hdrs)
{
    char userpwd[512], sigv4[128];
    snprintf(userpwd, sizeof userpwd, "%s:%s", access_key, secret_key);
    snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", region);
    curl_easy_setopt(e, CURLOPT_AWS_SIGV4, sigv4);
    curl_easy_setopt(e, CURLOPT_USERPWD, userpwd);
    *hdrs = curl_slist_append(*hdrs, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
}

#endif
