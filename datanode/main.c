/*
 * main.c -- plinth-datanode: one data directory served over HTTP.
 *
 *     plinth-datanode -c <config.yaml>       run in the foreground
 *     plinth-datanode -t -c <config.yaml>    check the config, exit 0/1
 *
 * Start-up: load the config, open the store (lock data_dir, clean tmp/,
 * count blobs), write the pid file, start libmicrohttpd with a thread per
 * connection (handlers block on disk I/O and fsync), then wait for a
 * signal in the main thread. SIGTERM/SIGINT: stop accepting, let requests
 * in progress finish (at most PLINTH_DN_DRAIN_SECONDS), close idle
 * keep-alive connections, remove the pid file, exit 0. Signals are
 * blocked in every thread and taken with sigwait(), so no handler runs
 * asynchronously. Logs are JSON lines on stderr (log.h).
 */

#define _GNU_SOURCE

#include <errno.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "store.h"

#define PLINTH_DN_DRAIN_SECONDS   30
#define PLINTH_DN_CONN_TIMEOUT    60
#define PLINTH_DN_CONN_LIMIT      1024
/*
 * Each connection's libmicrohttpd memory pool (headers, and the read
 * buffer a PUT body arrives through: about half the pool). libmicrohttpd
 * clears the whole pool at the end of every request, so its size is also
 * a cost per request: at 256 KiB that memset was 21% of a data node's CPU
 * under 4 KiB GETs. Smaller pools cost large PUTs more reads and used to
 * cost them as many writes; since store.c gathers a large body into
 * 512 KiB writes (PLINTH_DN_PUT_GATHER), 128 KiB costs them nothing
 * measurable. Measured (A/B, two clusters per build, gathering on):
 *
 *   pool      nodes' CPU per 4 KiB GET   64 MiB PUT, 1 client
 *   256 KiB   0.109-0.119 ms             74-98 MB/s
 *   128 KiB   0.097-0.105 ms             77-94 MB/s
 *    64 KiB   0.088-0.098 ms             77-91 MB/s, nodes' CPU +20-35%
 */
#define PLINTH_DN_CONN_MEMORY     (128 * 1024)

static int plinth_dn_test_config(const char *path);
static int plinth_dn_run(plinth_dn_config *cf);
static char *plinth_dn_read_pem(const char *path, char *err, size_t errlen);
static struct MHD_Daemon *plinth_dn_start(plinth_dn_config *cf,
    plinth_dn_http *h);
static void plinth_dn_wait_signal(const sigset_t *set);
static void plinth_dn_stop(struct MHD_Daemon *d, plinth_dn_http *h);
static int plinth_dn_pid_write(const char *path);
static void plinth_dn_print_usage(void);


int
main(int argc, char **argv)
{
    plinth_dn_config   cf;
    const char        *path = NULL;
    char               err[1024];
    int                opt, test = 0;

    while ((opt = getopt(argc, argv, "c:thv")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test = 1;
            break;
        case 'v':
            printf("plinth-datanode %s\n", PLINTH_DN_VERSION);
            return 0;
        default:
            plinth_dn_print_usage();
            return opt == 'h' ? 0 : 1;
        }
    }
    if (path == NULL || optind != argc) {
        plinth_dn_print_usage();
        return 1;
    }

    if (test) {
        return plinth_dn_test_config(path);
    }

    if (plinth_dn_config_load(path, &cf, err, sizeof(err)) != 0) {
        plinth_dn_log(PLINTH_DN_LOG_ERROR, NULL, NULL, "bad configuration: %s",
                      err);
        return 1;
    }
    plinth_dn_log_level = (int) cf.log_level;
    plinth_dn_log_node = (uint32_t) cf.node_id;

    /* before any thread: libcurl's global state (pulls from peers) */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        plinth_dn_log(PLINTH_DN_LOG_ERROR, NULL, NULL,
                      "cannot initialize libcurl");
        plinth_dn_config_free(&cf);
        return 1;
    }
    opt = plinth_dn_run(&cf);
    curl_global_cleanup();
    plinth_dn_config_free(&cf);
    return opt;
}


/* -t: parse the file and look at data_dir without creating anything. */
static int
plinth_dn_test_config(const char *path)
{
    plinth_dn_config  cf;
    struct stat       st;
    char              err[1024];

    if (plinth_dn_config_load(path, &cf, err, sizeof(err)) != 0) {
        fprintf(stderr, "plinth-datanode: configuration file %s test failed: "
                "%s\n", path, err);
        return 1;
    }

    {
        unsigned char  secret[PLINTH_HOP_SECRET_MAX];

        if (plinth_hop_secret_load(cf.cluster_secret_file, secret,
                                   sizeof(secret), err, sizeof(err)) < 0)
        {
            fprintf(stderr, "plinth-datanode: configuration file %s test "
                    "failed: %s\n", path, err);
            plinth_dn_config_free(&cf);
            return 1;
        }
    }

    if (stat(cf.data_dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "plinth-datanode: configuration file %s test failed: "
                "data_dir \"%s\" exists and is not a directory\n", path,
                cf.data_dir);
        plinth_dn_config_free(&cf);
        return 1;
    }

    fprintf(stderr, "plinth-datanode: configuration file %s test is "
            "successful\n", path);
    plinth_dn_config_free(&cf);
    return 0;
}


