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
