/*
 * Plinth aws-chunked: an incremental decoder for S3's chunked upload
 * bodies (Content-Encoding: aws-chunked).
 *
 * Pure code: no nginx headers, no I/O, no global state, no allocation; the
 * caller owns the decoder (about 4 KB) and feeds it the raw body in slices
 * of any size, as they arrive: a chunk header or trailer line may be split
 * at any byte. The decoder returns one event per call, in body order, so
 * the caller can verify a chunk's signature (plinth_sigv4_chain_chunk(),
 * over the SHA-256 of the DATA spans it saw) at CHUNK_END, before it
 * commits anything of that chunk, and the trailer's at its signature line.
 *
 * Formats (x-amz-content-sha256 decides the mode):
 *
 *   SIGNED            STREAMING-AWS4-HMAC-SHA256-PAYLOAD
 *                     hex-size;chunk-signature=<64 hex>\r\n <data> \r\n ...
 *                     0;chunk-signature=<64 hex>\r\n \r\n
 *   SIGNED_TRAILER    STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
 *                     the same, then trailer lines "name:value\r\n" (the
 *                     last one x-amz-trailer-signature) and "\r\n"
 *   UNSIGNED_TRAILER  STREAMING-UNSIGNED-PAYLOAD-TRAILER
 *                     hex-size\r\n <data> \r\n ... 0\r\n, trailer, \r\n
 *
 * Limits: a chunk-size line (with its CRLF) of at most
 * PLINTH_CHUNKED_MAX_LINE bytes, at most 16 hex digits; the total decoded
 * length must equal x-amz-decoded-content-length when the caller passes it
 * (checked at each chunk header, before the data comes); optionally every
 * chunk but the last must be at least min_chunk_size bytes (S3: 8192);
 * at most max_trailers trailer lines of at most
 * PLINTH_CHUNKED_MAX_TRAILER_LINE bytes. Lines end in CRLF, never bare LF.
 *
 * Error codes and the S3 errors they map to (plinth_chunked_s3_error()):
 *
 *   ERR_SIZE, ERR_LINE, ERR_EXTENSION, ERR_SMALL_CHUNK
 *                                     InvalidChunkSizeError (400)
 *   ERR_SIGNATURE                     SignatureDoesNotMatch (403)
 *   ERR_CRLF, ERR_LENGTH, ERR_EXTRA, ERR_TRUNCATED
 *                                     IncompleteBody (400)
 *   ERR_TRAILER                       MalformedTrailerError (400)
 *
 * Errors are sticky: once one is returned, every later call returns it.
 */

#ifndef PLINTH_CHUNKED_H
#define PLINTH_CHUNKED_H

#include <stddef.h>
#include <stdint.h>


#define PLINTH_CHUNKED_MAX_LINE          4096
#define PLINTH_CHUNKED_MAX_TRAILER_LINE  1024
#define PLINTH_CHUNKED_MAX_TRAILERS      16     /* default max_trailers */
#define PLINTH_CHUNKED_S3_MIN_CHUNK      8192


typedef enum {
    PLINTH_CHUNKED_SIGNED = 0,
    PLINTH_CHUNKED_SIGNED_TRAILER,
    PLINTH_CHUNKED_UNSIGNED_TRAILER
} plinth_chunked_mode_t;

typedef enum {
    PLINTH_CHUNKED_OK = 0,        /* *ev holds an event */
    PLINTH_CHUNKED_AGAIN,         /* the slice is used up: feed the next */
    PLINTH_CHUNKED_ERR_SIZE,      /* chunk size not 1-16 hex digits */
    PLINTH_CHUNKED_ERR_LINE,      /* chunk-size line too long */
    PLINTH_CHUNKED_ERR_EXTENSION, /* a chunk extension where none belongs */
    PLINTH_CHUNKED_ERR_SIGNATURE, /* chunk-signature missing or malformed */
    PLINTH_CHUNKED_ERR_SMALL_CHUNK,
    PLINTH_CHUNKED_ERR_CRLF,      /* data not followed by CRLF, bare LF */
    PLINTH_CHUNKED_ERR_LENGTH,    /* decoded length != the declared one */
    PLINTH_CHUNKED_ERR_TRAILER,   /* bad, too long, too many, not allowed */
    PLINTH_CHUNKED_ERR_EXTRA,     /* bytes after the end of the body */
    PLINTH_CHUNKED_ERR_TRUNCATED  /* the body ended before its end */
} plinth_chunked_rc_t;

