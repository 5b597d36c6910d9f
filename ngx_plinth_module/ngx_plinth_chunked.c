/*
 * Plinth aws-chunked decoder: see ngx_plinth_chunked.h for the contract.
 *
 * Header and trailer lines are gathered into d->line (bounded, so a slice
 * boundary anywhere in a line costs nothing but a copy of at most 4 KB);
 * chunk data is never copied: DATA events point into the caller's slice.
 */

#include <string.h>

#include "ngx_plinth_chunked.h"


#define PLINTH_CHUNKED_SIG_EXT  ";chunk-signature="

enum {
    PLINTH_CHUNKED_ST_SIZE = 0,     /* gathering a chunk-size line */
    PLINTH_CHUNKED_ST_DATA,         /* inside a chunk's data */
    PLINTH_CHUNKED_ST_DATA_CR,      /* after the data: '\r' */
    PLINTH_CHUNKED_ST_DATA_LF,      /* after the data: '\n' */
    PLINTH_CHUNKED_ST_TRAILER,      /* gathering a trailer line */
    PLINTH_CHUNKED_ST_DONE
};


static int plinth_chunked_line(plinth_chunked_t *d,
    const unsigned char **pos, const unsigned char *end, size_t max);
static plinth_chunked_rc_t plinth_chunked_size_line(plinth_chunked_t *d,
    plinth_chunked_event_t *ev);
static plinth_chunked_rc_t plinth_chunked_trailer_line(plinth_chunked_t *d,
    plinth_chunked_event_t *ev);
static int plinth_chunked_tchar(unsigned c);
static plinth_chunked_rc_t plinth_chunked_fail(plinth_chunked_t *d,
    plinth_chunked_rc_t rc);


void
plinth_chunked_init(plinth_chunked_t *d, plinth_chunked_mode_t mode,
    int64_t decoded_length)
{
    memset(d, 0, offsetof(plinth_chunked_t, line));

    d->mode = mode;
    d->decoded_length = decoded_length;
    d->min_chunk_size = 0;
    d->max_trailers = PLINTH_CHUNKED_MAX_TRAILERS;
    d->state = PLINTH_CHUNKED_ST_SIZE;
    d->error = PLINTH_CHUNKED_OK;
}


static plinth_chunked_rc_t
plinth_chunked_fail(plinth_chunked_t *d, plinth_chunked_rc_t rc)
{
    d->error = rc;

    return rc;
}


/*
 * Gathers a line into d->line. A line is at most max bytes with its CRLF;
 * d->line keeps it without the '\n'. Returns 1 when the line is complete,
 * 0 when the slice ran out first, -1 when it is too long.
 */

static int
plinth_chunked_line(plinth_chunked_t *d, const unsigned char **pos,
    const unsigned char *end, size_t max)
{
    size_t                avail, room, n;
    const unsigned char  *p, *nl;

    p = *pos;
    avail = end - p;
    room = max - 1 - d->line_len;          /* bytes that may still be kept */
    n = avail < room + 1 ? avail : room + 1;

    nl = n ? memchr(p, '\n', n) : NULL;

    if (nl != NULL) {
        n = nl - p;
        memcpy(d->line + d->line_len, p, n);
        d->line_len += n;
        *pos = nl + 1;
        return 1;
    }

    if (avail > room) {
        return -1;
    }

    memcpy(d->line + d->line_len, p, avail);
    d->line_len += avail;
    *pos = end;

    return 0;
}


