-- Plinth metadata schema, migration 022: a ListObjects page in one
-- statement when it has no delimiter (a data loader paging through a
-- prefix).
--
-- Before, every page went through plinth_list_as -> plinth_list (a
-- PL/pgSQL loop returning the page row by row into a tuplestore), and
-- the gateway's statement then looked each returned key up again in
-- objects (by key) and in versions (for StorageClass): about 8,000
-- buffer hits and 14 ms of PostgreSQL for a page of 1,000 keys under a
-- prefix of 1,000,000 (bench/run's list-all pass: 13 ms of PostgreSQL
-- CPU a page).
--
-- StorageClass: versions_class_idx holds only the versions whose class
-- is not STANDARD (few, often none), so the page's join probes a small
-- index instead of fetching every key's versions row (4 buffers a key);
-- a key with no entry there is STANDARD.
--
-- plinth_list_page reads the page with one index range scan of objects,
-- key >= max(prefix, after) AND key < the prefix's successor (an index
-- condition: the scan ends where the prefix does, and never tests LIKE
-- or starts_with row by row), joined once to versions for StorageClass,
-- LastModified formatted here, LIMIT max + 1. With a delimiter, or after
-- a common prefix, it answers what plinth_list did (the row-by-row walk
-- that skips each common prefix), with the same StorageClass join.
--
-- The gateway runs the same range statement itself, prepared
-- (plinth_list_range and plinth_list_from in ngx_plinth_s3.c: no PL/pgSQL
-- call a page, about 1.5 ms less), and calls plinth_list_page for pages
-- with a delimiter, after a common prefix, or under a prefix made only of
-- U+10FFFF (which has no successor).

CREATE INDEX versions_class_idx ON versions (version_id)
    WHERE storage_class <> 'STANDARD';

-- The smallest string above every string that starts with p under byte
-- (COLLATE "C", UTF-8) order: p with its last character incremented
-- (U+10FFFF dropped and the one before incremented; the surrogates
-- skipped). NULL when there is none (p empty or all U+10FFFF): no upper
-- bound.
CREATE FUNCTION plinth_prefix_successor(p text)
RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    v_s  text := p;
    v_c  integer;
BEGIN
    WHILE v_s <> '' LOOP
        v_c := ascii(right(v_s, 1));
        v_s := left(v_s, -1);
        IF v_c < 1114111 THEN
            v_c := v_c + 1;
            IF v_c BETWEEN 55296 AND 57343 THEN
                v_c := 57344;
            END IF;
            RETURN v_s || chr(v_c);
        END IF;
    END LOOP;
    RETURN NULL;
END $$;


CREATE FUNCTION plinth_list_page(p_bucket text, p_caller text, p_prefix text,
    p_delimiter text, p_after text, p_after_prefix boolean, p_max integer)
RETURNS TABLE (key text, is_prefix boolean, size bigint, etag text,
               last_modified text, storage_class text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_bucket bigint;
    v_from   text COLLATE "C";
    v_incl   boolean := false;
    v_to     text COLLATE "C";
BEGIN
    v_bucket := plinth_bucket_readable(p_bucket, p_caller);

    IF coalesce(p_delimiter, '') <> '' OR coalesce(p_after_prefix, false)
    THEN
        RETURN QUERY
            SELECT l.key, l.is_prefix, l.size, l.etag,
                   to_char(l.last_modified AT TIME ZONE 'UTC',
                           'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                   CASE WHEN l.is_prefix THEN NULL
                        ELSE coalesce(v.storage_class, 'STANDARD') END
            FROM plinth_list(p_bucket, p_prefix, p_delimiter, p_after,
                             p_after_prefix, p_max) WITH ORDINALITY
                 AS l(key, is_prefix, size, etag, last_modified, ord)
            LEFT JOIN objects o ON NOT l.is_prefix
                 AND o.bucket_id = v_bucket AND o.key = l.key
            LEFT JOIN versions v ON v.version_id = o.version_id
                 AND v.storage_class <> 'STANDARD'
            ORDER BY l.ord;
        RETURN;
    END IF;

    IF p_max < 0 THEN
        RETURN;
    END IF;

    v_from := coalesce(p_after, '');
    IF v_from < coalesce(p_prefix, '') THEN
        v_from := p_prefix;         -- the prefix itself may be a key
        v_incl := true;
    END IF;
    v_to := plinth_prefix_successor(coalesce(p_prefix, ''));

    -- two statements, so that each plan has its bounds as index conditions
    IF v_to IS NULL THEN
        RETURN QUERY
            SELECT o.key, false, o.size, o.etag,
                   to_char(o.ts AT TIME ZONE 'UTC',
                           'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                   coalesce(v.storage_class, 'STANDARD')
            FROM objects o
            LEFT JOIN versions v ON v.version_id = o.version_id
                 AND v.storage_class <> 'STANDARD'
            WHERE o.bucket_id = v_bucket AND o.key >= v_from
              AND (v_incl OR o.key <> v_from)
              AND NOT o.deleted
            ORDER BY o.key
            LIMIT p_max + 1;
    ELSE
        RETURN QUERY
            SELECT o.key, false, o.size, o.etag,
                   to_char(o.ts AT TIME ZONE 'UTC',
                           'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                   coalesce(v.storage_class, 'STANDARD')
            FROM objects o
            LEFT JOIN versions v ON v.version_id = o.version_id
                 AND v.storage_class <> 'STANDARD'
            WHERE o.bucket_id = v_bucket AND o.key >= v_from
              AND o.key < v_to
              AND (v_incl OR o.key <> v_from)
              AND NOT o.deleted
            ORDER BY o.key
            LIMIT p_max + 1;
    END IF;
END $$;
