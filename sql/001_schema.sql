-- Plinth metadata schema, migration 001.
--
-- Migrations are forward-only: bin/plinth-cluster (and any deployment tool)
-- applies every sql/NNN_*.sql not yet recorded in schema_migrations, each
-- in one transaction, in lexical order. Never edit a released migration;
-- add a new one.
--
-- Keys are compared with COLLATE "C": UTF-8 binary order, as S3 lists them.
-- Every S3 error the database decides is raised with a Plinth SQLSTATE in
-- class PL (the gateway maps them to S3 error codes):
--   PL001 NoSuchBucket       PL002 NoSuchKey        PL003 BucketNotEmpty
--   PL004 BucketAlreadyOwnedByYou                   PL005 BucketAlreadyExists
--   PL006 the pending version is gone (garbage-collected): retry the PUT

CREATE TABLE buckets (
    bucket_id     bigserial PRIMARY KEY,
    name          text COLLATE "C" NOT NULL UNIQUE,
    owner_id      text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- Unversioned | Enabled | Suspended (only Unversioned before versioning lands)
    versioning    text NOT NULL DEFAULT 'Unversioned'
);

-- Every version of every object, including writes in flight (pending),
-- failed writes and versions replaced in unversioned buckets (garbage):
-- their blobs are collected by repaird after a grace period.
CREATE TABLE versions (
    version_id    bigserial PRIMARY KEY,
    bucket_id     bigint NOT NULL,
    key           text COLLATE "C" NOT NULL,
    -- pending: blob being written; committed: acknowledged to the client;
    -- failed: fewer than W replicas acknowledged; garbage: replaced/deleted
    state         text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'committed', 'failed', 'garbage')),
    -- last-writer-wins order: the database's clock when the write began
    ts            timestamptz NOT NULL DEFAULT clock_timestamp(),
    delete_marker boolean NOT NULL DEFAULT false,
    blob_id       uuid,
    size          bigint NOT NULL DEFAULT 0,
    etag          text,
    content_type  text,
    -- user metadata as "x-amz-meta-name:value" lines joined by "\n"
    -- (header names cannot hold ':' and values cannot hold '\n')
    meta          text,
    -- data nodes (cluster ids) holding an acknowledged copy of the blob
    nodes         integer[] NOT NULL DEFAULT '{}',
    owner_id      text,
    committed_at  timestamptz,
    state_changed timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX versions_key_idx ON versions (bucket_id, key, ts DESC);
CREATE INDEX versions_collect_idx ON versions (state_changed)
    WHERE state IN ('pending', 'failed', 'garbage');

-- The current version of every key: what GET, HEAD and LIST read. A
-- deleted key keeps a tombstone row (deleted = true) carrying the delete's
-- timestamp, so that a slower PUT that began before the DELETE cannot
-- resurrect the key.
CREATE TABLE objects (
    bucket_id     bigint NOT NULL REFERENCES buckets (bucket_id),
    key           text COLLATE "C" NOT NULL,
    version_id    bigint NOT NULL,
    ts            timestamptz NOT NULL,
    deleted       boolean NOT NULL DEFAULT false,
    size          bigint NOT NULL DEFAULT 0,
    etag          text,
    PRIMARY KEY (bucket_id, key)
);