static plinth_chunked_rc_t
plinth_chunked_size_line(plinth_chunked_t *d, plinth_chunked_event_t *ev)
{
    int                   v;
    size_t                i, n, len, elen;
    unsigned              c;
    uint64_t              size;
    const unsigned char  *p;

    p = d->line;
    len = d->line_len;

    if (len == 0 || p[len - 1] != '\r') {
        return PLINTH_CHUNKED_ERR_CRLF;
    }

    len--;
    size = 0;

    for (n = 0; n < len; n++) {
        c = p[n];

        if (c >= '0' && c <= '9') {
            v = c - '0';

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            v = (c | 0x20) - 'a' + 10;

        } else {
            break;
        }

        if (n == 16) {
            return PLINTH_CHUNKED_ERR_SIZE;
        }

        size = size << 4 | (uint64_t) v;
    }

    if (n == 0) {
        return PLINTH_CHUNKED_ERR_SIZE;
    }

    if (d->mode == PLINTH_CHUNKED_UNSIGNED_TRAILER) {
        if (n != len) {
            return p[n] == ';' ? PLINTH_CHUNKED_ERR_EXTENSION
                               : PLINTH_CHUNKED_ERR_SIZE;
        }

        ev->signature = NULL;

    } else {
        if (n == len) {
            return PLINTH_CHUNKED_ERR_SIGNATURE;
        }

        if (p[n] != ';') {
            return PLINTH_CHUNKED_ERR_SIZE;
        }

        elen = sizeof(PLINTH_CHUNKED_SIG_EXT) - 1;

        if (len - n != elen + 64
            || memcmp(p + n, PLINTH_CHUNKED_SIG_EXT, elen) != 0)
        {
            return PLINTH_CHUNKED_ERR_SIGNATURE;
        }

        for (i = n + elen; i < len; i++) {
            c = p[i];

            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
                return PLINTH_CHUNKED_ERR_SIGNATURE;
            }
        }

        memcpy(d->signature, p + n + elen, 64);
        ev->signature = d->signature;
    }

    if (size == 0) {
        if (d->decoded_length >= 0
            && d->total != (uint64_t) d->decoded_length)
        {
            return PLINTH_CHUNKED_ERR_LENGTH;
        }

        ev->type = PLINTH_CHUNKED_EV_LAST;
        ev->size = 0;
        d->state = PLINTH_CHUNKED_ST_TRAILER;
        d->line_len = 0;

        return PLINTH_CHUNKED_OK;
    }

    if (d->last_size != 0 && d->last_size < d->min_chunk_size) {
        return PLINTH_CHUNKED_ERR_SMALL_CHUNK;
    }

    if (d->decoded_length >= 0) {
        if (size > (uint64_t) d->decoded_length - d->total) {
            return PLINTH_CHUNKED_ERR_LENGTH;
        }

    } else if (size > UINT64_MAX - d->total) {
        return PLINTH_CHUNKED_ERR_SIZE;
    }

    ev->type = PLINTH_CHUNKED_EV_CHUNK;
    ev->size = size;
    d->remaining = size;
    d->last_size = size;
    d->state = PLINTH_CHUNKED_ST_DATA;

    return PLINTH_CHUNKED_OK;
}


static int
plinth_chunked_tchar(unsigned c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9'))
    {
        return 1;
    }

    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'':
    case '*': case '+': case '-': case '.': case '^': case '_':
    case '`': case '|': case '~':
        return 1;
    }

    return 0;
}


static plinth_chunked_rc_t
plinth_chunked_trailer_line(plinth_chunked_t *d, plinth_chunked_event_t *ev)
{
    size_t                n, len;
    unsigned              c;
    const unsigned char  *p, *v, *end;

    p = d->line;
    len = d->line_len;

    if (len == 0 || p[len - 1] != '\r') {
        return PLINTH_CHUNKED_ERR_TRAILER;
    }

    len--;

    if (len == 0) {
        ev->type = PLINTH_CHUNKED_EV_DONE;
        d->state = PLINTH_CHUNKED_ST_DONE;
        return PLINTH_CHUNKED_OK;
    }

    if (d->mode == PLINTH_CHUNKED_SIGNED || d->ntrailers >= d->max_trailers)
    {
        return PLINTH_CHUNKED_ERR_TRAILER;
    }

    for (n = 0; n < len && plinth_chunked_tchar(p[n]); n++) { /* void */ }

    if (n == 0 || n == len || p[n] != ':') {
        return PLINTH_CHUNKED_ERR_TRAILER;
    }

    v = p + n + 1;
    end = p + len;

    for ( /* void */ ; v < end; v++) {
        if (*v != ' ' && *v != '\t') {
            break;
        }
    }

    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }

    for (ev->data = v; v < end; v++) {
        c = *v;

        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return PLINTH_CHUNKED_ERR_TRAILER;
        }
    }

    ev->type = PLINTH_CHUNKED_EV_TRAILER;
    ev->name = p;
    ev->name_len = n;
    ev->len = end - ev->data;
    d->ntrailers++;
    d->line_len = 0;

    return PLINTH_CHUNKED_OK;
}


