-- Plinth metadata schema, migration 004: conditional writes.
--
-- PutObject with If-None-Match: * (create only) or If-Match: <etag>
-- (replace only that version) is decided at commit, under the lock of the
-- key's current row: of many racing creators exactly one wins. A
-- conditional write that holds at commit becomes current at once (it is
-- ordered by the lock, not by its start time). The losers' versions become
-- garbage in the same transaction.

CREATE FUNCTION plinth_make_current(p_version bigint,
    p_if_none_match boolean, p_if_match text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v      versions%ROWTYPE;
    cur    objects%ROWTYPE;
    v_cond boolean := p_if_none_match OR p_if_match IS NOT NULL;
    v_lost text;
BEGIN
    SELECT * INTO v FROM versions WHERE version_id = p_version;
    PERFORM 1 FROM buckets WHERE bucket_id = v.bucket_id FOR SHARE;
    IF NOT FOUND THEN
        UPDATE versions SET state = 'garbage', state_changed = clock_timestamp()
            WHERE version_id = p_version;
        RAISE EXCEPTION 'no bucket %', v.bucket_id USING ERRCODE = 'PL001';
    END IF;
    FOR i IN 1 .. 5 LOOP
        SELECT * INTO cur FROM objects
            WHERE bucket_id = v.bucket_id AND key = v.key FOR UPDATE;
        v_lost := NULL;
        IF NOT FOUND OR cur.deleted THEN
            IF p_if_match IS NOT NULL THEN
                v_lost := 'NoSuchKey';
            END IF;
        ELSIF p_if_none_match THEN
            v_lost := 'PreconditionFailed';
        ELSIF p_if_match IS NOT NULL AND p_if_match <> '*'
              AND cur.etag IS DISTINCT FROM p_if_match THEN
            v_lost := 'PreconditionFailed';
        END IF;
        IF v_lost IS NOT NULL THEN
            UPDATE versions SET state = 'garbage',
                                state_changed = clock_timestamp()
                WHERE version_id = p_version;
            RETURN v_lost;
        END IF;
        IF NOT FOUND THEN
            INSERT INTO objects (bucket_id, key, version_id, ts, deleted, size, etag)
                VALUES (v.bucket_id, v.key, v.version_id, v.ts, v.delete_marker,
                        v.size, v.etag)
                ON CONFLICT DO NOTHING;
            IF FOUND THEN
                RETURN 'current';
            END IF;
            CONTINUE;   -- a concurrent writer inserted first: look again
        END IF;
        IF v_cond OR (cur.ts, cur.version_id) < (v.ts, v.version_id) THEN
            UPDATE objects SET version_id = v.version_id,
                               ts = greatest(v.ts, cur.ts),
                               deleted = v.delete_marker, size = v.size,
                               etag = v.etag
                WHERE bucket_id = v.bucket_id AND key = v.key;
            UPDATE versions SET state = 'garbage', state_changed = clock_timestamp()
                WHERE version_id = cur.version_id;
            RETURN 'current';
        END IF;
        UPDATE versions SET state = 'garbage', state_changed = clock_timestamp()
            WHERE version_id = p_version;
        RETURN 'superseded';
    END LOOP;
    RAISE EXCEPTION 'could not settle the current version of %', v.key;
END $$;


-- The unconditional form keeps its signature (multipart completion uses it).
CREATE OR REPLACE FUNCTION plinth_make_current(p_version bigint)
RETURNS boolean LANGUAGE sql AS $$
    SELECT plinth_make_current(p_version, false, NULL) = 'current';
$$;


CREATE FUNCTION plinth_put_commit(p_version bigint, p_nodes integer[],
    p_if_none_match boolean, p_if_match text)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    UPDATE versions SET state = 'committed', nodes = p_nodes,
                        committed_at = clock_timestamp(),
                        state_changed = clock_timestamp()
        WHERE version_id = p_version AND state = 'pending';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pending version % is gone', p_version
            USING ERRCODE = 'PL006';
    END IF;
    RETURN plinth_make_current(p_version, p_if_none_match, p_if_match);
END $$;
