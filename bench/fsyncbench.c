/*
 * plinth-fsyncbench: the disk's durable small-write ceiling, done the way
 * a data node stores a blob: T threads, each in a loop writes SIZE bytes
 * to a new temp file, fsyncs it, renames it into a final directory and
 * fsyncs that directory. Prints one JSON line: ops, ops/s, p50/p99 ms,
 * and the CPU it used (user and system, its own threads) per operation:
 * what one durable small file costs this machine's cores.
 *
 *   plinth-fsyncbench --dir DIR [--threads 8] [--size 4096]
 *                     [--duration 10] [--ops N] [--keep 1]
 *
 * Files are made under DIR/fsyncbench.<pid>/ and removed at the end,
 * unless --keep 1: then the caller removes that directory when deleting
 * tens of thousands of files no longer disturbs what it measures next
 * (on ext4 without a journal, every file created for minutes afterwards
 * in the same block group skips the recently freed inodes one by one).
 * Bounded by --duration seconds and --ops operations.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_LAT     (1 << 20)
#define DIRS        16

static const char *base;
static char root[1024];
static int nthreads = 8;
static size_t size = 4096;
static double duration = 10;
static uint64_t max_ops = UINT64_MAX;
static double stop_at;
static int keep;

struct worker {
    pthread_t th;
    int id;
    uint64_t ops, errs;
    double *lat;
    uint64_t nlat;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return NULL;
    memset(buf, 'x' + w->id, size);
    uint64_t per = max_ops / nthreads + 1;
    for (uint64_t i = 0; i < per && now() < stop_at; i++) {
        double t0 = now();
        char tmp[1200], fin[1200], dir[1100];
        snprintf(dir, sizeof dir, "%s/d%02d", root, (int)(i % DIRS));
        snprintf(tmp, sizeof tmp, "%s/tmp/t%d.%" PRIu64, root, w->id, i);
        snprintf(fin, sizeof fin, "%s/f%d.%" PRIu64, dir, w->id, i);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
        int ok = fd >= 0;
        if (ok && write(fd, buf, size) != (ssize_t)size)
            ok = 0;
        if (ok && fsync(fd) != 0)
            ok = 0;
        if (fd >= 0)
            close(fd);
        if (ok && rename(tmp, fin) != 0)
            ok = 0;
        if (ok) {
            int dfd = open(dir, O_RDONLY | O_DIRECTORY);
            if (dfd < 0 || fsync(dfd) != 0)
                ok = 0;
            if (dfd >= 0)
                close(dfd);
        }
        if (!ok) {
            w->errs++;
            unlink(tmp);
            continue;
        }
        w->ops++;
        if (w->nlat < MAX_LAT)
            w->lat[w->nlat++] = (now() - t0) * 1000;
    }
    free(buf);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void rm_dir(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] == 'f' || e->d_name[0] == 't')
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    rmdir(path);
}

/* only the names this program made: d00..d15/f*, tmp/t* */
static void rm_tree(void)
{
    char p[4200];
    for (int d = 0; d < DIRS; d++) {
        snprintf(p, sizeof p, "%s/d%02d", root, d);
        rm_dir(p);
    }
    snprintf(p, sizeof p, "%s/tmp", root);
    rm_dir(p);
    rmdir(root);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "usage: plinth-fsyncbench --dir DIR [--threads 8] "
                    "[--size 4096] [--duration 10] [--ops N] [--keep 1]\n");
            return 2;
        }
        if (!strcmp(a, "--dir")) base = v;
        else if (!strcmp(a, "--threads")) nthreads = atoi(v);
        else if (!strcmp(a, "--size")) size = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--duration")) duration = atof(v);
        else if (!strcmp(a, "--ops")) max_ops = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--keep")) keep = atoi(v);
        else {
            fprintf(stderr, "plinth-fsyncbench: unknown option %s\n", a);
            return 2;
        }
    }
    if (!base || nthreads < 1 || nthreads > MAX_THREADS || size > (64 << 20)
        || !(duration > 0 && duration <= 600) || max_ops < 1) {
        fprintf(stderr, "plinth-fsyncbench: bad arguments\n");
        return 2;
    }
    if (strlen(base) > 900) { fprintf(stderr, "plinth-fsyncbench: --dir too long\n"); return 2; }
    snprintf(root, sizeof root, "%s/fsyncbench.%d", base, (int)getpid());
    char p[4200];
    if (mkdir(root, 0755) != 0) {
        perror(root);
        return 1;
    }
    for (int d = 0; d < DIRS; d++) {
        snprintf(p, sizeof p, "%s/d%02d", root, d);
        mkdir(p, 0755);
    }
    snprintf(p, sizeof p, "%s/tmp", root);
    mkdir(p, 0755);

    struct worker w[MAX_THREADS];
    memset(w, 0, sizeof w);
    double t0 = now();
    stop_at = t0 + duration;
    for (int i = 0; i < nthreads; i++) {
        w[i].id = i;
        w[i].lat = malloc(sizeof(double) * MAX_LAT);
        if (!w[i].lat) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        pthread_create(&w[i].th, NULL, run, &w[i]);
    }
    uint64_t ops = 0, errs = 0, nlat = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(w[i].th, NULL);
        ops += w[i].ops;
        errs += w[i].errs;
        nlat += w[i].nlat;
    }
    double el = now() - t0;
    struct rusage ru;
    double cpu = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
              + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    double *all = malloc(sizeof(double) * (nlat ? nlat : 1));
    uint64_t k = 0;
    for (int i = 0; i < nthreads; i++) {
        memcpy(all + k, w[i].lat, w[i].nlat * sizeof(double));
        k += w[i].nlat;
        free(w[i].lat);
    }
    qsort(all, nlat, sizeof(double), cmp);
    double p50 = nlat ? all[(uint64_t)(0.50 * (nlat - 1) + 0.5)] : 0;
    double p99 = nlat ? all[(uint64_t)(0.99 * (nlat - 1) + 0.5)] : 0;
    printf("{\"threads\":%d,\"size\":%zu,\"ops\":%" PRIu64 ",\"errors\":%" PRIu64
           ",\"seconds\":%.3f,\"ops_per_s\":%.1f,\"lat_ms\":{\"p50\":%.3f,"
           "\"p99\":%.3f},\"cpu_s\":%.3f,\"cpu_ms_per_op\":%.4f}\n",
           nthreads, size, ops, errs, el, el > 0 ? ops / el : 0, p50, p99,
           cpu, ops ? cpu * 1e3 / ops : 0);
    free(all);
    if (!keep)
        rm_tree();
    return errs ? 1 : 0;
}
