/*
 * Fuzz target: the data node's request parsing (datanode/http.c): the
 * route and blob id of a URL (plinth_dn_route_parse(), with
 * plinth_dn_id_valid()), the Range header (plinth_dn_range_parse()) and
 * the pull source address (plinth_dn_addr_valid()).
 *
 * Those functions are static, so this file includes datanode/http.c
 * itself (the real code, compiled into this target; the rest of the data
 * node is linked as usual). libmicrohttpd's own request-line and header
 * parsing, which runs before them, is not covered here.
 *
 * Input: 8 bytes of blob size, then '\n'-separated: the URL (as MHD hands
 * it over, a C string), the Range value, the pull address.
 * Checked: an id is kept only when valid; a satisfiable range lies inside
 * the blob and is not empty.
 */

#include "../datanode/http.c"

#include "fuzz.h"


static char *
cstr(fuzz_in_t *in)
{
    size_t          n;
    char           *s;
    const uint8_t  *piece;

    n = fuzz_piece(in, '\n', &piece);
    s = malloc(n + 1);
    FUZZ_ASSERT(s != NULL);
    memcpy(s, piece, n);
    s[n] = '\0';

    return s;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int             rc;
    char           *url, *range, *addr;
    uint64_t        blob_size, start, len;
    fuzz_in_t       in = { data, size };
    plinth_dn_req   r;

    blob_size = fuzz_u64(&in, 8);
    url = cstr(&in);
    range = cstr(&in);
    addr = cstr(&in);

    memset(&r, 0, sizeof(r));
    plinth_dn_route_parse(&r, url);

    if (r.id_ok) {
        FUZZ_ASSERT(r.route != PLINTH_DN_ROUTE_NONE);
        FUZZ_ASSERT(strlen(r.id) == PLINTH_DN_ID_LEN);
        FUZZ_ASSERT(plinth_dn_id_valid(r.id));
    }

    (void) plinth_dn_id_valid(url);

    rc = plinth_dn_range_parse(range, blob_size, &start, &len);
    FUZZ_ASSERT(rc >= -1 && rc <= 1);

    if (rc == 1) {
        FUZZ_ASSERT(len >= 1);
        FUZZ_ASSERT(start < blob_size);
        FUZZ_ASSERT(len <= blob_size - start);
    }

    /* small sizes too, where the arithmetic is tight */
    rc = plinth_dn_range_parse(range, blob_size & 0xff, &start, &len);
    if (rc == 1) {
        FUZZ_ASSERT(len >= 1 && start < (blob_size & 0xff)
                    && len <= (blob_size & 0xff) - start);
    }

    (void) plinth_dn_addr_valid(addr);

    free(url);
    free(range);
    free(addr);

    return 0;
}