plinth_chunked_rc_t
plinth_chunked_next(plinth_chunked_t *d, const unsigned char **pos,
    const unsigned char *end, plinth_chunked_event_t *ev)
{
    int                   r;
    size_t                n;
    plinth_chunked_rc_t   rc;
    const unsigned char  *p;

    if (d->error != PLINTH_CHUNKED_OK) {
        return d->error;
    }

    memset(ev, 0, sizeof(plinth_chunked_event_t));

    for ( ;; ) {
        p = *pos;

        switch (d->state) {

        case PLINTH_CHUNKED_ST_SIZE:
            if (p == end) {
                return PLINTH_CHUNKED_AGAIN;
            }

            r = plinth_chunked_line(d, pos, end, PLINTH_CHUNKED_MAX_LINE);

            if (r == 0) {
                return PLINTH_CHUNKED_AGAIN;
            }

            if (r < 0) {
                return plinth_chunked_fail(d, PLINTH_CHUNKED_ERR_LINE);
            }

            rc = plinth_chunked_size_line(d, ev);
            d->line_len = 0;

            if (rc != PLINTH_CHUNKED_OK) {
                return plinth_chunked_fail(d, rc);
            }

            return PLINTH_CHUNKED_OK;

        case PLINTH_CHUNKED_ST_DATA:
            if (d->remaining == 0) {
                d->state = PLINTH_CHUNKED_ST_DATA_CR;
                break;
            }

            if (p == end) {
                return PLINTH_CHUNKED_AGAIN;
            }

            n = end - p;

            if ((uint64_t) n > d->remaining) {
                n = (size_t) d->remaining;
            }

            d->remaining -= n;
            d->total += n;
            *pos = p + n;

            ev->type = PLINTH_CHUNKED_EV_DATA;
            ev->data = p;
            ev->len = n;

            return PLINTH_CHUNKED_OK;

        case PLINTH_CHUNKED_ST_DATA_CR:
            if (p == end) {
                return PLINTH_CHUNKED_AGAIN;
            }

            if (*p != '\r') {
                return plinth_chunked_fail(d, PLINTH_CHUNKED_ERR_CRLF);
            }

            *pos = p + 1;
            d->state = PLINTH_CHUNKED_ST_DATA_LF;
            break;

        case PLINTH_CHUNKED_ST_DATA_LF:
            if (p == end) {
                return PLINTH_CHUNKED_AGAIN;
            }

            if (*p != '\n') {
                return plinth_chunked_fail(d, PLINTH_CHUNKED_ERR_CRLF);
            }

            *pos = p + 1;
            d->state = PLINTH_CHUNKED_ST_SIZE;
            d->line_len = 0;
            ev->type = PLINTH_CHUNKED_EV_CHUNK_END;

            return PLINTH_CHUNKED_OK;

        case PLINTH_CHUNKED_ST_TRAILER:
            if (p == end) {
                return PLINTH_CHUNKED_AGAIN;
            }

            r = plinth_chunked_line(d, pos, end,
                                    PLINTH_CHUNKED_MAX_TRAILER_LINE);

            if (r == 0) {
                return PLINTH_CHUNKED_AGAIN;
            }

            if (r < 0) {
                return plinth_chunked_fail(d, PLINTH_CHUNKED_ERR_TRAILER);
            }

            rc = plinth_chunked_trailer_line(d, ev);

            if (rc != PLINTH_CHUNKED_OK) {
                return plinth_chunked_fail(d, rc);
            }

            return PLINTH_CHUNKED_OK;

        default: /* PLINTH_CHUNKED_ST_DONE */
            if (p == end) {
                return PLINTH_CHUNKED_AGAIN;
            }

            return plinth_chunked_fail(d, PLINTH_CHUNKED_ERR_EXTRA);
        }
    }
}


plinth_chunked_rc_t
plinth_chunked_finish(const plinth_chunked_t *d)
{
    if (d->error != PLINTH_CHUNKED_OK) {
        return d->error;
    }

    return d->state == PLINTH_CHUNKED_ST_DONE ? PLINTH_CHUNKED_OK
                                              : PLINTH_CHUNKED_ERR_TRUNCATED;
}


const char *
plinth_chunked_s3_error(plinth_chunked_rc_t rc)
{
    switch (rc) {

    case PLINTH_CHUNKED_OK:
    case PLINTH_CHUNKED_AGAIN:
        return NULL;

    case PLINTH_CHUNKED_ERR_SIZE:
    case PLINTH_CHUNKED_ERR_LINE:
    case PLINTH_CHUNKED_ERR_EXTENSION:
    case PLINTH_CHUNKED_ERR_SMALL_CHUNK:
        return "InvalidChunkSizeError";

    case PLINTH_CHUNKED_ERR_SIGNATURE:
        return "SignatureDoesNotMatch";

    case PLINTH_CHUNKED_ERR_TRAILER:
        return "MalformedTrailerError";

    default:
        return "IncompleteBody";
    }
}


const char *
plinth_chunked_strerror(plinth_chunked_rc_t rc)
{
    switch (rc) {

    case PLINTH_CHUNKED_OK:
        return "ok";

    case PLINTH_CHUNKED_AGAIN:
        return "more input needed";

    case PLINTH_CHUNKED_ERR_SIZE:
        return "chunk size is not 1 to 16 hex digits";

    case PLINTH_CHUNKED_ERR_LINE:
        return "chunk size line too long";

    case PLINTH_CHUNKED_ERR_EXTENSION:
        return "unexpected chunk extension";

    case PLINTH_CHUNKED_ERR_SIGNATURE:
        return "chunk-signature missing or malformed";

    case PLINTH_CHUNKED_ERR_SMALL_CHUNK:
        return "Only the last chunk is allowed to have a size less than "
               "8192 bytes";

    case PLINTH_CHUNKED_ERR_CRLF:
        return "chunk data not followed by CRLF";

    case PLINTH_CHUNKED_ERR_LENGTH:
        return "decoded length differs from x-amz-decoded-content-length";

    case PLINTH_CHUNKED_ERR_TRAILER:
        return "The request contained trailing data that was not "
               "well-formed";

    case PLINTH_CHUNKED_ERR_EXTRA:
        return "data after the end of the chunked body";

    case PLINTH_CHUNKED_ERR_TRUNCATED:
        return "the chunked body ended early";
    }

    return "unknown error";
}