static int
plinth_dn_run(plinth_dn_config *cf)
{
    plinth_dn_http      h;
    struct MHD_Daemon  *d;
    sigset_t            set;
    struct rlimit       rl;
    char                err[1024];
    int                 rc = 1;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0
        || signal(SIGPIPE, SIG_IGN) == SIG_ERR)
    {
        plinth_dn_log(PLINTH_DN_LOG_ERROR, NULL, NULL, "cannot set signals");
        return 1;
    }

    /* descriptors: a connection each, and the store keeps blob
     * directories open (plinth_dn_dir_budget); the soft limit, often 1024,
     * goes up to the hard one the operator set */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void) setrlimit(RLIMIT_NOFILE, &rl);
    }

    memset(&h, 0, sizeof(h));
    h.node_id = (uint32_t) cf->node_id;
    h.started = time(NULL);
    h.store = plinth_dn_store_open(cf->data_dir, (uint32_t) cf->block_size,
                                   cf->capacity_bytes, cf->reserve_bytes,
                                   err, sizeof(err));
    if (h.store == NULL) {
        plinth_dn_log(PLINTH_DN_LOG_ERROR, NULL, NULL, "%s", err);
        return 1;
    }
    plinth_dn_store_set_group_commit(h.store, (int) cf->group_commit);
    h.send_rate = cf->send_rate_limit;

    {
        unsigned char  secret[PLINTH_HOP_SECRET_MAX];
        int            n;

        n = plinth_hop_secret_load(cf->cluster_secret_file, secret,
                                   sizeof(secret), err, sizeof(err));
        h.hop_key = n < 0 ? NULL : plinth_hop_key_new(secret, (size_t) n);
        memset(secret, 0, sizeof(secret));
        if (h.hop_key == NULL) {
            plinth_dn_log(PLINTH_DN_LOG_ERROR, NULL, NULL, "%s",
                          n < 0 ? err : "out of memory");
            goto done;
        }
    }

    if (cf->pid_file != NULL && plinth_dn_pid_write(cf->pid_file) != 0) {
        goto done;
    }

    d = plinth_dn_start(cf, &h);
    if (d != NULL) {
        plinth_dn_wait_signal(&set);
        plinth_dn_stop(d, &h);
        rc = 0;
    }

    if (cf->pid_file != NULL && unlink(cf->pid_file) != 0) {
        plinth_dn_log(PLINTH_DN_LOG_WARN, NULL, NULL,
                      "cannot remove pid file \"%s\": %s", cf->pid_file,
                      strerror(errno));
    }

done:
    free(h.tls_cert_pem);
    free(h.tls_key_pem);
    plinth_hop_key_free(h.hop_key);
    plinth_dn_store_close(h.store);
    plinth_dn_log(PLINTH_DN_LOG_INFO, NULL, NULL, "stopped");
    return rc;
}


