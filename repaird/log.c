/*
 * log.c -- repaird's log: one JSON object a line on stderr,
 *
 *     {"ts":"2026-11-27T10:00:00.123Z","level":"info",
 *      "component":"repaird","instance":"...","msg":"..."}
 *
 * written with one write(2) (the metrics thread may log too).
 */

#define _GNU_SOURCE

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "repaird.h"

int          rd_log_level = RD_LOG_INFO;
const char  *rd_log_instance = "";

static const char  *rd_log_names[] = { "debug", "info", "warn", "error" };


static size_t
rd_json_escape(char *dst, size_t size, const char *src)
{
    size_t         n = 0;
    unsigned char  ch;

    for (; *src != '\0' && n + 7 < size; src++) {
        ch = (unsigned char) *src;
        if (ch == '"' || ch == '\\') {
            dst[n++] = '\\';
            dst[n++] = (char) ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            n += (size_t) snprintf(dst + n, size - n, "\\u%04x", ch);
        } else {
            dst[n++] = (char) ch;
        }
    }
    dst[n] = '\0';
    return n;
}


void
rd_log_write(int level, const char *fmt, ...)
{
    char             line[4096], msg[2048], esc[2048];
    struct timespec  ts;
    struct tm        tm;
    va_list          ap;
    size_t           n;
    int              saved = errno;
    ssize_t          w;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "{\"ts\":\"%Y-%m-%dT%H:%M:%S", &tm);
    rd_json_escape(esc, sizeof(esc), msg);
    n += (size_t) snprintf(line + n, sizeof(line) - n,
            ".%03ldZ\",\"level\":\"%s\",\"component\":\"repaird\","
            "\"instance\":\"%s\",\"msg\":\"%s\"}\n",
            ts.tv_nsec / 1000000, rd_log_names[level & 3], rd_log_instance,
            esc);
    if (n >= sizeof(line)) {
        n = sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    w = write(STDERR_FILENO, line, n);
    (void) w;
    errno = saved;
}


int
rd_log_level_parse(const char *name)
{
    int  i;

    for (i = 0; i < 4; i++) {
        if (strcmp(name, rd_log_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}
