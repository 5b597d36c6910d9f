-- Plinth metadata schema, migration 011: garbage collection by repaird.
--
-- A blob copy on node N may be deleted only when no row that may still be
-- read names the blob on N: plinth_blob_refs lists every row that names a
-- blob (versions, version_parts, upload_parts), in any state. EVERY NEW
-- PLACE THAT NAMES A BLOB MUST BE ADDED TO plinth_blob_refs, or garbage
-- collection will delete data it does not know is in use.
--
-- What is collected, after its grace period (repaird's configuration):
--   versions in state garbage or failed (replaced, deleted, failed
--     writes): their copies, then the rows (and their version_parts);
--   garbage_blobs rows (replaced, aborted, unlisted parts, copies repair
--     moved away from offline nodes): the copies they name;
--   versions still pending long after they began (writes that never
--     committed): the rows; their copies, if any landed, are orphans;
--   open multipart uploads older than a maximum age: aborted, so their
--     parts become garbage_blobs rows;
--   orphans: blob files on a node that no row names on that node, older
--     than the orphan grace period (found by the scrub's listing).

CREATE VIEW plinth_blob_refs AS
    SELECT v.blob_id, v.nodes, v.state
      FROM versions v WHERE v.blob_id IS NOT NULL
    UNION ALL
    SELECT vp.blob_id, vp.nodes, coalesce(v.state, 'committed')
      FROM version_parts vp LEFT JOIN versions v ON v.version_id = vp.version_id
    UNION ALL
    SELECT up.blob_id, up.nodes, coalesce(u.state, 'open')
      FROM upload_parts up LEFT JOIN uploads u ON u.upload_id = up.upload_id;


-- The nodes a blob must stay on: the union of the nodes of every row that
-- may still be read (committed versions and their parts, open uploads'
-- parts), and every node if a pending version names it (its nodes are not
-- recorded yet).
CREATE FUNCTION plinth_gc_keep_nodes(p_blob uuid)
RETURNS integer[] LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM versions v WHERE v.blob_id = p_blob
                     AND v.state = 'pending')
        THEN NULL
        ELSE coalesce((SELECT array_agg(DISTINCT n)
                         FROM plinth_blob_refs r, unnest(r.nodes) AS n
                        WHERE r.blob_id = p_blob
                          AND r.state IN ('committed', 'open')), '{}')
    END;
$$;


-- Dead versions older than p_grace seconds, oldest first: each copy to
-- delete (blob, node), or one row with NULL blob for a version with no
-- copy to delete (a delete marker, or copies all still in use).
CREATE FUNCTION plinth_gc_versions(p_grace double precision, p_limit integer)
RETURNS TABLE (version_id bigint, blob_id text, node integer)
LANGUAGE sql STABLE AS $$
    WITH dead AS (
        SELECT v.version_id FROM versions v
         WHERE v.state IN ('garbage', 'failed')
           AND v.state_changed < clock_timestamp()
                                 - make_interval(secs => p_grace)
           AND NOT EXISTS (SELECT 1 FROM objects o
                            WHERE o.version_id = v.version_id)
         ORDER BY v.state_changed
         LIMIT p_limit
    ), copies AS (
        SELECT d.version_id, v.blob_id, v.nodes FROM dead d
          JOIN versions v ON v.version_id = d.version_id
         WHERE v.blob_id IS NOT NULL
        UNION ALL
        SELECT d.version_id, vp.blob_id, vp.nodes FROM dead d
          JOIN version_parts vp ON vp.version_id = d.version_id
    ), todo AS (
        SELECT c.version_id, c.blob_id, n AS node
          FROM copies c, unnest(c.nodes) AS n,
               LATERAL plinth_gc_keep_nodes(c.blob_id) AS k(keep)
         WHERE k.keep IS NOT NULL AND NOT n = ANY (k.keep)
    )
    SELECT t.version_id, replace(t.blob_id::text, '-', ''), t.node
      FROM todo t
    UNION ALL
    SELECT d.version_id, NULL, NULL FROM dead d
    ORDER BY 1, 2 NULLS LAST, 3;
$$;


-- The dead version's copies are gone (or handed to garbage_blobs): the
-- row and its parts go, if it is still dead and not current.
CREATE FUNCTION plinth_gc_version_done(p_version bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM versions v WHERE v.version_id = p_version
        AND v.state IN ('garbage', 'failed')
        AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.version_id = p_version)
        FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    DELETE FROM version_parts WHERE version_id = p_version;
    DELETE FROM versions WHERE version_id = p_version;
    RETURN true;
END $$;


-- garbage_blobs rows older than p_grace seconds: each copy to delete
-- (ctid as text, blob, node), or (ctid, NULL, NULL) for a row with none.
CREATE FUNCTION plinth_gc_garbage_blobs(p_grace double precision,
    p_limit integer)
RETURNS TABLE (row_id text, blob_id text, node integer)
LANGUAGE sql STABLE AS $$
    WITH old AS (
        SELECT g.ctid AS row_id, g.blob_id, g.nodes FROM garbage_blobs g
         WHERE g.since < clock_timestamp() - make_interval(secs => p_grace)
         ORDER BY g.since
         LIMIT p_limit
    )
    SELECT o.row_id::text, replace(o.blob_id::text, '-', ''), n
      FROM old o, unnest(o.nodes) AS n,
           LATERAL plinth_gc_keep_nodes(o.blob_id) AS k(keep)
     WHERE k.keep IS NOT NULL AND NOT n = ANY (k.keep)
    UNION ALL
    SELECT o.row_id::text, NULL, NULL FROM old o
    ORDER BY 1, 2 NULLS LAST, 3;
$$;


-- Open uploads initiated more than p_age seconds ago are aborted (their
-- parts become garbage_blobs rows). Returns how many.
CREATE FUNCTION plinth_gc_expire_uploads(p_age double precision)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n  integer := 0;
    u  record;
BEGIN
    FOR u IN
        SELECT upload_id FROM uploads
         WHERE state = 'open'
           AND initiated < clock_timestamp() - make_interval(secs => p_age)
         ORDER BY initiated LIMIT 1000
         FOR UPDATE SKIP LOCKED
    LOOP
        INSERT INTO garbage_blobs (blob_id, nodes, reason)
            SELECT blob_id, nodes, 'expired' FROM upload_parts
             WHERE upload_id = u.upload_id;
        DELETE FROM upload_parts WHERE upload_id = u.upload_id;
        UPDATE uploads SET state = 'aborted',
                           state_changed = clock_timestamp()
         WHERE upload_id = u.upload_id;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;


-- Pending versions that began more than p_age seconds ago (writes that
-- never committed) go; a commit arriving later gets PL006 (retry the PUT).
CREATE FUNCTION plinth_gc_pending(p_age double precision)
RETURNS integer LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM versions
         WHERE state = 'pending'
           AND state_changed < clock_timestamp() - make_interval(secs => p_age)
        RETURNING 1)
    SELECT count(*)::integer FROM gone;
$$;


-- Of the blob ids listed on node p_node, those no row names on that node
-- (and no pending version names at all): orphans, once old enough.
CREATE FUNCTION plinth_gc_orphans(p_node integer, p_ids uuid[])
RETURNS TABLE (blob_id text) LANGUAGE sql STABLE AS $$
    SELECT replace(i::text, '-', '') FROM unnest(p_ids) AS i
     WHERE NOT EXISTS (SELECT 1 FROM plinth_blob_refs r
                        WHERE r.blob_id = i
                          AND (p_node = ANY (r.nodes) OR r.state = 'pending'))
       AND NOT EXISTS (SELECT 1 FROM garbage_blobs g
                        WHERE g.blob_id = i AND p_node = ANY (g.nodes));
$$;
