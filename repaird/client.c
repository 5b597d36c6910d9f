/*
 * client.c -- HTTP/1.1 to the data nodes with libcurl: one easy handle,
 * reused, so connections to each node stay alive between requests. Every
 * request carries X-Request-Id "rd-<instance>-<n>", logged by both sides.
 * Answers are small control messages (protobuf); bodies over 16 MiB are
 * refused.
 */

#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "repaird.h"
#include "ngx_plinth_hop.h"

#define RD_HTTP_BODY_MAX  (16 * 1024 * 1024)

static CURL           *rd_curl;
static uint64_t        rd_req_n;
static char            rd_rid[96];
static plinth_hop_key_t  *rd_hop_key;
static const char     *rd_scheme = "http";
static const char     *rd_ca;          /* tls_ca, or NULL */


int
rd_http_init(const rd_config *cf, char *err, size_t len)
{
    int            n;
    unsigned char  secret[PLINTH_HOP_SECRET_MAX];

    if (cf->cluster_secret_file == NULL) {
        snprintf(err, len, "\"cluster_secret_file\" is required: data "
                 "nodes serve only requests signed with the cluster secret");
        return -1;
    }
    n = plinth_hop_secret_load(cf->cluster_secret_file, secret,
                               sizeof(secret), err, len);
    if (n < 0) {
        return -1;
    }
    plinth_hop_key_free(rd_hop_key);
    rd_hop_key = plinth_hop_key_new(secret, (size_t) n);
    memset(secret, 0, sizeof(secret));
    if (rd_hop_key == NULL) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    if (cf->tls_ca != NULL) {
        rd_scheme = "https";
        rd_ca = cf->tls_ca;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        snprintf(err, len, "cannot initialize libcurl");
        return -1;
    }
    rd_curl = curl_easy_init();
    if (rd_curl == NULL) {
        snprintf(err, len, "cannot initialize libcurl");
        return -1;
    }
    return 0;
}


/* Append X-Plinth-Date and X-Plinth-Signature for this request. */
static struct curl_slist *
rd_hop_sign(struct curl_slist *hl, const char *method, const char *target)
{
    char     sig[PLINTH_HOP_SIG_LEN + 1], hdr[PLINTH_HOP_SIG_LEN + 64];
    int64_t  now = (int64_t) time(NULL);

    if (plinth_hop_sign(rd_hop_key, method, strlen(method),
                        target, strlen(target), now, rd_rid, strlen(rd_rid),
                        sig) != 0)
    {
        return hl;      /* unsigned: refused by the node, and logged */
    }
    snprintf(hdr, sizeof(hdr), PLINTH_HOP_DATE_HDR ": %lld", (long long) now);
    hl = curl_slist_append(hl, hdr);
    snprintf(hdr, sizeof(hdr), PLINTH_HOP_SIG_HDR ": %s", sig);
    return curl_slist_append(hl, hdr);
}


/* https with the cluster CA, when tls_ca is set. */
static void
rd_http_tls(CURL *e)
{
    if (rd_ca != NULL) {
        curl_easy_setopt(e, CURLOPT_CAINFO, rd_ca);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    }
}


void
rd_http_done(void)
{
    if (rd_curl != NULL) {
        curl_easy_cleanup(rd_curl);
        rd_curl = NULL;
    }
    curl_global_cleanup();
}


const char *
rd_request_id(void)
{
    return rd_rid;
}


static size_t
rd_http_write(char *data, size_t size, size_t n, void *arg)
{
    rd_http_answer  *a = arg;
    size_t           len = size * n;
    uint8_t         *nb;

    if (a->len + len > RD_HTTP_BODY_MAX) {
        return 0;
    }
    nb = realloc(a->body, a->len + len + 1);
    if (nb == NULL) {
        return 0;
    }
    a->body = nb;
    memcpy(a->body + a->len, data, len);
    a->len += len;
    return len;
}


static void
rd_header_value(const char *line, size_t len, const char *name, char *out,
    size_t outlen)
{
    size_t  nl = strlen(name), i;

    if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':') {
        return;
    }
    line += nl + 1;
    len -= nl + 1;
    while (len > 0 && *line == ' ') {
        line++;
        len--;
    }
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'
                       || line[len - 1] == ' '))
    {
        len--;
    }
    for (i = 0; i < len && i + 1 < outlen; i++) {
        out[i] = line[i];
    }
    out[i] = '\0';
}


static size_t
rd_http_header(char *data, size_t size, size_t n, void *arg)
{
    rd_http_answer  *a = arg;
    size_t           len = size * n;

    rd_header_value(data, len, "X-Plinth-Error", a->error, sizeof(a->error));
    rd_header_value(data, len, "X-Plinth-Scrub-Last", a->scrub_last,
                    sizeof(a->scrub_last));
    rd_header_value(data, len, "X-Plinth-Scrub-Checked", a->scrub_checked,
                    sizeof(a->scrub_checked));
    rd_header_value(data, len, "X-Plinth-Size", a->size, sizeof(a->size));
    return len;
}


