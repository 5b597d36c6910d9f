-- Plinth metadata schema, migration 006: CopyObject.
--
-- A copy is a new version that refers to the source's blobs: no byte
-- moves, whatever the size. Blobs may therefore be shared by several
-- versions: garbage collection removes a blob only when no version that is
-- not garbage refers to it (versions.blob_id and version_parts.blob_id).
--
-- The x-amz-copy-source-if-* conditions are checked here against the
-- source version the copy is made from (PL013 PreconditionFailed).

CREATE INDEX versions_blob_idx ON versions (blob_id);
CREATE INDEX version_parts_blob_idx ON version_parts (blob_id);

CREATE FUNCTION plinth_copy_object(p_src_bucket text, p_src_key text,
    p_dst_bucket text, p_dst_key text, p_caller text, p_replace boolean,
    p_content_type text, p_meta text, p_acl text,
    p_if_match text, p_if_none_match text,
    p_if_modified_since timestamptz, p_if_unmodified_since timestamptz,
    OUT etag text, OUT last_modified text)
LANGUAGE plpgsql AS $$
DECLARE
    v_src    versions%ROWTYPE;
    v_dst    bigint;
    v_new    bigint;
BEGIN
    PERFORM plinth_bucket_readable(p_src_bucket, p_caller);
    v_dst := plinth_bucket_owned(p_dst_bucket, p_caller);

    SELECT v.* INTO v_src FROM versions v
        JOIN objects o ON o.version_id = v.version_id
        JOIN buckets b ON b.bucket_id = o.bucket_id
        WHERE b.name = p_src_bucket AND o.key = p_src_key AND NOT o.deleted
        FOR SHARE OF v;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no key "%"', p_src_key USING ERRCODE = 'PL002';
    END IF;

    -- S3's order: if-match and if-none-match decide over the dates
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

    INSERT INTO versions (bucket_id, key, state, blob_id, size, etag,
                          content_type, meta, nodes, owner_id, committed_at,
                          acl, parts)
        VALUES (v_dst, p_dst_key, 'committed', v_src.blob_id, v_src.size,
                v_src.etag,
                CASE WHEN p_replace THEN p_content_type ELSE v_src.content_type END,
                CASE WHEN p_replace THEN p_meta ELSE v_src.meta END,
                v_src.nodes, p_caller, clock_timestamp(), p_acl, v_src.parts)
        RETURNING version_id INTO v_new;

    INSERT INTO version_parts (version_id, part_number, blob_id, size,
                               part_offset, etag, nodes)
        SELECT v_new, part_number, blob_id, size, part_offset, vp.etag, nodes
        FROM version_parts vp WHERE vp.version_id = v_src.version_id;

    PERFORM plinth_make_current(v_new);

    SELECT v.etag, to_char(v.ts AT TIME ZONE 'UTC',
                           'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
        INTO etag, last_modified
        FROM versions v WHERE v.version_id = v_new;
END $$;
