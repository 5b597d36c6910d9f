/*
 * log.c -- JSON-lines logger of the data node (see log.h).
 *
 * Safe from any thread: each line is formatted in a stack buffer and
 * written with a single write(2) to stderr. Values are JSON-escaped;
 * bytes outside printable ASCII become \u00XX so a hostile request id
 * can neither break the line nor the JSON. Never give it request or
 * response bodies.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

int       plinth_dn_log_level = PLINTH_DN_LOG_INFO;
uint32_t  plinth_dn_log_node;

static const char  *plinth_dn_log_names[] = {
    "debug", "info", "warn", "error"
};

static size_t plinth_dn_log_field(char *p, size_t size, const char *name,
    const char *value);


/* Format and write one line. Use the plinth_dn_log() macro instead. */
void
plinth_dn_log_write(int level, const char *rid, const char *blob,
    const char *fmt, ...)
{
    char             line[PLINTH_DN_LOG_MAX + 512], msg[PLINTH_DN_LOG_MAX];
    struct timespec  ts;
    struct tm        tm;
    va_list          ap;
    size_t           n, size = sizeof(line) - 2;
    int              saved = errno;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, size, "{\"ts\":\"%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t) snprintf(line + n, size - n,
                           ".%03ldZ\",\"level\":\"%s\",\"node\":%u",
                           ts.tv_nsec / 1000000,
                           plinth_dn_log_names[level & 3],
                           plinth_dn_log_node);

    n += plinth_dn_log_field(line + n, size - n, "msg", msg);
    n += plinth_dn_log_field(line + n, size - n, "request_id", rid);
    n += plinth_dn_log_field(line + n, size - n, "blob", blob);
    line[n++] = '}';
    line[n++] = '\n';

    if (write(STDERR_FILENO, line, n) < 0) {
        /* nowhere left to report it */
    }
    errno = saved;
}


/* "debug" .. "error" to a level, or -1. */
int
plinth_dn_log_level_parse(const char *name)
{
    int  i;

    for (i = 0; i < 4; i++) {
        if (strcmp(name, plinth_dn_log_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}


/*
 * Copy src into dst (size bytes, always NUL-terminated) as the inside of
 * a JSON string. Returns the length written; output is cut at whole
 * escapes when dst is too small.
 */
size_t
plinth_dn_json_escape(char *dst, size_t size, const char *src)
{
    const unsigned char  *s = (const unsigned char *) src;
    char                  esc[8];
    size_t                n = 0, k;

    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\') {
            esc[0] = '\\';
            esc[1] = (char) *s;
            esc[2] = '\0';
        } else if (*s < 0x20 || *s >= 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", *s);
        } else {
            esc[0] = (char) *s;
            esc[1] = '\0';
        }
        k = strlen(esc);
        if (n + k + 1 > size) {
            break;
        }
        memcpy(dst + n, esc, k);
        n += k;
    }
    if (size > 0) {
        dst[n] = '\0';
    }
    return n;
}


/* Append ,"name":"value" when value is not NULL; returns bytes added. */
static size_t
plinth_dn_log_field(char *p, size_t size, const char *name,
    const char *value)
{
    size_t  n;

    if (value == NULL || size < strlen(name) + 8) {
        return 0;
    }
    n = (size_t) snprintf(p, size, ",\"%s\":\"", name);
    n += plinth_dn_json_escape(p + n, size - n - 1, value);
    p[n++] = '"';
    return n;
}