int
rd_http(const char *method, const char *address, const char *path,
    double timeout, rd_http_answer *a)
{
    char                url[1024], hdr[160];
    struct curl_slist  *hl = NULL;
    CURLcode            cc;

    memset(a, 0, sizeof(*a));
    snprintf(rd_rid, sizeof(rd_rid), "rd-%s-%llu", rd_log_instance,
             (unsigned long long) ++rd_req_n);
    snprintf(url, sizeof(url), "%s://%s%s", rd_scheme, address, path);
    snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", rd_rid);
    hl = curl_slist_append(hl, hdr);
    hl = curl_slist_append(hl, "Expect:");
    hl = rd_hop_sign(hl, method, path);

    curl_easy_reset(rd_curl);
    curl_easy_setopt(rd_curl, CURLOPT_URL, url);
    curl_easy_setopt(rd_curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(rd_curl, CURLOPT_CUSTOMREQUEST, method);
    rd_http_tls(rd_curl);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(rd_curl, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(rd_curl, CURLOPT_POST, 1L);
        curl_easy_setopt(rd_curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(rd_curl, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(rd_curl, CURLOPT_CONNECTTIMEOUT_MS,
                     (long) (timeout < 2 ? timeout * 1000 : 2000));
    curl_easy_setopt(rd_curl, CURLOPT_TIMEOUT_MS, (long) (timeout * 1000));
    curl_easy_setopt(rd_curl, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(rd_curl, CURLOPT_WRITEFUNCTION, rd_http_write);
    curl_easy_setopt(rd_curl, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(rd_curl, CURLOPT_HEADERFUNCTION, rd_http_header);
    curl_easy_setopt(rd_curl, CURLOPT_HEADERDATA, a);

    cc = curl_easy_perform(rd_curl);
    curl_slist_free_all(hl);
    if (cc != CURLE_OK) {
        snprintf(a->error, sizeof(a->error), "%s", curl_easy_strerror(cc));
        a->status = 0;
        return -1;
    }
    curl_easy_getinfo(rd_curl, CURLINFO_RESPONSE_CODE, &a->status);
    return 0;
}


void
rd_http_answer_free(rd_http_answer *a)
{
    free(a->body);
    a->body = NULL;
    a->len = 0;
}


/*
 * GET path on every address at once (curl multi), each bounded by
 * timeout: a probe round takes one timeout however many nodes are down.
 * a[i] gets address i's answer (status 0 and error on failure).
 */
int
rd_http_get_all(const char *const *addresses, size_t n, const char *path,
    double timeout, rd_http_answer *a)
{
    CURLM              *m;
    CURL              **e;
    struct curl_slist  *hl = NULL;
    char                url[1024], hdr[160];
    size_t              i;
    int                 running = 0, numfds, rounds = 0;
    CURLMsg            *msg;
    int                 left;

    e = calloc(n ? n : 1, sizeof(*e));
    m = curl_multi_init();
    if (e == NULL || m == NULL) {
        free(e);
        if (m != NULL) {
            curl_multi_cleanup(m);
        }
        return -1;
    }
    snprintf(rd_rid, sizeof(rd_rid), "rd-%s-%llu", rd_log_instance,
             (unsigned long long) ++rd_req_n);
    snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", rd_rid);
    hl = curl_slist_append(hl, hdr);
    hl = rd_hop_sign(hl, "GET", path);

    for (i = 0; i < n; i++) {
        memset(&a[i], 0, sizeof(a[i]));
        e[i] = curl_easy_init();
        if (e[i] == NULL) {
            snprintf(a[i].error, sizeof(a[i].error), "out of memory");
            continue;
        }
        snprintf(url, sizeof(url), "%s://%s%s", rd_scheme, addresses[i],
                 path);
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        rd_http_tls(e[i]);
        curl_easy_setopt(e[i], CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e[i], CURLOPT_CONNECTTIMEOUT_MS,
                         (long) (timeout * 1000));
        curl_easy_setopt(e[i], CURLOPT_TIMEOUT_MS, (long) (timeout * 1000));
        curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, rd_http_write);
        curl_easy_setopt(e[i], CURLOPT_WRITEDATA, &a[i]);
        curl_easy_setopt(e[i], CURLOPT_HEADERFUNCTION, rd_http_header);
        curl_easy_setopt(e[i], CURLOPT_HEADERDATA, &a[i]);
        curl_easy_setopt(e[i], CURLOPT_PRIVATE, (void *) &a[i]);
        curl_multi_add_handle(m, e[i]);
    }

    /* bounded: every transfer has its own timeout; the loop a few more */
    do {
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            break;
        }
        if (running) {
            curl_multi_poll(m, NULL, 0, 100, &numfds);
        }
    } while (running && ++rounds < (int) (timeout * 10) + 50);

    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
        rd_http_answer  *ans;
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &ans);
        if (msg->data.result == CURLE_OK) {
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
                              &ans->status);
        } else {
            snprintf(ans->error, sizeof(ans->error), "%s",
                     curl_easy_strerror(msg->data.result));
            ans->status = 0;
        }
    }
    for (i = 0; i < n; i++) {
        if (e[i] != NULL) {
            curl_multi_remove_handle(m, e[i]);
            curl_easy_cleanup(e[i]);
        }
        if (a[i].status == 0 && a[i].error[0] == '\0') {
            snprintf(a[i].error, sizeof(a[i].error), "no answer in time");
        }
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(hl);
    free(e);
    return 0;
}
