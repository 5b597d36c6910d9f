-- Plinth metadata schema, migration 008: bucket versioning.
--
-- A bucket is Unversioned (as created), Enabled or Suspended; once
-- versioned it never returns to Unversioned (as in S3).
--
-- Every version gets its S3 version id when its row is inserted (a
-- trigger, so PUT, CopyObject, CompleteMultipartUpload and delete markers
-- all follow the bucket's state): 32 random hex digits while the bucket is
-- Enabled, NULL otherwise: the "null" version.
--
-- What a new version replaces (plinth_make_current):
--   Unversioned  the current version becomes garbage (as before 008);
--   Enabled      nothing: older versions stay committed;
--   Suspended    a "null" version replaces the key's previous "null"
--                version only (it becomes garbage); others stay.
-- A delete marker is a version like any other in a versioned bucket.
-- Permanently deleting a version (DeleteObject with versionId) makes it
-- garbage; if it was current, the newest remaining version becomes
-- current, or the key disappears.
--
-- New SQLSTATEs: PL014 NoSuchVersion, PL015 InvalidArgument.

ALTER TABLE versions ADD COLUMN vid text;

ALTER TABLE buckets ADD CONSTRAINT buckets_versioning_check
    CHECK (versioning IN ('Unversioned', 'Enabled', 'Suspended'));

-- ListObjectVersions order: key, then newest first
CREATE INDEX versions_list_idx ON versions (bucket_id, key, ts DESC,
    version_id DESC) WHERE state = 'committed';


CREATE FUNCTION plinth_version_vid() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.vid IS NULL AND EXISTS (SELECT 1 FROM buckets
                                   WHERE bucket_id = NEW.bucket_id
                                     AND versioning = 'Enabled') THEN
        NEW.vid := replace(gen_random_uuid()::text, '-', '');
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER versions_vid BEFORE INSERT ON versions
    FOR EACH ROW EXECUTE FUNCTION plinth_version_vid();


-- In a versioned bucket, version v (committed) is the key's only "null"
-- version if it is one: the older "null" version becomes garbage, or v
-- does when a newer "null" version is current.
CREATE FUNCTION plinth_settle_null(v versions)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_cur bigint;
BEGIN
    IF v.vid IS NOT NULL THEN
        RETURN;
    END IF;
    SELECT o.version_id INTO v_cur FROM objects o
        WHERE o.bucket_id = v.bucket_id AND o.key = v.key;
    IF v_cur IS DISTINCT FROM v.version_id
       AND EXISTS (SELECT 1 FROM versions x
                   WHERE x.version_id = v_cur AND x.vid IS NULL)
    THEN
        UPDATE versions SET state = 'garbage', state_changed = clock_timestamp()
            WHERE version_id = v.version_id;
        RETURN;
    END IF;
    UPDATE versions x SET state = 'garbage', state_changed = clock_timestamp()
        WHERE x.bucket_id = v.bucket_id AND x.key = v.key
          AND x.vid IS NULL AND x.state = 'committed'
          AND x.version_id <> v.version_id
          AND x.version_id IS DISTINCT FROM v_cur;
END $$;


-- 004's conditional form, now per the bucket's versioning state.
CREATE OR REPLACE FUNCTION plinth_make_current(p_version bigint,
    p_if_none_match boolean, p_if_match text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v      versions%ROWTYPE;
    cur    objects%ROWTYPE;
    v_cond boolean := p_if_none_match OR p_if_match IS NOT NULL;
    v_lost text;
    v_mode text;
BEGIN
    SELECT * INTO v FROM versions WHERE version_id = p_version;
    SELECT versioning INTO v_mode FROM buckets
        WHERE bucket_id = v.bucket_id FOR SHARE;
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
                IF v_mode <> 'Unversioned' THEN
                    PERFORM plinth_settle_null(v);
                END IF;
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
            IF v_mode = 'Unversioned' THEN
                UPDATE versions SET state = 'garbage',
                                    state_changed = clock_timestamp()
                    WHERE version_id = cur.version_id;
            ELSE
                PERFORM plinth_settle_null(v);
            END IF;
            RETURN 'current';
        END IF;
        IF v_mode = 'Unversioned' THEN
            UPDATE versions SET state = 'garbage',
                                state_changed = clock_timestamp()
                WHERE version_id = p_version;
        ELSE
            PERFORM plinth_settle_null(v);
        END IF;
        RETURN 'superseded';
    END LOOP;
    RAISE EXCEPTION 'could not settle the current version of %', v.key;
END $$;


-- DeleteObject: as 001's, but the marker of a versioned bucket is a
-- version and stays. Returns the marker's version row id.
DROP FUNCTION plinth_delete_object(text, text, text);

CREATE FUNCTION plinth_delete_object(p_bucket text, p_key text, p_owner text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_bucket  bigint;
    v_version bigint;
    v_mode    text;
BEGIN
    SELECT bucket_id, versioning INTO v_bucket, v_mode FROM buckets
        WHERE name = p_bucket;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no bucket "%"', p_bucket USING ERRCODE = 'PL001';
    END IF;
    INSERT INTO versions (bucket_id, key, state, delete_marker, owner_id,
                          committed_at)
        VALUES (v_bucket, p_key, 'committed', true, p_owner, clock_timestamp())
        RETURNING version_id INTO v_version;
    PERFORM plinth_make_current(v_version);
    IF v_mode = 'Unversioned' THEN
        -- the marker itself is needed only while it is current
        UPDATE versions SET state = 'garbage', state_changed = clock_timestamp()
            WHERE version_id = v_version
              AND NOT EXISTS (SELECT 1 FROM objects o
                              WHERE o.bucket_id = v_bucket AND o.key = p_key
                                AND o.version_id = v_version);
    END IF;
    RETURN v_version;
END $$;


-- DeleteObject for the gateway: without p_vid a delete marker (as
-- before); with it ('null' or an id), that version is deleted for good.
-- Returns the version id deleted or written (S3's "null" for NULL), whether
-- it is a delete marker, and whether the bucket was ever versioned.
CREATE FUNCTION plinth_delete_version(p_bucket text, p_key text,
    p_caller text, p_vid text,
    OUT version_id text, OUT delete_marker boolean, OUT versioned boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_bucket bigint;
    v_mode   text;
    v        versions%ROWTYPE;
    v_cur    bigint;
    nxt      versions%ROWTYPE;
BEGIN
    v_bucket := plinth_bucket_owned(p_bucket, p_caller);
    SELECT b.versioning INTO v_mode FROM buckets b
        WHERE b.bucket_id = v_bucket FOR SHARE;
    versioned := v_mode <> 'Unversioned';

    IF p_vid IS NULL THEN
        v_cur := plinth_delete_object(p_bucket, p_key, p_caller);
        SELECT x.vid, x.delete_marker INTO version_id, delete_marker
            FROM versions x WHERE x.version_id = v_cur;
        version_id := coalesce(version_id, 'null');
        RETURN;
    END IF;

    -- the key's row first: the order every writer locks in
    SELECT o.version_id INTO v_cur FROM objects o
        WHERE o.bucket_id = v_bucket AND o.key = p_key FOR UPDATE;
    SELECT x.* INTO v FROM versions x
        WHERE x.bucket_id = v_bucket AND x.key = p_key
          AND x.state = 'committed'
          AND (CASE WHEN p_vid = 'null' THEN x.vid IS NULL ELSE x.vid = p_vid END)
          AND NOT (v_mode = 'Unversioned' AND x.delete_marker)
        ORDER BY x.ts DESC, x.version_id DESC LIMIT 1
        FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no version "%" of "%"', p_vid, p_key
            USING ERRCODE = 'PL014';
    END IF;

    UPDATE versions SET state = 'garbage', state_changed = clock_timestamp()
        WHERE versions.version_id = v.version_id;
    version_id := p_vid;
    delete_marker := v.delete_marker;

    IF v_cur IS DISTINCT FROM v.version_id THEN
        RETURN;
    END IF;

    SELECT x.* INTO nxt FROM versions x
        WHERE x.bucket_id = v_bucket AND x.key = p_key
          AND x.state = 'committed'
        ORDER BY x.ts DESC, x.version_id DESC LIMIT 1;
    IF FOUND AND NOT (v_mode = 'Unversioned' AND nxt.delete_marker) THEN
        UPDATE objects SET version_id = nxt.version_id, ts = nxt.ts,
                           deleted = nxt.delete_marker, size = nxt.size,
                           etag = nxt.etag
            WHERE bucket_id = v_bucket AND key = p_key;
    ELSE
        DELETE FROM objects WHERE bucket_id = v_bucket AND key = p_key;
    END IF;
END $$;


-- GetBucketVersioning: the owner's alone.
CREATE FUNCTION plinth_bucket_versioning(p_name text, p_caller text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM plinth_bucket_owned(p_name, p_caller);
    RETURN (SELECT versioning FROM buckets WHERE name = p_name);
END $$;


-- PutBucketVersioning: Enabled or Suspended. Leaving Unversioned turns
-- the tombstones of deleted keys into nothing (an unversioned bucket has
-- no delete markers to list).
CREATE FUNCTION plinth_set_bucket_versioning(p_name text, p_caller text,
    p_status text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id   bigint;
    v_mode text;
BEGIN
    IF p_status NOT IN ('Enabled', 'Suspended') THEN
        RAISE EXCEPTION 'bad versioning status' USING ERRCODE = 'PL012';
    END IF;
    v_id := plinth_bucket_owned(p_name, p_caller);
    SELECT versioning INTO v_mode FROM buckets WHERE bucket_id = v_id
        FOR UPDATE;
    IF v_mode = 'Unversioned' THEN
        UPDATE versions v SET state = 'garbage',
                              state_changed = clock_timestamp()
            FROM objects o
            WHERE o.bucket_id = v_id AND o.deleted
              AND v.version_id = o.version_id;
        DELETE FROM objects WHERE bucket_id = v_id AND deleted;
    END IF;
    UPDATE buckets SET versioning = p_status WHERE bucket_id = v_id;
END $$;


-- DeleteBucket: a versioned bucket must have no version left, delete
-- markers included (S3's BucketNotEmpty).
CREATE OR REPLACE FUNCTION plinth_bucket_delete(p_name text, p_caller text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    v_id := plinth_bucket_owned(p_name, p_caller);
    IF EXISTS (SELECT 1 FROM buckets b WHERE b.bucket_id = v_id
                 AND b.versioning <> 'Unversioned')
       AND EXISTS (SELECT 1 FROM versions v WHERE v.bucket_id = v_id
                     AND v.state = 'committed')
    THEN
        RAISE EXCEPTION 'bucket "%" is not empty', p_name USING ERRCODE = 'PL003';
    END IF;
    PERFORM plinth_bucket_delete(p_name);
END $$;


-- ListObjectVersions page: up to p_max + 1 entries (the extra one only
-- tells that the page is truncated): every committed version and delete
-- marker, keys in byte order, newest first within a key; with a
-- delimiter, keys sharing a prefix up to the first delimiter after
-- p_prefix roll up into one is_prefix row and the scan jumps past them.
-- The page starts after p_key_marker (after every version of it, or, with
-- p_vid_marker, after that version of it); a key marker under a common
-- prefix skips the whole prefix. An unversioned bucket lists its current
-- versions, all "null".
CREATE FUNCTION plinth_list_versions(p_bucket text, p_caller text,
    p_prefix text, p_delimiter text, p_key_marker text, p_vid_marker text,
    p_max integer)
RETURNS TABLE (key text, version_id text, is_prefix boolean,
               is_latest boolean, delete_marker boolean, size bigint,
               etag text, last_modified timestamptz, owner_id text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_bucket bigint;
    v_unver  boolean;
    v_from   text COLLATE "C";
    v_incl   boolean := false;
    v_skip   boolean := false;
    v_cp     text COLLATE "C";
    v_mkey   text COLLATE "C";
    v_mts    timestamptz;
    v_mid    bigint;
    v_rows   integer := 0;
    v_pos    integer;
    r        record;
    v_top    constant text := chr(1114111);
BEGIN
    v_bucket := plinth_bucket_readable(p_bucket, p_caller);
    SELECT b.versioning = 'Unversioned' INTO v_unver FROM buckets b
        WHERE b.bucket_id = v_bucket;
    IF p_max < 0 THEN
        RETURN;
    END IF;

    v_from := coalesce(p_key_marker, '');

    IF p_vid_marker IS NOT NULL AND v_from <> '' THEN
        SELECT x.ts, x.version_id INTO v_mts, v_mid FROM versions x
            WHERE x.bucket_id = v_bucket AND x.key = v_from
              AND x.state = 'committed'
              AND (CASE WHEN p_vid_marker = 'null' THEN x.vid IS NULL
                        ELSE x.vid = p_vid_marker END)
            ORDER BY x.ts DESC, x.version_id DESC LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'version-id-marker "%" not found', p_vid_marker
                USING ERRCODE = 'PL015';
        END IF;
        v_mkey := v_from;
        v_incl := true;
    ELSIF p_delimiter <> '' AND starts_with(v_from, p_prefix) THEN
        v_pos := strpos(substr(v_from, length(p_prefix) + 1), p_delimiter);
        IF v_pos > 0 THEN
            v_cp := substr(v_from, 1,
                           length(p_prefix) + v_pos - 1 + length(p_delimiter));
            v_from := v_cp || v_top;
            v_skip := true;
        END IF;
    END IF;

    IF v_from < p_prefix THEN
        v_from := p_prefix;
        v_incl := true;
        v_skip := false;
        v_mkey := NULL;
    END IF;

    <<scan>>
    LOOP
        FOR r IN
            SELECT x.key, x.vid, x.version_id AS id, x.ts, x.delete_marker,
                   x.size, x.etag, x.owner_id,
                   o.version_id IS NOT DISTINCT FROM x.version_id AS latest
            FROM versions x
            LEFT JOIN objects o ON o.bucket_id = x.bucket_id AND o.key = x.key
            WHERE x.bucket_id = v_bucket AND x.state = 'committed'
              AND x.key >= v_from AND (v_incl OR x.key <> v_from)
              AND NOT (v_unver AND x.delete_marker)
            ORDER BY x.key, x.ts DESC, x.version_id DESC
        LOOP
            IF p_prefix <> '' AND NOT starts_with(r.key, p_prefix) THEN
                EXIT scan;
            END IF;
            IF v_skip AND starts_with(r.key, v_cp) THEN
                CONTINUE;           -- a key holding U+10FFFF: rare, step on
            END IF;
            v_skip := false;
            IF v_mkey IS NOT NULL AND r.key = v_mkey
               AND (r.ts, r.id) >= (v_mts, v_mid) THEN
                CONTINUE;           -- at or before the version marker
            END IF;
            IF p_delimiter <> '' THEN
                v_pos := strpos(substr(r.key, length(p_prefix) + 1), p_delimiter);
                IF v_pos > 0 THEN
                    v_cp := substr(r.key, 1,
                                   length(p_prefix) + v_pos - 1 + length(p_delimiter));
                    key := v_cp; version_id := NULL; is_prefix := true;
                    is_latest := NULL; delete_marker := NULL; size := NULL;
                    etag := NULL; last_modified := NULL; owner_id := NULL;
                    RETURN NEXT;
                    v_rows := v_rows + 1;
                    EXIT scan WHEN v_rows > p_max;
                    v_from := v_cp || v_top;
                    v_skip := true;
                    v_incl := false;
                    v_mkey := NULL;
                    CONTINUE scan;  -- reopen the scan past the prefix
                END IF;
            END IF;
            key := r.key; version_id := coalesce(r.vid, 'null');
            is_prefix := false; is_latest := r.latest;
            delete_marker := r.delete_marker; size := r.size; etag := r.etag;
            last_modified := r.ts; owner_id := r.owner_id;
            RETURN NEXT;
            v_rows := v_rows + 1;
            EXIT scan WHEN v_rows > p_max;
        END LOOP;
        EXIT scan;
    END LOOP;
END $$;


-- PutObject, step 1, as 002's, with the version's S3 id ("null" unless
-- the bucket is Enabled) and whether the bucket was ever versioned.
CREATE FUNCTION plinth_put_begin_v(p_bucket text, p_key text, p_size bigint,
    p_etag text, p_content_type text, p_meta text, p_owner text,
    p_acl text, OUT version_id bigint, OUT blob_id text, OUT vid text,
    OUT versioned boolean)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT b.version_id, b.blob_id INTO version_id, blob_id
        FROM plinth_put_begin(p_bucket, p_key, p_size, p_etag,
                              p_content_type, p_meta, p_owner, p_acl) b;
    SELECT coalesce(v.vid, 'null'), k.versioning <> 'Unversioned'
        INTO vid, versioned
        FROM versions v JOIN buckets k ON k.bucket_id = v.bucket_id
        WHERE v.version_id = plinth_put_begin_v.version_id;
END $$;
