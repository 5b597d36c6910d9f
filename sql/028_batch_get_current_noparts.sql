-- Plinth metadata schema, migration 028: batch GET's metadata when no
-- entry names a version, without the parts.
--
-- plinth_batch_get_current (027) looked for version_parts rows for every
-- entry (a lateral subquery, skipped by a one-time filter unless the
-- version is multipart, under a Memoize node: a cache miss per entry).
-- Batches are mostly of small samples, none multipart: that machinery
-- was about a seventh of the statement (pgbench, one client, 256 keys of
-- 10 KiB objects: 1.08 - 1.14 ms against 0.90 ms without it). Here every
-- entry is one row, its seg_* columns NULL; a multipart version shows as
-- mp_parts not NULL, and the gateway then asks the whole batch again with
-- plinth_batch_get (sql/020), which has the parts, as GET does for a
-- multipart object (ngx_plinth_s3_batch.c, ngx_http_plinth_batch_meta).
--
-- Measured (RF=3, 2,000 10 KiB objects, batch GETs of 256 random keys, 8
-- clients, 8 s runs, one cluster with the two functions swapped in turn,
-- four times): objects/s 64,413 - 79,886 with 027's, 65,558 - 84,394 with
-- this one (each pair +2% to +8%); PostgreSQL's CPU per entry 5.8 - 6.5
-- us against 5.1 - 5.6, all processes' 24.5 - 27.7 us against 23.5 -
-- 26.6.
CREATE OR REPLACE FUNCTION plinth_batch_get_current(p_caller text,
    p_buckets text[], p_keys text[])
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
            WHEN v.version_id IS NULL OR v.deleted THEN 'NoSuchKey'
       END,
       coalesce(v.vid, 'null'), replace(v.blob_id::text, '-', ''), v.size,
       v.etag, array_to_string(v.nodes, ','),
       extract(epoch FROM v.ts)::bigint, v.parts,
       NULL::integer, NULL::text, NULL::bigint, NULL::bigint, NULL::bigint,
       NULL::text
FROM unnest(p_buckets, p_keys) WITH ORDINALITY AS e(bucket, key, i)
LEFT JOIN buckets b ON b.name = e.bucket
LEFT JOIN LATERAL (
    SELECT x.deleted, y.version_id, y.vid, y.blob_id, y.size, y.etag,
           y.nodes, y.ts, y.parts, y.acl
      FROM objects x JOIN versions y ON y.version_id = x.version_id
     WHERE x.bucket_id = b.bucket_id AND x.key = e.key OFFSET 0) v ON true
ORDER BY e.i
$$;