typedef enum {
    PLINTH_CHUNKED_EV_CHUNK = 1,  /* a data chunk starts: size, signature */
    PLINTH_CHUNKED_EV_DATA,       /* data, len: payload, inside the slice */
    PLINTH_CHUNKED_EV_CHUNK_END,  /* its data is complete, CRLF seen */
    PLINTH_CHUNKED_EV_LAST,       /* the zero-size chunk: signature */
    PLINTH_CHUNKED_EV_TRAILER,    /* name, value (trimmed) */
    PLINTH_CHUNKED_EV_DONE        /* the body is complete */
} plinth_chunked_ev_type_t;

/*
 * DATA points into the caller's slice; the signature, name and value point
 * into the decoder and stay valid until the next call.
 */
typedef struct {
    plinth_chunked_ev_type_t   type;
    const unsigned char       *data;      /* DATA: payload; TRAILER: value */
    size_t                     len;
    const unsigned char       *name;      /* TRAILER */
    size_t                     name_len;
    uint64_t                   size;      /* CHUNK: declared size */
    const unsigned char       *signature; /* CHUNK, LAST: 64 hex digits;
                                             NULL when unsigned */
} plinth_chunked_event_t;

typedef struct {
    /* configuration: set by plinth_chunked_init(), adjustable after it */
    plinth_chunked_mode_t      mode;
    int64_t                    decoded_length;  /* < 0: not declared */
    uint64_t                   min_chunk_size;  /* 0: any size */
    unsigned                   max_trailers;

    /* state */
    unsigned                   state;
    plinth_chunked_rc_t        error;
    uint64_t                   remaining;       /* of the current chunk */
    uint64_t                   total;           /* decoded so far */
    uint64_t                   last_size;       /* previous data chunk */
    unsigned                   ntrailers;
    size_t                     line_len;
    unsigned char              signature[64];
    unsigned char              line[PLINTH_CHUNKED_MAX_LINE];
} plinth_chunked_t;


/*
 * Prepares d for one body. decoded_length is x-amz-decoded-content-length,
 * or -1 when the request has none. min_chunk_size starts at 0 (set it to
 * PLINTH_CHUNKED_S3_MIN_CHUNK for S3's rule), max_trailers at
 * PLINTH_CHUNKED_MAX_TRAILERS.
 */
void plinth_chunked_init(plinth_chunked_t *d, plinth_chunked_mode_t mode,
    int64_t decoded_length);

/*
 * Decodes from *pos up to end, advancing *pos past what it used, and
 * returns OK with the next event in *ev, AGAIN when *pos reached end
 * without completing one, or an error. Call it until it returns AGAIN,
 * then feed the next slice; after DONE, any further byte is ERR_EXTRA.
 */
plinth_chunked_rc_t plinth_chunked_next(plinth_chunked_t *d,
    const unsigned char **pos, const unsigned char *end,
    plinth_chunked_event_t *ev);

/* At the end of the request body: OK if DONE was reached, else an error. */
plinth_chunked_rc_t plinth_chunked_finish(const plinth_chunked_t *d);

/* The S3 error code for rc (NULL for OK/AGAIN), and a message. */
const char *plinth_chunked_s3_error(plinth_chunked_rc_t rc);
const char *plinth_chunked_strerror(plinth_chunked_rc_t rc);

#endif /* PLINTH_CHUNKED_H */
