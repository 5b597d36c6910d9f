-- Plinth metadata schema, migration 009: stored checksums, conditional
-- CompleteMultipartUpload, copies of older versions.
--
-- New overloads are added beside the old functions (which stay, for
-- gateways not yet reloaded onto the new statements).
--
-- Checksums. A write that carried x-amz-checksum-<alg> (header or aws-chunked
-- trailer) was verified by the gateway before it commits; the value is kept
-- as the client sent it (base64) with its algorithm, and returned on
-- GET/HEAD with x-amz-checksum-mode: ENABLED. checksum_type is FULL_OBJECT
-- for a single PUT. Parts keep their own checksums (returned for a
-- partNumber GET); a copy keeps its source's. An upload created with a
-- checksum algorithm gets an object checksum at completion, computed by
-- the gateway from its parts' (plinth_mpu_part_checksums): COMPOSITE (the
-- checksum of the parts' checksums, "-N") or FULL_OBJECT (the CRCs
-- combined, as if computed over the whole object).

ALTER TABLE versions ADD COLUMN checksum_alg text,
                     ADD COLUMN checksum text,
                     ADD COLUMN checksum_type text;
ALTER TABLE upload_parts ADD COLUMN checksum_alg text,
                         ADD COLUMN checksum text;
ALTER TABLE version_parts ADD COLUMN checksum_alg text,
                          ADD COLUMN checksum text;
-- CreateMultipartUpload's x-amz-checksum-algorithm and -type (NULL: none)
ALTER TABLE uploads ADD COLUMN checksum_alg text,
                    ADD COLUMN checksum_type text;


-- 004's plinth_put_commit with the verified checksum (NULLs: none), in
-- the same single UPDATE of the row. The 4-argument form stays for
-- gateways not yet reloaded.
CREATE FUNCTION plinth_put_commit(p_version bigint, p_nodes integer[],
    p_if_none_match boolean, p_if_match text, p_cks_alg text, p_cks text)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    UPDATE versions SET state = 'committed', nodes = p_nodes,
                        committed_at = clock_timestamp(),
                        state_changed = clock_timestamp(),
                        checksum_alg = p_cks_alg, checksum = p_cks,
                        checksum_type = CASE WHEN p_cks_alg IS NOT NULL
                                             THEN 'FULL_OBJECT' END
        WHERE version_id = p_version AND state = 'pending';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pending version % is gone', p_version
            USING ERRCODE = 'PL006';
    END IF;
    RETURN plinth_make_current(p_version, p_if_none_match, p_if_match);
END $$;


