-- Batch GET (POST /{bucket}?batch): the metadata of every entry of one
-- request in one round trip. The entries arrive as three parallel arrays
-- (bucket, key, version id or NULL for the current version); each entry
-- gets one row (a single-PUT object) or one row per stored segment (a
-- multipart object), in request order, with the reason it cannot be read
-- in "code" when it cannot: NoSuchBucket, AccessDenied (the caller, NULL
-- for anonymous, neither owns the bucket nor is it or the version
-- public-read: GetObject's rule), NoSuchKey, NoSuchVersion, or
-- MethodNotAllowed (a version id that names a delete marker).
CREATE FUNCTION plinth_batch_get(p_caller text, p_buckets text[],
    p_keys text[], p_vids text[])
RETURNS TABLE (idx integer, code text, vid text, blob text, size bigint,
    etag text, nodes text, mtime bigint, mp_parts integer,
    seg_part integer, seg_blob text, seg_offset bigint, seg_size bigint,
    seg_blob_offset bigint, seg_nodes text)
LANGUAGE sql STABLE AS $$
SELECT e.i::integer,
       CASE WHEN b.bucket_id IS NULL THEN 'NoSuchBucket'
            WHEN NOT ((p_caller IS NOT NULL AND b.owner_id = p_caller)
                      OR b.acl = 'public-read'
                      OR coalesce(v.acl = 'public-read', false))
                 THEN 'AccessDenied'
            WHEN o.version_id IS NULL
                 THEN CASE WHEN e.vid IS NULL THEN 'NoSuchKey'
                           ELSE 'NoSuchVersion' END
            WHEN o.deleted
                 THEN CASE WHEN e.vid IS NULL THEN 'NoSuchKey'
                           ELSE 'MethodNotAllowed' END
       END,
       coalesce(v.vid, 'null'), replace(v.blob_id::text, '-', ''), v.size,
       v.etag, array_to_string(v.nodes, ','),
       extract(epoch FROM v.ts)::bigint, v.parts,
       vp.part_number, replace(vp.blob_id::text, '-', ''), vp.part_offset,
       vp.size, vp.blob_offset, array_to_string(vp.nodes, ',')
FROM unnest(p_buckets, p_keys, p_vids) WITH ORDINALITY AS e(bucket, key, vid, i)
LEFT JOIN buckets b ON b.name = e.bucket
LEFT JOIN LATERAL (
    (SELECT x.version_id, x.deleted FROM objects x
     WHERE e.vid IS NULL AND x.bucket_id = b.bucket_id AND x.key = e.key)
    UNION ALL
    (SELECT x.version_id, x.delete_marker FROM versions x
     WHERE e.vid IS NOT NULL AND x.bucket_id = b.bucket_id
       AND x.key = e.key AND x.state = 'committed'
       AND CASE WHEN e.vid = 'null' THEN x.vid IS NULL ELSE x.vid = e.vid END
       AND NOT (x.delete_marker AND b.versioning = 'Unversioned')
     ORDER BY x.ts DESC, x.version_id DESC LIMIT 1)) o ON true
LEFT JOIN versions v ON v.version_id = o.version_id
LEFT JOIN version_parts vp ON vp.version_id = v.version_id AND NOT o.deleted
ORDER BY e.i, vp.part_number, vp.seg
$$;
