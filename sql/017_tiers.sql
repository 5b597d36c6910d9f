-- Plinth metadata schema, migration 017: storage tiers and the rules that
-- move objects between them.
--
-- 015 gave buckets, versions and uploads a storage_class and mapped each
-- class to a node tier (plinth_storage_class_tier). Here:
--   * writes record their class (x-amz-storage-class, else the bucket's
--     default) and gateways place them on nodes of its tier;
--   * repair and rebalancing judge a blob per (blob, tier): a blob shared
--     by rows of different tiers (CopyObject with another class) is two
--     independent placements, so rebalancing one never drops the other's
--     copies;
--   * lifecycle configurations (S3's PutBucketLifecycleConfiguration) and
--     Plinth's access-based tiering rule, both carried out by repaird.

-- ------------------------------------------------------------ classes

-- The tier a version's class maps to (unknown or NULL: hot).
CREATE FUNCTION plinth_class_tier(p_class text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(plinth_storage_class_tier(p_class), 'hot');
$$;

-- When the class last changed (a lifecycle or access move): the access
-- rule waits its N days again from there before moving it further down.
ALTER TABLE versions ADD COLUMN class_changed timestamptz;

-- PutObject, step 1, as 008's plinth_put_begin_v, with the class:
-- p_class (x-amz-storage-class, validated by the gateway) or, when NULL,
-- the bucket's default. Returns the class, so the gateway places the
-- write on nodes of its tier.
CREATE FUNCTION plinth_put_begin_c(p_bucket text, p_key text, p_size bigint,
    p_etag text, p_content_type text, p_meta text, p_owner text,
    p_acl text, p_class text, OUT version_id bigint, OUT blob_id text,
    OUT vid text, OUT versioned boolean, OUT storage_class text)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT b.version_id, b.blob_id, b.vid, b.versioned
        INTO version_id, blob_id, vid, versioned
        FROM plinth_put_begin_v(p_bucket, p_key, p_size, p_etag,
                                p_content_type, p_meta, p_owner, p_acl) b;
    UPDATE versions v
       SET storage_class = coalesce(p_class, k.storage_class)
      FROM buckets k
     WHERE v.version_id = plinth_put_begin_c.version_id
       AND k.bucket_id = v.bucket_id
    RETURNING v.storage_class INTO storage_class;
END $$;


-- ------------------------------------------------- placement per tier

-- 010's view with each reference's tier (the class of its version, or of
-- its open upload).
CREATE OR REPLACE VIEW plinth_live_blobs AS
    SELECT v.blob_id, v.nodes, v.size, b.name || '/' || v.key AS rkey,
           v.version_id AS ref, plinth_class_tier(v.storage_class) AS tier
      FROM versions v JOIN buckets b ON b.bucket_id = v.bucket_id
     WHERE v.state = 'committed' AND NOT v.delete_marker
       AND v.blob_id IS NOT NULL
    UNION ALL
    SELECT vp.blob_id, vp.nodes, vp.size,
           replace(vp.blob_id::text, '-', ''), vp.version_id,
           plinth_class_tier(v.storage_class)
      FROM version_parts vp JOIN versions v ON v.version_id = vp.version_id
     WHERE v.state = 'committed'
    UNION ALL
    SELECT up.blob_id, up.nodes, up.size,
           replace(up.blob_id::text, '-', ''), 0,
           plinth_class_tier(u.storage_class)
      FROM upload_parts up JOIN uploads u ON u.upload_id = up.upload_id
     WHERE u.state = 'open';


-- 010's repair candidates, per (blob, tier).
DROP FUNCTION plinth_repair_candidates(integer[], integer, uuid, integer);
CREATE FUNCTION plinth_repair_candidates(p_live integer[], p_rf integer,
    p_after uuid, p_limit integer)
RETURNS TABLE (blob_id uuid, size bigint, rkey text, nodes integer[],
               good integer[], bad integer[], tier text)
LANGUAGE sql STABLE AS $$
    WITH agg AS (
        SELECT l.blob_id, l.tier, max(l.size) AS size,
               (array_agg(l.rkey ORDER BY l.ref))[1] AS rkey,
               coalesce(array_agg(DISTINCT n.n) FILTER (WHERE n.n IS NOT NULL),
                        '{}') AS nodes
          FROM plinth_live_blobs l
          LEFT JOIN LATERAL unnest(l.nodes) AS n(n) ON true
         WHERE p_after IS NULL OR l.blob_id > p_after
         GROUP BY l.blob_id, l.tier
    ), marked AS (
        SELECT a.*,
               coalesce(array(SELECT q.node_id FROM repair_queue q
                               WHERE q.blob_id = a.blob_id
                                 AND q.node_id = ANY (a.nodes)
                               ORDER BY q.node_id), '{}') AS bad
          FROM agg a
    ), judged AS (
        SELECT m.*,
               array(SELECT x FROM unnest(m.nodes) AS x
                      WHERE x = ANY (p_live) AND NOT x = ANY (m.bad)
                      ORDER BY x) AS good
          FROM marked m
    )
    SELECT j.blob_id, j.size, j.rkey, j.nodes, j.good, j.bad, j.tier
      FROM judged j
     WHERE cardinality(j.good) < p_rf OR cardinality(j.bad) > 0
     ORDER BY j.blob_id, j.tier
     LIMIT p_limit;
$$;


-- 012's placements, per (blob, tier).
DROP FUNCTION plinth_placements(uuid, integer);
CREATE FUNCTION plinth_placements(p_after uuid, p_limit integer)
RETURNS TABLE (blob_id uuid, rkey text, nodes integer[], tier text)
LANGUAGE sql STABLE AS $$
    SELECT l.blob_id, (array_agg(l.rkey ORDER BY l.ref))[1],
           coalesce(array_agg(DISTINCT n.n) FILTER (WHERE n.n IS NOT NULL),
                    '{}'), l.tier
      FROM plinth_live_blobs l
      LEFT JOIN LATERAL unnest(l.nodes) AS n(n) ON true
     WHERE p_after IS NULL OR l.blob_id > p_after
     GROUP BY l.blob_id, l.tier
     ORDER BY l.blob_id, l.tier
     LIMIT p_limit;
$$;


-- 010's plinth_repair_placement for the rows of one tier only (NULL: all
-- rows, as 010's). Removed copies go to garbage_blobs; garbage collection
-- keeps any copy another row (of another tier) still names.
CREATE FUNCTION plinth_repair_placement(p_blob uuid, p_add integer[],
    p_remove integer[], p_tier text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n  integer := 0;
    c  integer;
    g  integer[];
BEGIN
    IF p_tier IS NULL THEN
        RETURN plinth_repair_placement(p_blob, p_add, p_remove);
    END IF;
    UPDATE versions SET nodes = plinth_nodes_merge(nodes, p_add, p_remove)
        WHERE blob_id = p_blob AND plinth_class_tier(storage_class) = p_tier;
    GET DIAGNOSTICS c = ROW_COUNT;
    n := n + c;
    UPDATE version_parts vp
       SET nodes = plinth_nodes_merge(vp.nodes, p_add, p_remove)
      FROM versions v
     WHERE vp.blob_id = p_blob AND v.version_id = vp.version_id
       AND plinth_class_tier(v.storage_class) = p_tier;
    GET DIAGNOSTICS c = ROW_COUNT;
    n := n + c;
    UPDATE upload_parts up
       SET nodes = plinth_nodes_merge(up.nodes, p_add, p_remove)
      FROM uploads u
     WHERE up.blob_id = p_blob AND u.upload_id = up.upload_id
       AND plinth_class_tier(u.storage_class) = p_tier;
    GET DIAGNOSTICS c = ROW_COUNT;
    n := n + c;
    g := array(SELECT x FROM unnest(p_remove) AS x WHERE NOT x = ANY (p_add));
    IF cardinality(g) > 0 THEN
        INSERT INTO garbage_blobs (blob_id, nodes, reason)
            VALUES (p_blob, g, 'repaired away');
    END IF;
    DELETE FROM repair_queue
        WHERE blob_id = p_blob
          AND (node_id = ANY (p_remove) OR node_id = ANY (p_add));
    RETURN n;
END $$;


-- CreateBucket with the bucket's default class (x-plinth-storage-class;
-- NULL: STANDARD).
CREATE FUNCTION plinth_bucket_create_c(p_name text, p_owner text,
    p_acl text, p_class text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    v_id := plinth_bucket_create(p_name, p_owner, p_acl);
    UPDATE buckets SET storage_class = coalesce(p_class, 'STANDARD')
        WHERE bucket_id = v_id;
    RETURN v_id;
END $$;


-- ------------------------------------------------------------ lifecycle

-- A bucket's lifecycle configuration (PutBucketLifecycleConfiguration):
-- the document as the owner sent it (GetBucketLifecycleConfiguration
-- answers it) and its rules, one row each, as repaird reads them.
CREATE TABLE bucket_lifecycle (
    bucket_id   bigint PRIMARY KEY
                REFERENCES buckets (bucket_id) ON DELETE CASCADE,
    xml         text NOT NULL,
    updated     timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE lifecycle_rules (
    bucket_id        bigint NOT NULL
                     REFERENCES buckets (bucket_id) ON DELETE CASCADE,
    position         integer NOT NULL,         -- order in the document
    rule_id          text,
    prefix           text COLLATE "C" NOT NULL DEFAULT '',
    enabled          boolean NOT NULL,
    -- Transition: after this many days (from the version's creation) the
    -- current version moves to the class; at most one per class
    ia_days          integer,                  -- STANDARD_IA
    glacier_days     integer,                  -- GLACIER
    deep_days        integer,                  -- DEEP_ARCHIVE
    -- Expiration: the current version is deleted (a delete marker in a
    -- versioned bucket) this many days after its creation
    expire_days      integer,
    -- NoncurrentVersionExpiration: a noncurrent version is deleted for
    -- good this many days after it stopped being current
    noncurrent_days  integer,
    PRIMARY KEY (bucket_id, position)
);

-- Replaces the configuration (owner only: PL011 / PL001). The arrays are
-- parallel, one element per rule, validated by the gateway.
CREATE FUNCTION plinth_set_lifecycle(p_bucket text, p_caller text,
    p_xml text, p_ids text[], p_prefixes text[], p_enabled boolean[],
    p_ia integer[], p_glacier integer[], p_deep integer[],
    p_expire integer[], p_noncurrent integer[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_bucket bigint;
    i        integer;
BEGIN
    v_bucket := plinth_bucket_owned(p_bucket, p_caller);
    DELETE FROM lifecycle_rules WHERE bucket_id = v_bucket;
    INSERT INTO bucket_lifecycle (bucket_id, xml) VALUES (v_bucket, p_xml)
        ON CONFLICT (bucket_id) DO UPDATE
        SET xml = EXCLUDED.xml, updated = clock_timestamp();
    FOR i IN 1 .. coalesce(cardinality(p_enabled), 0) LOOP
        INSERT INTO lifecycle_rules (bucket_id, position, rule_id, prefix,
            enabled, ia_days, glacier_days, deep_days, expire_days,
            noncurrent_days)
        VALUES (v_bucket, i, p_ids[i], coalesce(p_prefixes[i], ''),
            p_enabled[i], p_ia[i], p_glacier[i], p_deep[i], p_expire[i],
            p_noncurrent[i]);
    END LOOP;
    RETURN coalesce(cardinality(p_enabled), 0);
END $$;

-- The stored document, or no row (NoSuchLifecycleConfiguration).
CREATE FUNCTION plinth_get_lifecycle(p_bucket text, p_caller text)
RETURNS TABLE (xml text) LANGUAGE plpgsql AS $$
DECLARE
    v_bucket bigint;
BEGIN
    v_bucket := plinth_bucket_owned(p_bucket, p_caller);
    RETURN QUERY SELECT l.xml FROM bucket_lifecycle l
        WHERE l.bucket_id = v_bucket;
END $$;

CREATE FUNCTION plinth_delete_lifecycle(p_bucket text, p_caller text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_bucket bigint;
BEGIN
    v_bucket := plinth_bucket_owned(p_bucket, p_caller);
    DELETE FROM lifecycle_rules WHERE bucket_id = v_bucket;
    DELETE FROM bucket_lifecycle WHERE bucket_id = v_bucket;
    RETURN 0;
END $$;


-- ------------------------------------------ Plinth's access-based rule

-- Per bucket (set with bin/plinth-admin tiering): a current object not
-- read for down_days moves one tier down (hot -> warm -> cold); one read
-- at least up_reads times within a window of up_days moves one tier up.
-- Reads are object_access's (the gateways' flushed GET counts).
CREATE TABLE bucket_tiering (
    bucket_id   bigint PRIMARY KEY
                REFERENCES buckets (bucket_id) ON DELETE CASCADE,
    down_days   double precision NOT NULL CHECK (down_days > 0),
    up_reads    bigint NOT NULL CHECK (up_reads > 0),
    up_days     double precision NOT NULL CHECK (up_days > 0)
);

-- The read-count window of each key of such a bucket: reads counted
-- since window_start are read_count - base_count. repaird restarts a
-- window that is up_days old (plinth_tiering_windows), so "read M times
-- within K days" means M reads within one window.
CREATE TABLE tiering_windows (
    bucket_id     bigint NOT NULL
                  REFERENCES buckets (bucket_id) ON DELETE CASCADE,
    key           text COLLATE "C" NOT NULL,
    window_start  timestamptz NOT NULL,
    base_count    bigint NOT NULL,
    PRIMARY KEY (bucket_id, key)
);


-- Opens a window for every current object of a bucket with the rule
-- (base: its reads so far, 0 if never read), restarts windows up_days
-- old, and drops those of keys no longer there; p_day: seconds in a day
-- (repaird's lifecycle_day_seconds). Returns the windows opened or
-- restarted.
CREATE FUNCTION plinth_tiering_windows(p_day double precision)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM tiering_windows w
     WHERE NOT EXISTS (SELECT 1 FROM objects o
                        WHERE o.bucket_id = w.bucket_id AND o.key = w.key
                          AND NOT o.deleted)
        OR NOT EXISTS (SELECT 1 FROM bucket_tiering t
                        WHERE t.bucket_id = w.bucket_id);
    INSERT INTO tiering_windows AS w (bucket_id, key, window_start,
                                      base_count)
        SELECT o.bucket_id, o.key, clock_timestamp(),
               coalesce(a.read_count, 0)
          FROM objects o JOIN bucket_tiering t USING (bucket_id)
          LEFT JOIN object_access a ON a.bucket_id = o.bucket_id
               AND a.key = o.key
         WHERE NOT o.deleted
    ON CONFLICT (bucket_id, key) DO UPDATE
        SET window_start = EXCLUDED.window_start,
            base_count = EXCLUDED.base_count
        WHERE w.window_start < clock_timestamp() - make_interval(secs =>
              (SELECT t.up_days * p_day FROM bucket_tiering t
                WHERE t.bucket_id = w.bucket_id));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;


-- The coldness order of the classes.
CREATE FUNCTION plinth_class_rank(p_class text)
RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_class WHEN 'STANDARD_IA' THEN 1 WHEN 'GLACIER' THEN 2
                        WHEN 'DEEP_ARCHIVE' THEN 3 ELSE 0 END;
$$;


-- What lifecycle rules and the access rule want done now, at most
-- p_limit rows; p_day: seconds in a day. action:
--   move      the current version goes to class target (a lifecycle
--             Transition, or the access rule's one tier down or up)
--   expire    the current version is deleted as DeleteObject does
--   noncurrent  a noncurrent version is deleted for good
-- A move of a multipart version (blob_id NULL) moves its parts' blobs
-- (repaird reads them from version_parts). A key a lifecycle Transition rule matches is
-- never moved up by the access rule (the configuration wins).
CREATE FUNCTION plinth_lifecycle_due(p_day double precision,
    p_limit integer)
RETURNS TABLE (action text, version_id bigint, target text, reason text,
               blob_id text, rkey text, nodes text, size bigint,
               storage_class text)
LANGUAGE sql STABLE AS $$
    WITH youngest AS (
        -- per bucket, the fewest days after which anything can be due:
        -- younger objects are not looked at (the access rule's moves up
        -- have no age: 0)
        SELECT m.bucket_id, min(m.d) AS d FROM (
            SELECT r.bucket_id, least(r.ia_days, r.glacier_days,
                                      r.deep_days, r.expire_days) AS d
              FROM lifecycle_rules r WHERE r.enabled
            UNION ALL
            SELECT t.bucket_id, 0 FROM bucket_tiering t) m
         WHERE m.d IS NOT NULL
         GROUP BY m.bucket_id
    ), cur AS (
        SELECT v.version_id, v.bucket_id, v.key, v.ts, v.blob_id, v.nodes,
               v.size, v.storage_class, v.class_changed, v.parts,
               b.name AS bucket_name,
               extract(epoch FROM clock_timestamp() - v.ts) / p_day AS age
          FROM youngest y
          JOIN buckets b ON b.bucket_id = y.bucket_id
          JOIN objects o ON o.bucket_id = y.bucket_id
               AND o.ts <= clock_timestamp()
                           - make_interval(secs => y.d * p_day)
          JOIN versions v ON v.version_id = o.version_id
         WHERE NOT o.deleted AND v.state = 'committed'
           AND NOT v.delete_marker
    ), rule_target AS (
        -- the coldest class a matching enabled Transition has reached
        SELECT c.version_id,
               max(x.rank) AS rank,
               bool_or(r.expire_days IS NOT NULL
                       AND c.age >= r.expire_days) AS expire,
               bool_or(r.ia_days IS NOT NULL OR r.glacier_days IS NOT NULL
                       OR r.deep_days IS NOT NULL) AS governed
          FROM cur c
          JOIN lifecycle_rules r ON r.bucket_id = c.bucket_id AND r.enabled
               AND left(c.key, length(r.prefix)) = r.prefix
          LEFT JOIN LATERAL (VALUES
               (1, r.ia_days), (2, r.glacier_days), (3, r.deep_days))
               AS x(rank, days) ON x.days IS NOT NULL AND c.age >= x.days
         GROUP BY c.version_id
    ), expire AS (
        SELECT 'expire'::text AS action, c.version_id, NULL::text AS target,
               'lifecycle Expiration'::text AS reason, c.blob_id, c.rkey,
               c.nodes, c.size, c.storage_class
          FROM (SELECT cur.*, cur.bucket_name || '/' || cur.key AS rkey
                  FROM cur) c
          JOIN rule_target t ON t.version_id = c.version_id AND t.expire
    ), moves AS (
        SELECT 'move'::text, c.version_id,
               CASE t.rank WHEN 1 THEN 'STANDARD_IA' WHEN 2 THEN 'GLACIER'
                           ELSE 'DEEP_ARCHIVE' END,
               'lifecycle Transition'::text, c.blob_id,
               c.bucket_name || '/' || c.key, c.nodes, c.size,
               c.storage_class
          FROM cur c
          JOIN rule_target t ON t.version_id = c.version_id
         WHERE NOT t.expire AND t.rank IS NOT NULL
           AND t.rank > plinth_class_rank(c.storage_class)
           AND (c.blob_id IS NOT NULL OR c.parts > 0)
    ), access_down AS (
        SELECT 'move'::text, c.version_id,
               CASE plinth_class_rank(c.storage_class)
                    WHEN 0 THEN 'STANDARD_IA' ELSE 'GLACIER' END,
               'not read for ' || tg.down_days || ' days', c.blob_id,
               c.bucket_name || '/' || c.key, c.nodes, c.size,
               c.storage_class
          FROM cur c
          JOIN bucket_tiering tg ON tg.bucket_id = c.bucket_id
          LEFT JOIN object_access a ON a.bucket_id = c.bucket_id
               AND a.key = c.key
          LEFT JOIN rule_target t ON t.version_id = c.version_id
         WHERE plinth_class_rank(c.storage_class) < 2
           AND (c.blob_id IS NOT NULL OR c.parts > 0)
           AND NOT coalesce(t.expire, false)
           AND extract(epoch FROM clock_timestamp() - greatest(c.ts,
                   a.last_access, c.class_changed)) / p_day >= tg.down_days
           -- a Transition due now goes first (moves further down)
           AND NOT (coalesce(t.rank, 0) > plinth_class_rank(c.storage_class))
    ), access_up AS (
        SELECT 'move'::text, c.version_id,
               CASE plinth_class_rank(c.storage_class)
                    WHEN 1 THEN 'STANDARD' ELSE 'STANDARD_IA' END,
               (a.read_count - w.base_count) || ' reads since '
                   || to_char(w.window_start, 'YYYY-MM-DD"T"HH24:MI:SS'),
               c.blob_id, c.bucket_name || '/' || c.key, c.nodes, c.size,
               c.storage_class
          FROM cur c
          JOIN bucket_tiering tg ON tg.bucket_id = c.bucket_id
          JOIN object_access a ON a.bucket_id = c.bucket_id
               AND a.key = c.key
          JOIN tiering_windows w ON w.bucket_id = c.bucket_id
               AND w.key = c.key
          LEFT JOIN rule_target t ON t.version_id = c.version_id
         WHERE plinth_class_rank(c.storage_class) > 0
           AND (c.blob_id IS NOT NULL OR c.parts > 0)
           AND NOT coalesce(t.governed, false)
           AND a.read_count - w.base_count >= tg.up_reads
    ), noncurrent AS (
        SELECT 'noncurrent'::text, v.version_id, NULL::text,
               'lifecycle NoncurrentVersionExpiration'::text, v.blob_id,
               b.name || '/' || v.key, v.nodes, v.size, v.storage_class
          FROM versions v
          JOIN buckets b ON b.bucket_id = v.bucket_id
          JOIN objects o ON o.bucket_id = v.bucket_id AND o.key = v.key
          JOIN lifecycle_rules r ON r.bucket_id = v.bucket_id AND r.enabled
               AND r.noncurrent_days IS NOT NULL
               AND left(v.key, length(r.prefix)) = r.prefix
         WHERE v.state = 'committed' AND o.version_id <> v.version_id
           AND b.versioning <> 'Unversioned'
           -- noncurrent since the next newer version was written
           AND extract(epoch FROM clock_timestamp() - (
                   SELECT min(n.ts) FROM versions n
                    WHERE n.bucket_id = v.bucket_id AND n.key = v.key
                      AND n.state = 'committed' AND n.ts > v.ts)) / p_day
               >= r.noncurrent_days
    )
    SELECT e.action, e.version_id, e.target, e.reason,
           replace(e.blob_id::text, '-', ''), e.rkey, e.nodes::text, e.size,
           e.storage_class
      FROM (SELECT * FROM expire UNION ALL SELECT * FROM moves
            UNION ALL SELECT * FROM access_down
            UNION ALL SELECT * FROM access_up
            UNION ALL SELECT * FROM noncurrent) e
     ORDER BY e.version_id
     LIMIT p_limit;
$$;


-- A move's placement change, in one transaction: only if the version is
-- still committed, of p_from class, on exactly p_old nodes (nothing
-- changed since repaird looked), it gets p_new nodes and class p_to; the
-- copies on p_old nodes that p_new does not name go to garbage_blobs
-- (garbage collection keeps any another row still names). false: it
-- changed meanwhile; repaird then gives its new copies up the same way.
CREATE FUNCTION plinth_tier_move(p_version bigint, p_old integer[],
    p_new integer[], p_from text, p_to text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_blob uuid;
    g      integer[];
BEGIN
    UPDATE versions SET nodes = p_new, storage_class = p_to,
                        class_changed = clock_timestamp()
     WHERE version_id = p_version AND state = 'committed'
       AND storage_class = p_from
       AND nodes @> p_old AND nodes <@ p_old
    RETURNING blob_id INTO v_blob;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    g := array(SELECT x FROM unnest(p_old) AS x WHERE NOT x = ANY (p_new));
    IF cardinality(g) > 0 THEN
        INSERT INTO garbage_blobs (blob_id, nodes, reason)
            VALUES (v_blob, g, 'tier move');
    END IF;
    -- a window restarts with the move, so one busy window moves it once
    UPDATE tiering_windows w SET window_start = clock_timestamp(),
           base_count = coalesce((SELECT a.read_count FROM object_access a
                                   WHERE a.bucket_id = w.bucket_id
                                     AND a.key = w.key), 0)
      FROM versions v
     WHERE v.version_id = p_version AND w.bucket_id = v.bucket_id
       AND w.key = v.key;
    RETURN true;
END $$;


-- Expiration of a current version, or NoncurrentVersionExpiration of a
-- noncurrent one: done as its owner's DeleteObject (a delete marker in a
-- versioned bucket) or DeleteObject?versionId=, only if the version is
-- still what repaird selected (current, or still noncurrent).
CREATE FUNCTION plinth_lifecycle_expire(p_version bigint, p_current boolean)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v  record;
    o  objects%ROWTYPE;
BEGIN
    SELECT x.bucket_id, x.key, x.vid, x.state, b.name, b.owner_id
      INTO v FROM versions x JOIN buckets b USING (bucket_id)
     WHERE x.version_id = p_version;
    IF NOT FOUND OR v.state <> 'committed' THEN
        RETURN false;
    END IF;
    SELECT * INTO o FROM objects
     WHERE bucket_id = v.bucket_id AND key = v.key FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF p_current THEN
        IF o.version_id <> p_version OR o.deleted THEN
            RETURN false;
        END IF;
        PERFORM plinth_delete_version(v.name, v.key, v.owner_id, NULL);
    ELSE
        IF o.version_id = p_version THEN
            RETURN false;
        END IF;
        PERFORM plinth_delete_version(v.name, v.key, v.owner_id,
                                      coalesce(v.vid, 'null'));
    END IF;
    RETURN true;
END $$;


-- ------------------------------------------- copies and multipart uploads

-- CopyObject with the copy's class: x-amz-storage-class, else the
-- destination bucket's default (STANDARD unless set: S3's default for a
-- copy). The copy shares the source's blobs and nodes; when its class's
-- tier is another, rebalancing (per blob and tier) copies them to the
-- new tier's nodes, and the source keeps its own.
CREATE FUNCTION plinth_copy_object_c(p_src_bucket text, p_src_key text,
    p_dst_bucket text, p_dst_key text, p_caller text, p_replace boolean,
    p_content_type text, p_meta text, p_acl text,
    p_if_match text, p_if_none_match text,
    p_if_modified_since timestamptz, p_if_unmodified_since timestamptz,
    p_src_vid text, p_class text,
    OUT etag text, OUT last_modified text, OUT vid text,
    OUT versioned boolean, OUT src_vid text)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT c.etag, c.last_modified, c.vid, c.versioned, c.src_vid
      INTO etag, last_modified, vid, versioned, src_vid
      FROM plinth_copy_object(p_src_bucket, p_src_key, p_dst_bucket,
               p_dst_key, p_caller, p_replace, p_content_type, p_meta,
               p_acl, p_if_match, p_if_none_match, p_if_modified_since,
               p_if_unmodified_since, p_src_vid) c;
    -- the row plinth_copy_object inserted: this session's last version id
    UPDATE versions v SET storage_class = coalesce(p_class, b.storage_class)
      FROM buckets b
     WHERE v.version_id = currval(pg_get_serial_sequence('versions',
                                                         'version_id'))
       AND b.bucket_id = v.bucket_id AND b.name = p_dst_bucket
       AND v.key = p_dst_key;
END $$;


-- CreateMultipartUpload with the upload's class (else the bucket's
-- default); its parts are placed on the class's tier, and the object
-- completed from it has the class.
CREATE FUNCTION plinth_mpu_create_c(p_bucket text, p_key text,
    p_content_type text, p_meta text, p_owner text, p_cks_alg text,
    p_cks_type text, p_class text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_id text;
BEGIN
    v_id := plinth_mpu_create(p_bucket, p_key, p_content_type, p_meta,
                              p_owner, p_cks_alg, p_cks_type);
    UPDATE uploads u SET storage_class = coalesce(p_class, b.storage_class)
      FROM buckets b
     WHERE u.upload_id = v_id AND b.bucket_id = u.bucket_id;
    RETURN v_id;
END $$;


CREATE FUNCTION plinth_mpu_complete_c(p_bucket text, p_key text,
    p_upload text, p_parts integer[], p_etags text[], p_caller text,
    p_if_none_match boolean, p_if_match text, p_cks_alg text,
    p_cks text, p_cks_type text,
    OUT etag text, OUT vid text, OUT versioned boolean)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT c.etag, c.vid, c.versioned INTO etag, vid, versioned
      FROM plinth_mpu_complete(p_bucket, p_key, p_upload, p_parts, p_etags,
               p_caller, p_if_none_match, p_if_match, p_cks_alg, p_cks,
               p_cks_type) c;
    UPDATE versions v SET storage_class = u.storage_class
      FROM uploads u
     WHERE u.upload_id = p_upload AND v.version_id = u.version_id
       AND v.storage_class IS DISTINCT FROM u.storage_class;
END $$;


-- A multipart version's move: for each of its part blobs p_blobs[i],
-- every version_parts row of the version naming it must still be on
-- nodes within p_old[i] (an integer[] literal); they all get p_new[i].
-- Then the version's class, and the old copies go to garbage_blobs.
-- false (and nothing changed) if anything changed meanwhile.
CREATE FUNCTION plinth_tier_move_parts(p_version bigint, p_blobs uuid[],
    p_old text[], p_new text[], p_from text, p_to text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    i      integer;
    o      integer[];
    n      integer[];
    g      integer[];
BEGIN
    PERFORM 1 FROM versions
     WHERE version_id = p_version AND state = 'committed'
       AND storage_class = p_from AND blob_id IS NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    FOR i IN 1 .. coalesce(cardinality(p_blobs), 0) LOOP
        o := p_old[i]::integer[];
        n := p_new[i]::integer[];
        IF EXISTS (SELECT 1 FROM version_parts vp
                    WHERE vp.version_id = p_version
                      AND vp.blob_id = p_blobs[i]
                      AND NOT vp.nodes <@ o) THEN
            RETURN false;           -- checked before any write
        END IF;
    END LOOP;
    -- every check passed: now write
    FOR i IN 1 .. coalesce(cardinality(p_blobs), 0) LOOP
        o := p_old[i]::integer[];
        n := p_new[i]::integer[];
        UPDATE version_parts SET nodes = n
         WHERE version_id = p_version AND blob_id = p_blobs[i];
        g := array(SELECT x FROM unnest(o) AS x WHERE NOT x = ANY (n));
        IF cardinality(g) > 0 THEN
            INSERT INTO garbage_blobs (blob_id, nodes, reason)
                VALUES (p_blobs[i], g, 'tier move');
        END IF;
    END LOOP;
    UPDATE versions SET storage_class = p_to, class_changed = clock_timestamp()
     WHERE version_id = p_version;
    UPDATE tiering_windows w SET window_start = clock_timestamp(),
           base_count = coalesce((SELECT a.read_count FROM object_access a
                                   WHERE a.bucket_id = w.bucket_id
                                     AND a.key = w.key), 0)
      FROM versions v
     WHERE v.version_id = p_version AND w.bucket_id = v.bucket_id
       AND w.key = v.key;
    RETURN true;
END $$;
