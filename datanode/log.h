/*
 * log.h -- structured logging for the data node: one JSON object a line.
 *
 *     {"ts":"2026-11-27T10:00:00.123Z","level":"info","node":1,
 *      "msg":"...","request_id":"...","blob":"..."}
 *
 * request_id and blob are left out when NULL. Lines go to stderr with one
 * write(2) each, so lines from different threads do not interleave; a
 * message longer than PLINTH_DN_LOG_MAX is cut. plinth_dn_log() tests the
 * level before any formatting is done, so debug lines cost a compare.
 */

#ifndef PLINTH_DN_LOG_H
#define PLINTH_DN_LOG_H

#include <stdint.h>

#define PLINTH_DN_LOG_DEBUG  0
#define PLINTH_DN_LOG_INFO   1
#define PLINTH_DN_LOG_WARN   2
#define PLINTH_DN_LOG_ERROR  3

#define PLINTH_DN_LOG_MAX    2048

extern int       plinth_dn_log_level;
extern uint32_t  plinth_dn_log_node;

#define plinth_dn_log(level, rid, blob, ...)                                \
    do {                                                                    \
        if ((level) >= plinth_dn_log_level) {                               \
            plinth_dn_log_write((level), (rid), (blob), __VA_ARGS__);       \
        }                                                                   \
    } while (0)

void plinth_dn_log_write(int level, const char *rid, const char *blob,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int plinth_dn_log_level_parse(const char *name);
size_t plinth_dn_json_escape(char *dst, size_t size, const char *src);

#endif /* PLINTH_DN_LOG_H */