-- CreateBucket.
CREATE FUNCTION plinth_bucket_create(p_name text, p_owner text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id    bigint;
    v_owner text;
BEGIN
    INSERT INTO buckets (name, owner_id) VALUES (p_name, p_owner)
        ON CONFLICT (name) DO NOTHING
        RETURNING bucket_id INTO v_id;
    IF v_id IS NOT NULL THEN
        RETURN v_id;
    END IF;
    SELECT owner_id INTO v_owner FROM buckets WHERE name = p_name;
    IF v_owner = p_owner THEN
        RAISE EXCEPTION 'bucket "%" already owned by you', p_name
            USING ERRCODE = 'PL004';
    END IF;
    RAISE EXCEPTION 'bucket "%" already exists', p_name USING ERRCODE = 'PL005';
END $$;


-- DeleteBucket: only when no live key remains. Tombstones and the versions
-- rows of the bucket become garbage for repaird.
CREATE FUNCTION plinth_bucket_delete(p_name text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    SELECT bucket_id INTO v_id FROM buckets WHERE name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no bucket "%"', p_name USING ERRCODE = 'PL001';
    END IF;
    IF EXISTS (SELECT 1 FROM objects WHERE bucket_id = v_id AND NOT deleted) THEN
        RAISE EXCEPTION 'bucket "%" is not empty', p_name USING ERRCODE = 'PL003';
    END IF;
    DELETE FROM objects WHERE bucket_id = v_id;
    UPDATE versions SET state = 'garbage', state_changed = clock_timestamp()
        WHERE bucket_id = v_id AND state = 'committed';
    DELETE FROM buckets WHERE bucket_id = v_id;
END $$;


-- PutObject, step 1: record the write as pending and hand out a fresh blob
-- id. This row need not wait for its own WAL flush: the durable commit
-- that follows carries it, and a lost pending row only leaves orphan blobs
-- that garbage collection removes.
CREATE FUNCTION plinth_put_begin(p_bucket text, p_key text, p_size bigint,
    p_etag text, p_content_type text, p_meta text, p_owner text,
    OUT version_id bigint, OUT blob_id text)
LANGUAGE plpgsql AS $$
DECLARE
    v_bucket bigint;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT b.bucket_id INTO v_bucket FROM buckets b WHERE b.name = p_bucket;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no bucket "%"', p_bucket USING ERRCODE = 'PL001';
    END IF;
    INSERT INTO versions (bucket_id, key, blob_id, size, etag, content_type,
                          meta, owner_id)
        VALUES (v_bucket, p_key, gen_random_uuid(), p_size, p_etag,
                p_content_type, p_meta, p_owner)
        RETURNING versions.version_id, replace(versions.blob_id::text, '-', '')
        INTO version_id, blob_id;
END $$;


-- Makes version p_version the key's current one if it is newer (by ts,
-- then version id) than the current one: last writer wins. The loser of
-- the comparison becomes garbage (unversioned buckets keep one version).
CREATE FUNCTION plinth_make_current(p_version bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v   versions%ROWTYPE;
    cur objects%ROWTYPE;
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
        IF NOT FOUND THEN
            INSERT INTO objects (bucket_id, key, version_id, ts, deleted, size, etag)
                VALUES (v.bucket_id, v.key, v.version_id, v.ts, v.delete_marker,
                        v.size, v.etag)
                ON CONFLICT DO NOTHING;
            IF FOUND THEN
                RETURN true;
            END IF;
            CONTINUE;   -- a concurrent writer inserted first: compare with it
        END IF;
        IF (cur.ts, cur.version_id) < (v.ts, v.version_id) THEN
            UPDATE objects SET version_id = v.version_id, ts = v.ts,
                               deleted = v.delete_marker, size = v.size,
                               etag = v.etag
                WHERE bucket_id = v.bucket_id AND key = v.key;
            UPDATE versions SET state = 'garbage', state_changed = clock_timestamp()
                WHERE version_id = cur.version_id;
            RETURN true;
        END IF;
        UPDATE versions SET state = 'garbage', state_changed = clock_timestamp()
            WHERE version_id = p_version;
        RETURN false;
    END LOOP;
    RAISE EXCEPTION 'could not settle the current version of %', v.key;
END $$;


-- PutObject, step 2, after W data nodes acknowledged: commit durably.
CREATE FUNCTION plinth_put_commit(p_version bigint, p_nodes integer[])
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    UPDATE versions SET state = 'committed', nodes = p_nodes,
                        committed_at = clock_timestamp(),
                        state_changed = clock_timestamp()
        WHERE version_id = p_version AND state = 'pending';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pending version % is gone', p_version
            USING ERRCODE = 'PL006';
    END IF;
    RETURN plinth_make_current(p_version);
END $$;


-- PutObject failed (fewer than W acknowledgements): the blobs that did
-- land are garbage.
CREATE FUNCTION plinth_put_abort(p_version bigint, p_nodes integer[])
RETURNS void LANGUAGE sql AS $$
    UPDATE versions SET state = 'failed', nodes = p_nodes,
                        state_changed = clock_timestamp()
        WHERE version_id = p_version AND state = 'pending';
$$;


-- DeleteObject: a delete marker, current if newest. Idempotent: deleting a
-- missing key succeeds (and still records the tombstone).
CREATE FUNCTION plinth_delete_object(p_bucket text, p_key text, p_owner text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_bucket  bigint;
    v_version bigint;
BEGIN
    SELECT bucket_id INTO v_bucket FROM buckets WHERE name = p_bucket;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no bucket "%"', p_bucket USING ERRCODE = 'PL001';
    END IF;
    INSERT INTO versions (bucket_id, key, state, delete_marker, owner_id,
                          committed_at)
        VALUES (v_bucket, p_key, 'committed', true, p_owner, clock_timestamp())
        RETURNING version_id INTO v_version;
    PERFORM plinth_make_current(v_version);
    -- the marker itself is needed only while it is current
    UPDATE versions SET state = 'garbage', state_changed = clock_timestamp()
        WHERE version_id = v_version
          AND NOT EXISTS (SELECT 1 FROM objects o
                          WHERE o.bucket_id = v_bucket AND o.key = p_key
                            AND o.version_id = v_version);
END $$;


-- ListObjectsV2 page: up to p_max + 1 rows in key order (the extra row
-- only tells that the page is truncated). With a delimiter, keys that
-- share a prefix up to the first delimiter after p_prefix roll up into one
-- row with is_prefix = true, and the scan jumps past them. The scan starts
-- after p_after; when p_after_prefix, after every key beginning with it.
CREATE FUNCTION plinth_list(p_bucket text, p_prefix text, p_delimiter text,
    p_after text, p_after_prefix boolean, p_max integer)
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
    IF v_skip THEN
        v_cp := v_from;
        v_from := v_from || v_top;
    END IF;

    <<scan>>
    LOOP
        FOR r IN
            SELECT o.key, o.size, o.etag, o.ts FROM objects o
            WHERE o.bucket_id = v_bucket AND o.key >= v_from
              AND (v_incl OR o.key <> v_from)
              AND NOT o.deleted
            ORDER BY o.key
        LOOP
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
        EXIT scan;
    END LOOP;
END $$;