-- CreateMultipartUpload with its checksum algorithm and type.
CREATE FUNCTION plinth_mpu_create(p_bucket text, p_key text,
    p_content_type text, p_meta text, p_owner text, p_cks_alg text,
    p_cks_type text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_id text;
BEGIN
    v_id := plinth_mpu_create(p_bucket, p_key, p_content_type, p_meta,
                              p_owner);
    UPDATE uploads SET checksum_alg = p_cks_alg, checksum_type = p_cks_type
        WHERE upload_id = v_id;
    RETURN v_id;
END $$;


-- Before CompleteMultipartUpload, what the gateway needs to compute the
-- object's checksum: the upload's algorithm and type, and for each part
-- listed (in the list's order) its size and stored checksum. A checksum
-- the client listed for a part (p_cks[i], NULL: none) must be the stored
-- one (PL008 InvalidPart). With an algorithm, every part needs a checksum
-- of it (PL016 InvalidRequest). Nothing is locked: Complete checks the
-- ETags again, and a part's ETag pins its bytes. No rows for an upload
-- already completed (Complete decides whether the retry is the same).
CREATE FUNCTION plinth_mpu_part_checksums(p_bucket text, p_key text,
    p_upload text, p_caller text, p_parts integer[], p_cks text[])
RETURNS TABLE (alg text, type text, part_number integer, size bigint,
               checksum text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    u  uploads%ROWTYPE;
    r  record;
BEGIN
    -- a completed upload: nothing to compute, Complete answers the retry
    IF EXISTS (SELECT 1 FROM uploads up JOIN buckets b USING (bucket_id)
               WHERE up.upload_id = p_upload AND b.name = p_bucket
                 AND up.key = p_key AND up.state = 'completed') THEN
        RETURN;
    END IF;
    u := plinth_mpu_open(p_bucket, p_key, p_upload, p_caller, false);
    alg := u.checksum_alg;
    type := u.checksum_type;
    FOR r IN
        SELECT l.pn, l.ck, sum(p.size)::bigint AS size,
               min(p.checksum_alg) AS palg, min(p.checksum) AS pck
        FROM unnest(p_parts, p_cks) WITH ORDINALITY AS l(pn, ck, ord)
        LEFT JOIN upload_parts p
               ON p.upload_id = p_upload AND p.part_number = l.pn
        GROUP BY l.pn, l.ck, l.ord
        ORDER BY l.ord
    LOOP
        IF r.ck IS NOT NULL AND r.ck IS DISTINCT FROM r.pck THEN
            RAISE EXCEPTION 'part % has another checksum', r.pn
                USING ERRCODE = 'PL008';
        END IF;
        IF u.checksum_alg IS NOT NULL AND r.size IS NOT NULL
           AND r.palg IS DISTINCT FROM u.checksum_alg THEN
            RAISE EXCEPTION 'The upload was created using a % checksum. The complete request must include the checksum for each part. It was missing for part % in the request.',
                u.checksum_alg, r.pn USING ERRCODE = 'PL016';
        END IF;
        part_number := r.pn;
        size := r.size;
        checksum := r.pck;
        RETURN NEXT;
    END LOOP;
END $$;


-- Segments. A part is one or more rows (seg 0, 1, ...), each a run of the
-- part's bytes stored in a blob from blob_offset: a part written by
-- UploadPart is one row at offset 0; a part made by UploadPartCopy refers
-- to the source's blobs (no byte moves, as CopyObject), one row per source
-- blob its range touches. version_parts keeps the rows, in object order,
-- part_offset being each row's first byte in the object. Blobs may thus be
-- shared between uploads and versions: a garbage_blobs row is a candidate,
-- removed only once no version or upload refers to the blob (sql/006).
ALTER TABLE upload_parts ADD COLUMN seg integer NOT NULL DEFAULT 0,
                         ADD COLUMN blob_offset bigint NOT NULL DEFAULT 0;
ALTER TABLE upload_parts DROP CONSTRAINT upload_parts_pkey,
                         ADD PRIMARY KEY (upload_id, part_number, seg);
ALTER TABLE version_parts ADD COLUMN seg integer NOT NULL DEFAULT 0,
                          ADD COLUMN blob_offset bigint NOT NULL DEFAULT 0;
ALTER TABLE version_parts DROP CONSTRAINT version_parts_pkey,
                          ADD PRIMARY KEY (version_id, part_number, seg);


-- The open upload p_upload, locked; the blob just written becomes garbage
-- when the upload is gone (PL007).
CREATE FUNCTION plinth_part_lock(p_upload text, p_blob uuid,
    p_nodes integer[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
BEGIN
    SELECT state INTO v_state FROM uploads WHERE upload_id = p_upload
        FOR UPDATE;
    IF NOT FOUND OR v_state <> 'open' THEN
        IF p_blob IS NOT NULL THEN
            INSERT INTO garbage_blobs (blob_id, nodes, reason)
                VALUES (p_blob, p_nodes, 'upload gone');
        END IF;
        RAISE EXCEPTION 'no upload "%"', p_upload USING ERRCODE = 'PL007';
    END IF;
END $$;


-- A part number's rows go (their blobs become garbage candidates).
CREATE FUNCTION plinth_part_drop(p_upload text, p_part integer)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO garbage_blobs (blob_id, nodes, reason)
        SELECT blob_id, nodes, 'replaced' FROM upload_parts
        WHERE upload_id = p_upload AND part_number = p_part;
    DELETE FROM upload_parts WHERE upload_id = p_upload AND part_number = p_part;
$$;


-- UploadPart's commit, with the part's verified checksum (NULLs: none).
CREATE FUNCTION plinth_part_commit(p_upload text, p_part integer,
    p_blob uuid, p_size bigint, p_etag text, p_nodes integer[],
    p_cks_alg text, p_cks text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM plinth_part_lock(p_upload, p_blob, p_nodes);
    PERFORM plinth_part_drop(p_upload, p_part);
    INSERT INTO upload_parts (upload_id, part_number, blob_id, size, etag,
                              nodes, checksum_alg, checksum)
        VALUES (p_upload, p_part, p_blob, p_size, p_etag, p_nodes,
                p_cks_alg, p_cks);
END $$;

-- 003's form, for gateways not yet reloaded: the same, without checksum.
CREATE OR REPLACE FUNCTION plinth_part_commit(p_upload text, p_part integer,
    p_blob uuid, p_size bigint, p_etag text, p_nodes integer[])
RETURNS void LANGUAGE sql AS $$
    SELECT plinth_part_commit(p_upload, p_part, p_blob, p_size, p_etag,
                              p_nodes, NULL, NULL);
$$;


-- ListParts: one row per part (its rows' sizes added up).
CREATE OR REPLACE FUNCTION plinth_list_parts(p_bucket text, p_key text,
    p_upload text, p_caller text, p_marker integer, p_max integer)
RETURNS TABLE (part_number integer, etag text, size bigint,
               uploaded timestamptz, owner_id text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    u uploads%ROWTYPE;
BEGIN
    u := plinth_mpu_open(p_bucket, p_key, p_upload, p_caller, false);
    RETURN QUERY
        SELECT p.part_number, min(p.etag), sum(p.size)::bigint,
               min(p.uploaded), u.owner_id
        FROM upload_parts p
        WHERE p.upload_id = p_upload AND p.part_number > p_marker
        GROUP BY p.part_number
        ORDER BY p.part_number
        LIMIT p_max + 1;
END $$;


-- CompleteMultipartUpload, as 003's, with
--   * If-None-Match: * / If-Match, decided atomically where the version
--     becomes current (plinth_make_current); a failed condition raises, so
--     the whole completion rolls back and the upload stays open (PL013
--     PreconditionFailed, PL002 NoSuchKey for If-Match on no object);
--   * the parts' checksums carried into version_parts, and the object's
--     computed by the gateway (p_cks_*; NULL: none);
--   * the S3 version id of the new version for x-amz-version-id.
CREATE FUNCTION plinth_mpu_complete(p_bucket text, p_key text,
    p_upload text, p_parts integer[], p_etags text[], p_owner text,
    p_if_none_match boolean, p_if_match text,
    p_cks_alg text, p_cks text, p_cks_type text,
    OUT etag text, OUT version_id bigint, OUT vid text, OUT versioned boolean)
LANGUAGE plpgsql AS $$
DECLARE
    u        uploads%ROWTYPE;
    v_n      integer := coalesce(array_length(p_parts, 1), 0);
    v_size   bigint;
    v_etag   text;
    v_res    text;
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
                  WHERE vp.version_id = u.version_id AND vp.seg = 0)
       AND NOT EXISTS (
           SELECT 1 FROM unnest(p_parts, p_etags) AS l(pn, et)
           LEFT JOIN version_parts vp
                  ON vp.version_id = u.version_id AND vp.part_number = l.pn
                 AND vp.seg = 0
           WHERE vp.etag IS DISTINCT FROM lower(btrim(l.et, '" ')))
    THEN
        version_id := u.version_id;
    ELSE
        PERFORM plinth_mpu_open(p_bucket, p_key, p_upload, p_owner, false);

        IF v_n = 0 THEN
            RAISE EXCEPTION 'empty part list' USING ERRCODE = 'PL012';
        END IF;
        FOR i IN 2 .. v_n LOOP
            IF p_parts[i] <= p_parts[i - 1] THEN
                RAISE EXCEPTION 'parts out of order' USING ERRCODE = 'PL009';
            END IF;
        END LOOP;

        FOR r IN
            SELECT l.pn, l.et, p.etag AS have
            FROM unnest(p_parts, p_etags) WITH ORDINALITY AS l(pn, et, ord)
            LEFT JOIN upload_parts p
                   ON p.upload_id = p_upload AND p.part_number = l.pn
                  AND p.seg = 0
            ORDER BY l.ord
        LOOP
            IF r.have IS NULL OR r.have <> lower(btrim(r.et, '" ')) THEN
                RAISE EXCEPTION 'part % not uploaded with ETag %', r.pn, r.et
                    USING ERRCODE = 'PL008';
            END IF;
        END LOOP;
        FOR r IN
            SELECT l.pn
            FROM unnest(p_parts) WITH ORDINALITY AS l(pn, ord)
            JOIN upload_parts p
              ON p.upload_id = p_upload AND p.part_number = l.pn
            WHERE l.ord < v_n
            GROUP BY l.pn
            HAVING sum(p.size) < v_min
        LOOP
            RAISE EXCEPTION 'part % is smaller than 5 MiB', r.pn
                USING ERRCODE = 'PL010';
        END LOOP;

        SELECT sum(p.size),
               md5(decode(string_agg(p.etag, '' ORDER BY p.part_number)
                              FILTER (WHERE p.seg = 0),
                          'hex')) || '-' || count(*) FILTER (WHERE p.seg = 0)
            INTO v_size, v_etag
            FROM upload_parts p
            WHERE p.upload_id = p_upload AND p.part_number = ANY (p_parts);

        INSERT INTO versions (bucket_id, key, state, blob_id, size, etag,
                              content_type, meta, owner_id, committed_at,
                              parts, checksum_alg, checksum, checksum_type)
            VALUES (u.bucket_id, p_key, 'committed', NULL, v_size, v_etag,
                    u.content_type, u.meta, p_owner, clock_timestamp(), v_n,
                    p_cks_alg, p_cks, p_cks_type)
            RETURNING versions.version_id INTO version_id;

        INSERT INTO version_parts (version_id, part_number, seg, blob_id,
                                   blob_offset, size, part_offset, etag,
                                   nodes, checksum_alg, checksum)
            SELECT plinth_mpu_complete.version_id, p.part_number, p.seg,
                   p.blob_id, p.blob_offset, p.size,
                   coalesce(sum(p.size) OVER (ORDER BY p.part_number, p.seg
                            ROWS BETWEEN UNBOUNDED PRECEDING
                                     AND 1 PRECEDING), 0),
                   p.etag, p.nodes, p.checksum_alg, p.checksum
            FROM upload_parts p
            WHERE p.upload_id = p_upload AND p.part_number = ANY (p_parts);

        INSERT INTO garbage_blobs (blob_id, nodes, reason)
            SELECT p.blob_id, p.nodes, 'not completed' FROM upload_parts p
            WHERE p.upload_id = p_upload
              AND NOT (p.part_number = ANY (p_parts));
        DELETE FROM upload_parts p WHERE p.upload_id = p_upload;

        UPDATE uploads
            SET state = 'completed',
                version_id = plinth_mpu_complete.version_id,
                state_changed = clock_timestamp()
            WHERE upload_id = p_upload;

        v_res := plinth_make_current(plinth_mpu_complete.version_id,
                                     coalesce(p_if_none_match, false),
                                     p_if_match);
        IF v_res = 'PreconditionFailed' THEN
            RAISE EXCEPTION 'completion precondition' USING ERRCODE = 'PL013';
        ELSIF v_res = 'NoSuchKey' THEN
            RAISE EXCEPTION 'no key "%" to match', p_key
                USING ERRCODE = 'PL002';
        END IF;
    END IF;

    SELECT v.etag, coalesce(v.vid, 'null'), b.versioning <> 'Unversioned'
        INTO etag, vid, versioned
        FROM versions v JOIN buckets b USING (bucket_id)
        WHERE v.version_id = plinth_mpu_complete.version_id;
END $$;


-- The source of a copy (CopyObject, UploadPartCopy), locked FOR SHARE:
-- the version p_src_vid (NULL: the current one; 'null': the null version;
-- PL014 NoSuchVersion when it does not exist, PL016 - S3's InvalidRequest
-- - when it names a delete marker), readable by the caller, meeting the
-- x-amz-copy-source-if-* conditions (PL013 PreconditionFailed), checked in
-- S3's order: if-match and if-none-match decide over the dates.
CREATE FUNCTION plinth_copy_source(p_src_bucket text, p_src_key text,
    p_caller text, p_src_vid text, p_if_match text, p_if_none_match text,
    p_if_modified_since timestamptz, p_if_unmodified_since timestamptz)
RETURNS versions LANGUAGE plpgsql AS $$
DECLARE
    v_src versions%ROWTYPE;
BEGIN
    PERFORM plinth_bucket_readable(p_src_bucket, p_caller);

    IF p_src_vid IS NULL THEN
        SELECT v.* INTO v_src FROM versions v
            JOIN objects o ON o.version_id = v.version_id
            JOIN buckets b ON b.bucket_id = o.bucket_id
            WHERE b.name = p_src_bucket AND o.key = p_src_key
              AND NOT o.deleted
            FOR SHARE OF v;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no key "%"', p_src_key USING ERRCODE = 'PL002';
        END IF;
    ELSE
        SELECT v.* INTO v_src FROM versions v
            JOIN buckets b ON b.bucket_id = v.bucket_id
            WHERE b.name = p_src_bucket AND v.key = p_src_key
              AND v.state = 'committed'
              AND CASE WHEN p_src_vid = 'null' THEN v.vid IS NULL
                       ELSE v.vid = p_src_vid END
              AND NOT (v.delete_marker AND b.versioning = 'Unversioned')
            ORDER BY v.ts DESC, v.version_id DESC LIMIT 1
            FOR SHARE OF v;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no version "%" of "%"', p_src_vid, p_src_key
                USING ERRCODE = 'PL014';
        END IF;
        IF v_src.delete_marker THEN
            RAISE EXCEPTION 'copy source is a delete marker'
                USING ERRCODE = 'PL016';
        END IF;
    END IF;

    IF p_if_match IS NOT NULL AND p_if_match <> '*'
       AND p_if_match IS DISTINCT FROM v_src.etag THEN
        RAISE EXCEPTION 'copy source precondition' USING ERRCODE = 'PL013';
    END IF;
    IF p_if_none_match IS NOT NULL
       AND (p_if_none_match = '*' OR p_if_none_match = v_src.etag) THEN
        RAISE EXCEPTION 'copy source precondition' USING ERRCODE = 'PL013';
    END IF;
    IF p_if_unmodified_since IS NOT NULL AND p_if_match IS NULL
       AND date_trunc('second', v_src.ts) > p_if_unmodified_since THEN
        RAISE EXCEPTION 'copy source precondition' USING ERRCODE = 'PL013';
    END IF;
    IF p_if_modified_since IS NOT NULL AND p_if_none_match IS NULL
       AND date_trunc('second', v_src.ts) <= p_if_modified_since THEN
        RAISE EXCEPTION 'copy source precondition' USING ERRCODE = 'PL013';
    END IF;

    RETURN v_src;
END $$;


-- CopyObject, as 006's, with the source's version (plinth_copy_source),
-- its checksum kept (its bytes are the same), and the S3 version ids of
-- the source and of the new version answered.
CREATE FUNCTION plinth_copy_object(p_src_bucket text, p_src_key text,
    p_dst_bucket text, p_dst_key text, p_caller text, p_replace boolean,
    p_content_type text, p_meta text, p_acl text,
    p_if_match text, p_if_none_match text,
    p_if_modified_since timestamptz, p_if_unmodified_since timestamptz,
    p_src_vid text,
    OUT etag text, OUT last_modified text, OUT vid text,
    OUT versioned boolean, OUT src_vid text)
LANGUAGE plpgsql AS $$
DECLARE
    v_src    versions%ROWTYPE;
    v_dst    bigint;
    v_new    bigint;
BEGIN
    v_dst := plinth_bucket_owned(p_dst_bucket, p_caller);
    v_src := plinth_copy_source(p_src_bucket, p_src_key, p_caller,
                                p_src_vid, p_if_match, p_if_none_match,
                                p_if_modified_since, p_if_unmodified_since);

    INSERT INTO versions (bucket_id, key, state, blob_id, size, etag,
                          content_type, meta, nodes, owner_id, committed_at,
                          acl, parts, checksum_alg, checksum, checksum_type)
        VALUES (v_dst, p_dst_key, 'committed', v_src.blob_id, v_src.size,
                v_src.etag,
                CASE WHEN p_replace THEN p_content_type
                     ELSE v_src.content_type END,
                CASE WHEN p_replace THEN p_meta ELSE v_src.meta END,
                v_src.nodes, p_caller, clock_timestamp(), p_acl, v_src.parts,
                v_src.checksum_alg, v_src.checksum, v_src.checksum_type)
        RETURNING version_id INTO v_new;

    INSERT INTO version_parts (version_id, part_number, seg, blob_id,
                               blob_offset, size, part_offset, etag, nodes,
                               checksum_alg, checksum)
        SELECT v_new, part_number, seg, blob_id, blob_offset, size,
               part_offset, vp.etag, nodes, vp.checksum_alg, vp.checksum
        FROM version_parts vp WHERE vp.version_id = v_src.version_id;

    PERFORM plinth_make_current(v_new);

    src_vid := v_src.vid;
    SELECT v.etag, to_char(v.ts AT TIME ZONE 'UTC',
                           'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           coalesce(v.vid, 'null'), b.versioning <> 'Unversioned'
        INTO etag, last_modified, vid, versioned
        FROM versions v JOIN buckets b USING (bucket_id)
        WHERE v.version_id = v_new;
END $$;


-- UploadPartCopy: part p_part of the upload becomes bytes
-- [p_first, p_last] of the copy source (the whole source when p_first is
-- NULL), as rows referring to the source's blobs. A range outside the
-- source is PL015 (InvalidArgument), more than 5 GiB PL016
-- (InvalidRequest), as in S3. The part's ETag is the MD5 of its bytes when
-- known without reading them (a whole single-PUT source: its own ETag,
-- with its checksum); otherwise the MD5 of the source's ETag and the
-- range, stable for the same copy (recorded in the README).
CREATE FUNCTION plinth_part_copy(p_bucket text, p_key text, p_upload text,
    p_part integer, p_caller text,
    p_src_bucket text, p_src_key text, p_src_vid text,
    p_first bigint, p_last bigint,
    p_if_match text, p_if_none_match text,
    p_if_modified_since timestamptz, p_if_unmodified_since timestamptz,
    OUT etag text, OUT last_modified text, OUT src_vid text)
LANGUAGE plpgsql AS $$
DECLARE
    v_src   versions%ROWTYPE;
    v_first bigint := coalesce(p_first, 0);
    v_last  bigint;
    v_whole boolean;
    v_now   timestamptz := clock_timestamp();
BEGIN
    PERFORM plinth_mpu_open(p_bucket, p_key, p_upload, p_caller, false);
    PERFORM plinth_part_lock(p_upload, NULL, NULL);
    v_src := plinth_copy_source(p_src_bucket, p_src_key, p_caller,
                                p_src_vid, p_if_match, p_if_none_match,
                                p_if_modified_since, p_if_unmodified_since);

    v_last := coalesce(p_last, v_src.size - 1);
    IF p_first IS NOT NULL
       AND (p_first > p_last OR p_last >= v_src.size) THEN
        RAISE EXCEPTION 'Range specified is not valid for source object of size: %',
            v_src.size USING ERRCODE = 'PL015';
    END IF;
    IF v_last - v_first + 1 > 5368709120 THEN
        RAISE EXCEPTION 'copy source range larger than 5 GiB'
            USING ERRCODE = 'PL016';
    END IF;
    v_whole := v_first = 0 AND v_last = v_src.size - 1;

    IF v_whole AND v_src.parts IS NULL THEN
        etag := v_src.etag;
    ELSE
        etag := md5(v_src.etag || ' ' || v_first || '-' || v_last);
    END IF;

    PERFORM plinth_part_drop(p_upload, p_part);

    IF v_src.parts IS NULL THEN
        INSERT INTO upload_parts (upload_id, part_number, seg, blob_id,
                                  blob_offset, size, etag, nodes, uploaded,
                                  checksum_alg, checksum)
            VALUES (p_upload, p_part, 0, v_src.blob_id, v_first,
                    v_last - v_first + 1, etag, v_src.nodes, v_now,
                    CASE WHEN v_whole THEN v_src.checksum_alg END,
                    CASE WHEN v_whole THEN v_src.checksum END);
    ELSIF v_last < v_first THEN
        RAISE EXCEPTION 'an empty multipart copy source'
            USING ERRCODE = 'PL016';
    ELSE
        INSERT INTO upload_parts (upload_id, part_number, seg, blob_id,
                                  blob_offset, size, etag, nodes, uploaded)
            SELECT p_upload, p_part,
                   (row_number() OVER (ORDER BY vp.part_offset))::integer - 1,
                   vp.blob_id,
                   vp.blob_offset + greatest(v_first, vp.part_offset)
                       - vp.part_offset,
                   least(v_last, vp.part_offset + vp.size - 1)
                       - greatest(v_first, vp.part_offset) + 1,
                   plinth_part_copy.etag, vp.nodes, v_now
            FROM version_parts vp
            WHERE vp.version_id = v_src.version_id
              AND vp.part_offset <= v_last
              AND vp.part_offset + vp.size - 1 >= v_first
              AND vp.size > 0;
    END IF;

    src_vid := v_src.vid;
    last_modified := to_char(v_now AT TIME ZONE 'UTC',
                             'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
END $$;


-- DeleteObjects with versions: p_vids[i] names the version of p_keys[i] to
-- remove for good (NULL: a delete marker, as DeleteObject), each exactly
-- as DELETE ?versionId= does (plinth_delete_version). Per key: code NULL
-- (deleted) or S3's code with its message; for a deletion, the version id
-- removed or the marker made, and whether it is a marker.
CREATE FUNCTION plinth_delete_objects(p_bucket text, p_caller text,
    p_keys text[], p_vids text[])
RETURNS TABLE (key text, vid text, code text, message text,
               delete_marker boolean, marker_vid text)
LANGUAGE plpgsql AS $$
DECLARE
    d  record;
BEGIN
    PERFORM plinth_bucket_owned(p_bucket, p_caller);
    FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
        key := p_keys[i];
        vid := p_vids[i];
        code := NULL;
        message := NULL;
        delete_marker := NULL;
        marker_vid := NULL;
        IF octet_length(key) > 1024 THEN
            code := 'KeyTooLongError';
            message := 'Your key is too long.';
        ELSIF vid IS NOT NULL AND vid <> 'null'
              AND vid !~ '^[0-9a-f]{32}$' THEN
            code := 'InvalidArgument';
            message := 'Invalid version id specified.';
        ELSE
            BEGIN
                SELECT * INTO d
                    FROM plinth_delete_version(p_bucket, key, p_caller, vid);
                IF vid IS NULL THEN
                    IF d.versioned THEN
                        delete_marker := true;
                        marker_vid := d.version_id;
                    END IF;
                ELSIF d.delete_marker THEN
                    delete_marker := true;
                    marker_vid := vid;
                END IF;
            EXCEPTION WHEN SQLSTATE 'PL014' THEN
                code := 'NoSuchVersion';
                message := 'The specified version does not exist.';
            END;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;


-- DeleteObject with If-Match: the ETag of what would be deleted (the
-- current object, or the version named) must match ('*': it must exist),
-- checked under the key's row lock in the deletion's own transaction:
-- PL002 NoSuchKey when there is no object, PL014 NoSuchVersion when the
-- version does not exist, PL013 PreconditionFailed when the ETag differs.
CREATE FUNCTION plinth_delete_version(p_bucket text, p_key text,
    p_caller text, p_vid text, p_if_match text,
    OUT version_id text, OUT delete_marker boolean, OUT versioned boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_bucket bigint;
    cur      objects%ROWTYPE;
    v_etag   text;
    v_marker boolean;
BEGIN
    IF p_if_match IS NOT NULL THEN
        v_bucket := plinth_bucket_owned(p_bucket, p_caller);
        SELECT o.* INTO cur FROM objects o
            WHERE o.bucket_id = v_bucket AND o.key = p_key FOR UPDATE;
        IF p_vid IS NULL THEN
            IF NOT FOUND OR cur.deleted THEN
                RAISE EXCEPTION 'no key "%"', p_key USING ERRCODE = 'PL002';
            END IF;
            v_etag := cur.etag;
            v_marker := false;
        ELSE
            SELECT x.etag, x.delete_marker INTO v_etag, v_marker
                FROM versions x JOIN buckets b USING (bucket_id)
                WHERE x.bucket_id = v_bucket AND x.key = p_key
                  AND x.state = 'committed'
                  AND (CASE WHEN p_vid = 'null' THEN x.vid IS NULL
                            ELSE x.vid = p_vid END)
                  AND NOT (b.versioning = 'Unversioned' AND x.delete_marker)
                ORDER BY x.ts DESC, x.version_id DESC LIMIT 1;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'no version "%" of "%"', p_vid, p_key
                    USING ERRCODE = 'PL014';
            END IF;
        END IF;
        IF p_if_match <> '*'
           AND (v_marker OR v_etag IS DISTINCT FROM p_if_match) THEN
            RAISE EXCEPTION 'delete precondition' USING ERRCODE = 'PL013';
        END IF;
    END IF;
    SELECT d.version_id, d.delete_marker, d.versioned
        INTO version_id, delete_marker, versioned
        FROM plinth_delete_version(p_bucket, p_key, p_caller, p_vid) d;
END $$;
