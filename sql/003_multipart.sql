-- Plinth metadata schema, migration 003: multipart upload.
--
-- An upload (CreateMultipartUpload) collects parts (UploadPart), each a
-- blob of its own on RF data nodes; CompleteMultipartUpload turns the
-- listed parts into one committed version whose bytes are the parts in
-- order (version_parts), without copying a byte. Every blob that stops
-- being referenced (a part uploaded again under the same number, parts
-- left out of the completed list, an aborted upload's parts, the copies of
-- a failed part write) is recorded in garbage_blobs, where garbage
-- collection (repaird) finds it with the nodes that may hold it. The parts
-- of a multipart version that itself becomes garbage (replaced, deleted)
-- are found through versions.state = 'garbage' joined to version_parts.
--
-- New SQLSTATEs (see 001's header for PL001..PL006):
--   PL007 NoSuchUpload      PL008 InvalidPart       PL009 InvalidPartOrder
--   PL010 EntityTooSmall    PL012 MalformedXML (an empty part list)
-- (PL011 is 002's AccessDenied: every function here takes the caller and
-- lets only the bucket's owner in, through 002's plinth_bucket_owned.)
--
-- DeleteBucket is not blocked by uploads in progress (S3 does not block it
-- either): the bucket's open uploads are aborted and their parts become
-- garbage, by a trigger, so 001's plinth_bucket_delete stays as it is.

-- number of parts of a multipart version (NULL: a single PUT, one blob)
ALTER TABLE versions ADD COLUMN parts integer;

CREATE TABLE uploads (
    -- 244 random bits in hex: unguessable, so the id is the capability
    upload_id     text PRIMARY KEY,
    bucket_id     bigint NOT NULL,
    key           text COLLATE "C" NOT NULL,
    owner_id      text,
    content_type  text,
    meta          text,             -- as versions.meta
    initiated     timestamptz NOT NULL DEFAULT clock_timestamp(),
    state         text NOT NULL DEFAULT 'open'
                  CHECK (state IN ('open', 'completed', 'aborted')),
    -- completed: the version made of it (for an idempotent retry)
    version_id    bigint,
    state_changed timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- ListMultipartUploads order: key, then initiation time
CREATE INDEX uploads_list_idx ON uploads (bucket_id, key, initiated, upload_id)
    WHERE state = 'open';

CREATE TABLE upload_parts (
    upload_id     text NOT NULL REFERENCES uploads (upload_id),
    part_number   integer NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
    blob_id       uuid NOT NULL,
    size          bigint NOT NULL,
    etag          text NOT NULL,    -- MD5 hex of the part
    nodes         integer[] NOT NULL DEFAULT '{}',
    uploaded      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (upload_id, part_number)
);

-- The parts of a completed multipart version, in object order.
CREATE TABLE version_parts (
    version_id    bigint NOT NULL,
    part_number   integer NOT NULL,
    blob_id       uuid NOT NULL,
    size          bigint NOT NULL,
    part_offset   bigint NOT NULL,  -- of the part's first byte in the object
    etag          text NOT NULL,
    nodes         integer[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (version_id, part_number)
);

-- Blobs no version or open upload refers to any more.
CREATE TABLE garbage_blobs (
    blob_id       uuid NOT NULL,
    nodes         integer[] NOT NULL DEFAULT '{}',
    -- replaced | not completed | aborted | failed write | upload gone
    reason        text NOT NULL,
    since         timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX garbage_blobs_since_idx ON garbage_blobs (since);


-- CreateMultipartUpload.
CREATE FUNCTION plinth_mpu_create(p_bucket text, p_key text,
    p_content_type text, p_meta text, p_owner text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_bucket bigint;
    v_id     text;
BEGIN
    v_bucket := plinth_bucket_owned(p_bucket, p_owner);
    v_id := replace(gen_random_uuid()::text || gen_random_uuid()::text,
                    '-', '');
    INSERT INTO uploads (upload_id, bucket_id, key, owner_id, content_type,
                         meta)
        VALUES (v_id, v_bucket, p_key, p_owner, p_content_type, p_meta);
    RETURN v_id;
END $$;


-- The open upload p_upload of bucket/key (locked if p_lock); PL007
-- otherwise. Only the bucket's owner gets it.
CREATE FUNCTION plinth_mpu_open(p_bucket text, p_key text, p_upload text,
    p_caller text, p_lock boolean)
RETURNS uploads LANGUAGE plpgsql AS $$
DECLARE
    u uploads%ROWTYPE;
BEGIN
    PERFORM plinth_bucket_owned(p_bucket, p_caller);
    IF p_lock THEN
        SELECT up.* INTO u FROM uploads up JOIN buckets b USING (bucket_id)
            WHERE up.upload_id = p_upload AND b.name = p_bucket
              AND up.key = p_key
            FOR UPDATE OF up;
    ELSE
        SELECT up.* INTO u FROM uploads up JOIN buckets b USING (bucket_id)
            WHERE up.upload_id = p_upload AND b.name = p_bucket
              AND up.key = p_key;
    END IF;
    IF NOT FOUND OR u.state <> 'open' THEN
        RAISE EXCEPTION 'no upload "%"', p_upload USING ERRCODE = 'PL007';
    END IF;
    RETURN u;
END $$;


-- UploadPart, step 1: the upload must be open; a fresh blob id.
CREATE FUNCTION plinth_part_begin(p_bucket text, p_key text, p_upload text,
    p_caller text)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM plinth_mpu_open(p_bucket, p_key, p_upload, p_caller, false);
    RETURN replace(gen_random_uuid()::text, '-', '');
END $$;


-- UploadPart, step 2, after W acknowledgements: record the part. A part
-- with the same number is replaced and its blob becomes garbage. If the
-- upload was completed or aborted meanwhile, the new blob is garbage and
-- the answer is NoSuchUpload.
CREATE FUNCTION plinth_part_commit(p_upload text, p_part integer,
    p_blob uuid, p_size bigint, p_etag text, p_nodes integer[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_old   upload_parts%ROWTYPE;
BEGIN
    SELECT state INTO v_state FROM uploads WHERE upload_id = p_upload
        FOR UPDATE;
    IF NOT FOUND OR v_state <> 'open' THEN
        INSERT INTO garbage_blobs (blob_id, nodes, reason)
            VALUES (p_blob, p_nodes, 'upload gone');
        RAISE EXCEPTION 'no upload "%"', p_upload USING ERRCODE = 'PL007';
    END IF;
    SELECT * INTO v_old FROM upload_parts
        WHERE upload_id = p_upload AND part_number = p_part;
    IF FOUND THEN
        INSERT INTO garbage_blobs (blob_id, nodes, reason)
            VALUES (v_old.blob_id, v_old.nodes, 'replaced');
        UPDATE upload_parts SET blob_id = p_blob, size = p_size,
                                etag = p_etag, nodes = p_nodes,
                                uploaded = clock_timestamp()
            WHERE upload_id = p_upload AND part_number = p_part;
    ELSE
        INSERT INTO upload_parts (upload_id, part_number, blob_id, size, etag,
                                  nodes)
            VALUES (p_upload, p_part, p_blob, p_size, p_etag, p_nodes);
    END IF;
END $$;


-- UploadPart failed (fewer than W): the copies that did land are garbage.
CREATE FUNCTION plinth_part_abort(p_blob uuid, p_nodes integer[])
RETURNS void LANGUAGE sql AS $$
    INSERT INTO garbage_blobs (blob_id, nodes, reason)
        VALUES (p_blob, p_nodes, 'failed write');
$$;


-- A part's copy acknowledged after the answer, best effort (as
-- plinth_put_add_node for versions): the part, or the version it is in.
CREATE FUNCTION plinth_part_add_node(p_blob uuid, p_node integer)
RETURNS void LANGUAGE sql AS $$
    UPDATE upload_parts SET nodes = nodes || p_node
        WHERE blob_id = p_blob AND NOT (p_node = ANY (nodes));
    UPDATE version_parts SET nodes = nodes || p_node
        WHERE blob_id = p_blob AND NOT (p_node = ANY (nodes));
$$;


-- CompleteMultipartUpload. p_parts and p_etags: the client's list, in its
-- order (ETags with or without quotes). Returns the object's ETag.
CREATE FUNCTION plinth_mpu_complete(p_bucket text, p_key text,
    p_upload text, p_parts integer[], p_etags text[], p_owner text,
    OUT etag text, OUT version_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    u        uploads%ROWTYPE;
    v_n      integer := coalesce(array_length(p_parts, 1), 0);
    v_size   bigint;
    v_etag   text;
    r        record;
    i        integer;
    v_min    constant bigint := 5 * 1024 * 1024;
BEGIN
    PERFORM plinth_bucket_owned(p_bucket, p_owner);
    SELECT up.* INTO u FROM uploads up JOIN buckets b USING (bucket_id)
        WHERE up.upload_id = p_upload AND b.name = p_bucket
          AND up.key = p_key
        FOR UPDATE OF up;

    -- a retry of a completion that succeeded: the same list, same answer
    IF FOUND AND u.state = 'completed' AND u.version_id IS NOT NULL
       AND v_n > 0
       AND v_n = (SELECT count(*) FROM version_parts vp
                  WHERE vp.version_id = u.version_id)
       AND NOT EXISTS (
           SELECT 1 FROM unnest(p_parts, p_etags) AS l(pn, et)
           LEFT JOIN version_parts vp
                  ON vp.version_id = u.version_id AND vp.part_number = l.pn
           WHERE vp.etag IS DISTINCT FROM lower(btrim(l.et, '" ')))
    THEN
        SELECT v.etag, v.version_id INTO etag, version_id FROM versions v
            WHERE v.version_id = u.version_id;
        RETURN;
    END IF;

    PERFORM plinth_mpu_open(p_bucket, p_key, p_upload, p_owner, false);

    IF v_n = 0 THEN
        RAISE EXCEPTION 'empty part list' USING ERRCODE = 'PL012';
    END IF;
    FOR i IN 2 .. v_n LOOP
        IF p_parts[i] <= p_parts[i - 1] THEN
            RAISE EXCEPTION 'parts out of order' USING ERRCODE = 'PL009';
        END IF;
    END LOOP;

    i := 0;
    FOR r IN
        SELECT l.pn, l.et, l.ord, p.etag AS have, p.size
        FROM unnest(p_parts, p_etags) WITH ORDINALITY AS l(pn, et, ord)
        LEFT JOIN upload_parts p
               ON p.upload_id = p_upload AND p.part_number = l.pn
        ORDER BY l.ord
    LOOP
        IF r.have IS NULL OR r.have <> lower(btrim(r.et, '" ')) THEN
            RAISE EXCEPTION 'part % not uploaded with ETag %', r.pn, r.et
                USING ERRCODE = 'PL008';
        END IF;
    END LOOP;
    FOR r IN
        SELECT l.pn, l.ord, p.size
        FROM unnest(p_parts) WITH ORDINALITY AS l(pn, ord)
        JOIN upload_parts p ON p.upload_id = p_upload AND p.part_number = l.pn
        WHERE l.ord < v_n AND p.size < v_min
    LOOP
        RAISE EXCEPTION 'part % is smaller than 5 MiB', r.pn
            USING ERRCODE = 'PL010';
    END LOOP;

    SELECT sum(p.size),
           md5(decode(string_agg(p.etag, '' ORDER BY p.part_number), 'hex'))
               || '-' || count(*)
        INTO v_size, v_etag
        FROM upload_parts p
        WHERE p.upload_id = p_upload AND p.part_number = ANY (p_parts);

    INSERT INTO versions (bucket_id, key, state, blob_id, size, etag,
                          content_type, meta, owner_id, committed_at, parts)
        VALUES (u.bucket_id, p_key, 'committed', NULL, v_size, v_etag,
                u.content_type, u.meta, p_owner, clock_timestamp(), v_n)
        RETURNING versions.version_id INTO version_id;

    INSERT INTO version_parts (version_id, part_number, blob_id, size,
                               part_offset, etag, nodes)
        SELECT version_id, p.part_number, p.blob_id, p.size,
               coalesce(sum(p.size) OVER (ORDER BY p.part_number
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0),
               p.etag, p.nodes
        FROM upload_parts p
        WHERE p.upload_id = p_upload AND p.part_number = ANY (p_parts);

    INSERT INTO garbage_blobs (blob_id, nodes, reason)
        SELECT p.blob_id, p.nodes, 'not completed' FROM upload_parts p
        WHERE p.upload_id = p_upload AND NOT (p.part_number = ANY (p_parts));
    DELETE FROM upload_parts p WHERE p.upload_id = p_upload;

    UPDATE uploads SET state = 'completed', version_id = plinth_mpu_complete.version_id,
                       state_changed = clock_timestamp()
        WHERE upload_id = p_upload;

    PERFORM plinth_make_current(version_id);
    etag := v_etag;
END $$;


-- AbortMultipartUpload: every part becomes garbage.
CREATE FUNCTION plinth_mpu_abort(p_bucket text, p_key text, p_upload text,
    p_caller text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM plinth_mpu_open(p_bucket, p_key, p_upload, p_caller, true);
    INSERT INTO garbage_blobs (blob_id, nodes, reason)
        SELECT blob_id, nodes, 'aborted' FROM upload_parts
        WHERE upload_id = p_upload;
    DELETE FROM upload_parts WHERE upload_id = p_upload;
    UPDATE uploads SET state = 'aborted', state_changed = clock_timestamp()
        WHERE upload_id = p_upload;
END $$;


-- ListParts page: up to p_max + 1 parts after p_marker.
CREATE FUNCTION plinth_list_parts(p_bucket text, p_key text, p_upload text,
    p_caller text, p_marker integer, p_max integer)
RETURNS TABLE (part_number integer, etag text, size bigint,
               uploaded timestamptz, owner_id text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    u uploads%ROWTYPE;
BEGIN
    u := plinth_mpu_open(p_bucket, p_key, p_upload, p_caller, false);
    RETURN QUERY
        SELECT p.part_number, p.etag, p.size, p.uploaded, u.owner_id
        FROM upload_parts p
        WHERE p.upload_id = p_upload AND p.part_number > p_marker
        ORDER BY p.part_number
        LIMIT p_max + 1;
END $$;


-- ListMultipartUploads page: up to p_max + 1 rows in (key, initiated)
-- order, after (p_key_marker, p_upload_marker). With a delimiter, keys
-- sharing a prefix up to the first delimiter after p_prefix roll up into
-- one row with is_prefix = true.
CREATE FUNCTION plinth_list_uploads(p_bucket text, p_caller text,
    p_prefix text,
    p_delimiter text, p_key_marker text, p_upload_marker text,
    p_max integer)
RETURNS TABLE (key text, upload_id text, is_prefix boolean,
               initiated timestamptz, owner_id text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_bucket  bigint;
    v_rows    integer := 0;
    v_pos     integer;
    v_cp      text COLLATE "C";
    v_last    text COLLATE "C";
    v_mark    uploads%ROWTYPE;
    v_skip    text COLLATE "C";
    r         record;
BEGIN
    v_bucket := plinth_bucket_owned(p_bucket, p_caller);
    IF p_max < 0 THEN
        RETURN;
    END IF;
    IF coalesce(p_upload_marker, '') <> '' AND coalesce(p_key_marker, '') <> ''
    THEN
        SELECT * INTO v_mark FROM uploads u
            WHERE u.upload_id = p_upload_marker AND u.bucket_id = v_bucket
              AND u.key = p_key_marker;
    ELSIF coalesce(p_delimiter, '') <> '' AND coalesce(p_key_marker, '') <> ''
          AND right(p_key_marker, length(p_delimiter)) = p_delimiter
          AND length(p_key_marker) > length(coalesce(p_prefix, ''))
    THEN
        v_skip := p_key_marker;   -- a NextKeyMarker that is a common prefix
    END IF;

    FOR r IN
        SELECT u.key, u.upload_id, u.initiated, u.owner_id FROM uploads u
        WHERE u.bucket_id = v_bucket AND u.state = 'open'
          AND starts_with(u.key, coalesce(p_prefix, ''))
          AND (u.key > coalesce(p_key_marker, '')
               OR (v_mark.upload_id IS NOT NULL AND u.key = v_mark.key
                   AND (u.initiated, u.upload_id)
                       > (v_mark.initiated, v_mark.upload_id)))
        ORDER BY u.key, u.initiated, u.upload_id
    LOOP
        IF v_skip IS NOT NULL AND starts_with(r.key, v_skip) THEN
            CONTINUE;
        END IF;
        IF coalesce(p_delimiter, '') <> '' THEN
            v_pos := strpos(substr(r.key, length(coalesce(p_prefix, '')) + 1),
                            p_delimiter);
            IF v_pos > 0 THEN
                v_cp := substr(r.key, 1, length(coalesce(p_prefix, ''))
                                         + v_pos - 1 + length(p_delimiter));
                IF v_cp IS NOT DISTINCT FROM v_last THEN
                    CONTINUE;
                END IF;
                v_last := v_cp;
                key := v_cp; upload_id := NULL; is_prefix := true;
                initiated := NULL; owner_id := NULL;
                RETURN NEXT;
                v_rows := v_rows + 1;
                EXIT WHEN v_rows > p_max;
                CONTINUE;
            END IF;
        END IF;
        key := r.key; upload_id := r.upload_id; is_prefix := false;
        initiated := r.initiated; owner_id := r.owner_id;
        RETURN NEXT;
        v_rows := v_rows + 1;
        EXIT WHEN v_rows > p_max;
    END LOOP;
END $$;


-- DeleteBucket: open uploads are aborted, their parts become garbage.
CREATE FUNCTION plinth_bucket_abort_uploads()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO garbage_blobs (blob_id, nodes, reason)
        SELECT p.blob_id, p.nodes, 'aborted'
        FROM upload_parts p JOIN uploads u USING (upload_id)
        WHERE u.bucket_id = OLD.bucket_id AND u.state = 'open';
    DELETE FROM upload_parts p USING uploads u
        WHERE p.upload_id = u.upload_id AND u.bucket_id = OLD.bucket_id
          AND u.state = 'open';
    UPDATE uploads SET state = 'aborted', state_changed = clock_timestamp()
        WHERE bucket_id = OLD.bucket_id AND state = 'open';
    RETURN OLD;
END $$;

CREATE TRIGGER buckets_abort_uploads BEFORE DELETE ON buckets
    FOR EACH ROW EXECUTE FUNCTION plinth_bucket_abort_uploads();
