-- Plinth metadata schema, migration 013: ListObjects pages read only
-- what they return.
--
-- 001's plinth_list walked the bucket with an unbounded cursor: its
-- generic plan could read and sort every key after the start (measured
-- by bench/: 42 ms for a page of a 100,000-key bucket, 0.8 ms bounded).
-- Now each scan is bounded by what the page still needs (reopened past
-- its last key when rows were skipped), and a listing without prefix or
-- delimiter is one plain query (no row-by-row PL/pgSQL).

CREATE OR REPLACE FUNCTION plinth_list(p_bucket text, p_prefix text,
    p_delimiter text, p_after text, p_after_prefix boolean, p_max integer)
RETURNS TABLE (key text, is_prefix boolean, size bigint, etag text,
               last_modified timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_bucket bigint;
    v_from   text COLLATE "C";
    v_skip   boolean;
    v_incl   boolean := false;
    v_rows   integer := 0;
    v_pos    integer;
    v_cp     text COLLATE "C";
    v_lim    integer;
    v_seen   integer;
    v_last   text COLLATE "C";
    r        record;
    -- the highest code point: every key that starts with P sorts before
    -- P || v_top || ... under byte order, except keys that contain it
    v_top    constant text := chr(1114111);
BEGIN
    SELECT b.bucket_id INTO v_bucket FROM buckets b WHERE b.name = p_bucket;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no bucket "%"', p_bucket USING ERRCODE = 'PL001';
    END IF;
    IF p_max < 0 THEN
        RETURN;
    END IF;

    v_from := coalesce(p_after, '');
    v_skip := coalesce(p_after_prefix, false);
    IF v_from < p_prefix THEN
        v_from := p_prefix;         -- the prefix itself may be a key
        v_skip := false;
        v_incl := true;
    END IF;

    IF coalesce(p_prefix, '') = '' AND coalesce(p_delimiter, '') = ''
       AND NOT v_skip THEN
        RETURN QUERY
            SELECT o.key, false, o.size, o.etag, o.ts FROM objects o
            WHERE o.bucket_id = v_bucket AND o.key >= v_from
              AND (v_incl OR o.key <> v_from)
              AND NOT o.deleted
            ORDER BY o.key
            LIMIT p_max + 1;
        RETURN;
    END IF;

    IF v_skip THEN
        v_cp := v_from;
        v_from := v_from || v_top;
    END IF;

    <<scan>>
    LOOP
        v_lim := p_max - v_rows + 1;
        v_seen := 0;
        FOR r IN
            SELECT o.key, o.size, o.etag, o.ts FROM objects o
            WHERE o.bucket_id = v_bucket AND o.key >= v_from
              AND (v_incl OR o.key <> v_from)
              AND NOT o.deleted
            ORDER BY o.key
            LIMIT v_lim
        LOOP
            v_seen := v_seen + 1;
            v_last := r.key;
            IF p_prefix <> '' AND NOT starts_with(r.key, p_prefix) THEN
                EXIT scan;
            END IF;
            IF v_skip AND starts_with(r.key, v_cp) THEN
                CONTINUE;           -- a key holding U+10FFFF: rare, step on
            END IF;
            v_skip := false;
            IF p_delimiter <> '' THEN
                v_pos := strpos(substr(r.key, length(p_prefix) + 1), p_delimiter);
                IF v_pos > 0 THEN
                    v_cp := substr(r.key, 1,
                                   length(p_prefix) + v_pos - 1 + length(p_delimiter));
                    key := v_cp; is_prefix := true; size := NULL; etag := NULL;
                    last_modified := NULL;
                    RETURN NEXT;
                    v_rows := v_rows + 1;
                    EXIT scan WHEN v_rows > p_max;
                    v_from := v_cp || v_top;
                    v_skip := true;
                    v_incl := false;
                    CONTINUE scan;  -- reopen the scan past the prefix
                END IF;
            END IF;
            key := r.key; is_prefix := false; size := r.size; etag := r.etag;
            last_modified := r.ts;
            RETURN NEXT;
            v_rows := v_rows + 1;
            EXIT scan WHEN v_rows > p_max;
        END LOOP;
        -- the bucket ran out before the bound: done
        EXIT scan WHEN v_seen < v_lim;
        -- rows were skipped: the rest of the page lies past the last one
        v_from := v_last;
        v_incl := false;
    END LOOP;
END $$;
