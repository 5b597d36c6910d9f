/*
 * The small S3 control documents, parsed without nginx: DeleteObjects'
 * <Delete>, CompleteMultipartUpload's part list and PutBucketVersioning's
 * <VersioningConfiguration>. The gateway (ngx_plinth_s3_delete.c,
 * ngx_plinth_s3_multipart.c, ngx_plinth_s3_bucket.c) wraps them with its
 * pool and turns an error code into its S3 answer; fuzz/xml.c links them
 * as they are, so the fuzzer runs the code the gateway runs.
 */

#ifndef PLINTH_S3_PARSE_H
#define PLINTH_S3_PARSE_H

#include <stddef.h>

#include "ngx_plinth_parse.h"

#define PLINTH_DELETE_MAX_KEYS  1000
#define PLINTH_MPU_MAX_PARTS    10000

/* the flexible checksums as S3 names them in XML elements and
 * x-amz-checksum-algorithm, indexed by NGX_PLINTH_CKS_* (ngx_plinth.h) */
extern const char  *const plinth_cks_algorithms[];

/*
 * Every call reads len bytes at xml with libxml2 and options (the
 * gateway's NGX_PLINTH_XML_PARSE_OPTIONS; a document with a DTD is refused
 * as malformed, and *dtd, when dtd is not NULL, says so). On an error,
 * *message is S3's message for it, or NULL for the code's default; the
 * outputs are then not to be used. The array literals are NUL-terminated,
 * in memory from alloc(ctx, size).
 */

/*
 * <Delete>[<Quiet>true</Quiet>]<Object><Key>k</Key>[<VersionId>v
 * </VersionId>]</Object>...</Delete>, 1 to 1,000 Objects: the keys and
 * their version ids as two text[] literals in the client's order (NULL
 * where an Object names no VersionId).
 */
typedef struct {
    char      *keys;
    char      *vids;
    unsigned   quiet;
} plinth_delete_doc_t;

plinth_parse_err_e plinth_delete_parse(const unsigned char *xml, size_t len,
    int options, plinth_parse_alloc_pt alloc, void *ctx,
    plinth_delete_doc_t *d, int *dtd);

/*
 * <CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"..."
 * </ETag>[<ChecksumCRC32>...</ChecksumCRC32>]</Part>...
 * </CompleteMultipartUpload>, 1 to 10,000 Parts in the client's order, as
 * an integer[] and two text[] literals (NULL where a part names no
 * checksum): the database checks order, existence, ETags, sizes and
 * checksums. Other elements of a Part are ignored.
 */
typedef struct {
    char      *parts;
    char      *etags;
    char      *cks;
} plinth_complete_doc_t;

plinth_parse_err_e plinth_complete_parse(const unsigned char *xml,
    size_t len, int options, plinth_parse_alloc_pt alloc, void *ctx,
    plinth_complete_doc_t *c, const char **message, int *dtd);

/*
 * <VersioningConfiguration><Status>Enabled|Suspended</Status>
 * [<MfaDelete>Disabled</MfaDelete>]</VersioningConfiguration>: *status is
 * "Enabled" or "Suspended". MFA delete is not supported (NotImplemented).
 */
plinth_parse_err_e plinth_versioning_parse(const unsigned char *xml,
    size_t len, int options, const char **status, const char **message,
    int *dtd);

#endif /* PLINTH_S3_PARSE_H */