/* A certificate or key file, whole, NUL-terminated (MHD wants PEM text). */
static char *
plinth_dn_read_pem(const char *path, char *err, size_t errlen)
{
    FILE    *fp;
    char    *buf, *shrunk;
    size_t   n;

    fp = fopen(path, "re");
    if (fp == NULL) {
        snprintf(err, errlen, "cannot open \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(1024 * 1024);
    if (buf == NULL) {
        fclose(fp);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n = fread(buf, 1, 1024 * 1024 - 1, fp);
    if (ferror(fp) || n == 0 || !feof(fp)) {
        snprintf(err, errlen, "cannot read \"%s\" (empty, unreadable or "
                 "over 1 MiB)", path);
        fclose(fp);
        free(buf);
        return NULL;
    }
    fclose(fp);
    buf[n] = '\0';
    /* keep what the file holds, not the 1 MiB read buffer */
    shrunk = realloc(buf, n + 1);
    return shrunk ? shrunk : buf;
}


static struct MHD_Daemon *
plinth_dn_start(plinth_dn_config *cf, plinth_dn_http *h)
{
    struct MHD_Daemon     *d;
    plinth_dn_usage        u;
    unsigned int           flags;
    char                   err[512];
    char                  *cert = NULL, *key = NULL;
    struct MHD_OptionItem  tls[4];

    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION
            | MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (cf->listen_addr.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }

    /* TLS on the internal hop: libmicrohttpd's HTTPS (GnuTLS in Debian's
     * build); TLS 1.2 and 1.3 only */
    memset(tls, 0, sizeof(tls));
    tls[0].option = MHD_OPTION_END;
    if (cf->tls_cert != NULL) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            plinth_dn_log(PLINTH_DN_LOG_ERROR, NULL, NULL, "tls_cert is set "
                          "but this libmicrohttpd has no TLS");
            return NULL;
        }
        cert = plinth_dn_read_pem(cf->tls_cert, err, sizeof(err));
        key = cert ? plinth_dn_read_pem(cf->tls_key, err, sizeof(err)) : NULL;
        if (key == NULL) {
            plinth_dn_log(PLINTH_DN_LOG_ERROR, NULL, NULL, "%s", err);
            free(cert);
            return NULL;
        }
        flags |= MHD_USE_TLS;
        tls[0].option = MHD_OPTION_HTTPS_MEM_CERT;
        tls[0].ptr_value = cert;
        tls[1].option = MHD_OPTION_HTTPS_MEM_KEY;
        tls[1].ptr_value = key;
        tls[2].option = MHD_OPTION_HTTPS_PRIORITIES;
        tls[2].ptr_value = (void *) "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
        tls[3].option = MHD_OPTION_END;
        h->tls_ca = cf->tls_ca;
    }

    /* the logger must come first to catch messages about the others */
    d = MHD_start_daemon(flags, 0, NULL, NULL, plinth_dn_http_access, h,
            MHD_OPTION_EXTERNAL_LOGGER, plinth_dn_http_mhd_log, h,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &cf->listen_addr,
            MHD_OPTION_CONNECTION_TIMEOUT,
                (unsigned int) PLINTH_DN_CONN_TIMEOUT,
            MHD_OPTION_CONNECTION_LIMIT, (unsigned int) PLINTH_DN_CONN_LIMIT,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) PLINTH_DN_CONN_MEMORY,
            MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int) 1,
            MHD_OPTION_NOTIFY_COMPLETED, plinth_dn_http_completed, h,
            MHD_OPTION_URI_LOG_CALLBACK, plinth_dn_http_uri, h,
            MHD_OPTION_NOTIFY_CONNECTION, plinth_dn_http_connection, h,
            MHD_OPTION_ARRAY, tls,
            MHD_OPTION_END);
    /* MHD copies nothing: the PEM texts must live as long as the daemon;
     * plinth_dn_run frees them once it has stopped */
    if (d == NULL) {
        plinth_dn_log(PLINTH_DN_LOG_ERROR, NULL, NULL,
                      "cannot listen on %s (address in use or not local?%s)",
                      cf->listen, cert ? " or a bad tls_cert/tls_key" : "");
        free(cert);
        free(key);
        return NULL;
    }

    h->tls_cert_pem = cert;
    h->tls_key_pem = key;

    if (plinth_dn_store_usage(h->store, &u) != 0) {
        memset(&u, 0, sizeof(u));
    }
    plinth_dn_log(PLINTH_DN_LOG_INFO, NULL, NULL,
                  "plinth-datanode %s listening on %s%s, data_dir \"%s\", "
                  "%llu blobs, %llu bytes", PLINTH_DN_VERSION, cf->listen,
                  cert ? " (HTTPS)" : "",
                  cf->data_dir, (unsigned long long) u.blob_count,
                  (unsigned long long) u.blob_bytes);
    return d;
}


/* Block until SIGTERM or SIGINT; SIGHUP is logged and ignored. */
static void
plinth_dn_wait_signal(const sigset_t *set)
{
    int  sig;

    for ( ;; ) {
        if (sigwait(set, &sig) != 0) {
            continue;
        }
        if (sig != SIGHUP) {
            plinth_dn_log(PLINTH_DN_LOG_INFO, NULL, NULL,
                          "%s: shutting down", strsignal(sig));
            return;
        }
        plinth_dn_log(PLINTH_DN_LOG_INFO, NULL, NULL,
                      "SIGHUP ignored: restart to change the configuration");
    }
}


/* Stop accepting, wait for requests in progress, then stop MHD. */
static void
plinth_dn_stop(struct MHD_Daemon *d, plinth_dn_http *h)
{
    struct timespec  tick = { 0, 50 * 1000 * 1000 };
    MHD_socket       fd;
    int              i, n;

    fd = MHD_quiesce_daemon(d);
    if (fd != MHD_INVALID_SOCKET) {
        close(fd);
    }

    for (i = 0; i < PLINTH_DN_DRAIN_SECONDS * 20; i++) {
        n = plinth_dn_http_inflight(h);
        if (n == 0) {
            break;
        }
        nanosleep(&tick, NULL);
    }
    if (plinth_dn_http_inflight(h) > 0) {
        plinth_dn_log(PLINTH_DN_LOG_WARN, NULL, NULL,
                      "%d request(s) still running after %d s; cutting them",
                      plinth_dn_http_inflight(h), PLINTH_DN_DRAIN_SECONDS);
    }

    MHD_stop_daemon(d);
}


static int
plinth_dn_pid_write(const char *path)
{
    char  buf[32];
    int   fd, n;

    n = snprintf(buf, sizeof(buf), "%ld\n", (long) getpid());
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, buf, (size_t) n) != n || close(fd) != 0) {
        plinth_dn_log(PLINTH_DN_LOG_ERROR, NULL, NULL,
                      "cannot write pid file \"%s\": %s", path,
                      strerror(errno));
        return -1;
    }
    return 0;
}


static void
plinth_dn_print_usage(void)
{
    fprintf(stderr,
            "usage: plinth-datanode -c <config.yaml>    run\n"
            "       plinth-datanode -t -c <config.yaml> test the config\n"
            "       plinth-datanode -v                  print the version\n");
}
