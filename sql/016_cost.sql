-- Plinth metadata schema, migration 016: cost tracking and access patterns
-- (DESIGN.md, "Cost and tiers").
--
-- Stored bytes. Every committed version that is not a delete marker counts,
-- current and noncurrent alike (S3 bills every stored version), by its
-- logical size (a multipart object by its total size; a copy by its own
-- size, even where it shares its source's blobs), in the tier of its
-- storage_class (plinth_storage_class_tier of 015; an unknown class counts
-- as hot). Versions still pending, failed or garbage do not count, nor do
-- the parts of multipart uploads not yet completed. Statement-level
-- triggers on versions keep the totals current, in the same transaction,
-- as rows are inserted, change state, size or storage_class (a tier move
-- by lifecycle or repaird), or are deleted: no scan of versions is ever
-- needed to answer.
--
-- The totals are kept in 16 rows per bucket and tier (the shard is
-- version_id % 16): concurrent commits to one bucket then seldom wait for
-- the same row lock. Readers add the shards up.
--
-- Egress and reads. Gateways count the object bytes they send for GET
-- (ranges included) and the reads per key in shared memory, and flush the
-- sums every few seconds with one call of plinth_usage_flush: into
-- cost_egress (per bucket) and object_access (per key, 015).
--
-- Prices and RF are configuration kept here (cost_settings), so that every
-- gateway's API and bin/plinth-admin give the same figures:
--   hot, warm, cold   USD per GiB-month of stored bytes (x replication factor)
--   egress            USD per GiB sent
--   replication_factor  the RF costs are computed with: every gateway
--                     writes its plinth_replication_factor here when it
--                     flushes usage (a cluster runs one RF)
-- GiB = 2^30 bytes, as S3 bills "GB".
--
-- New SQLSTATEs: none (PL001 NoSuchBucket, PL011 AccessDenied, PL015
-- InvalidArgument are reused).

CREATE TABLE cost_tracking (
    bucket_id     bigint NOT NULL REFERENCES buckets (bucket_id) ON DELETE CASCADE,
    tier          text NOT NULL CHECK (tier IN ('hot', 'warm', 'cold')),
    shard         smallint NOT NULL,
    stored_bytes  bigint NOT NULL DEFAULT 0,
    versions      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket_id, tier, shard)
);

CREATE TABLE cost_egress (
    bucket_id     bigint PRIMARY KEY REFERENCES buckets (bucket_id) ON DELETE CASCADE,
    egress_bytes  bigint NOT NULL DEFAULT 0,
    reads         bigint NOT NULL DEFAULT 0,
    last_flush    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cost_settings (
    name          text PRIMARY KEY
                  CHECK (name IN ('hot', 'warm', 'cold', 'egress',
                                  'replication_factor')),
    value         numeric NOT NULL CHECK (value >= 0),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

INSERT INTO cost_settings (name, value) VALUES
    ('hot', 0.10), ('warm', 0.05), ('cold', 0.01), ('egress', 0.09),
    ('replication_factor', 3);

-- hottest objects of a bucket first (the admin API's hottest list)
CREATE INDEX object_access_reads_idx
    ON object_access (bucket_id, read_count DESC, last_access DESC);


CREATE FUNCTION plinth_cost_tier(p_class text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(plinth_storage_class_tier(p_class), 'hot')
$$;


-- The versions a statement changed, as deltas per (bucket, tier, shard),
-- added in key order: each statement takes its cost_tracking row locks in
-- the same order (no deadlock between two of them), and a statement that
-- changes a million versions (a bucket's deletion) is one upsert per row
-- touched, not one per version. Deltas that cancel (a committed version's
-- placement or ACL updated) write nothing. One statement-level trigger per
-- event (transition tables); the three share this shape:
--   grouped deltas -> only buckets that still exist -> upsert in key order
CREATE FUNCTION plinth_cost_versions_ins()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cost_tracking AS c (bucket_id, tier, shard, stored_bytes,
                                    versions)
        SELECT g.b, g.t, g.s, g.n, g.v FROM (
            SELECT bucket_id AS b, plinth_cost_tier(storage_class) AS t,
                   (version_id % 16)::smallint AS s, sum(size) AS n,
                   count(*) AS v
            FROM new_rows WHERE state = 'committed' AND NOT delete_marker
            GROUP BY 1, 2, 3) g
        WHERE EXISTS (SELECT 1 FROM buckets x WHERE x.bucket_id = g.b)
        ORDER BY g.b, g.t, g.s
    ON CONFLICT (bucket_id, tier, shard) DO UPDATE
        SET stored_bytes = c.stored_bytes + excluded.stored_bytes,
            versions = c.versions + excluded.versions;
    RETURN NULL;
END $$;

CREATE FUNCTION plinth_cost_versions_del()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cost_tracking AS c (bucket_id, tier, shard, stored_bytes,
                                    versions)
        SELECT g.b, g.t, g.s, g.n, g.v FROM (
            SELECT bucket_id AS b, plinth_cost_tier(storage_class) AS t,
                   (version_id % 16)::smallint AS s, -sum(size) AS n,
                   -count(*) AS v
            FROM old_rows WHERE state = 'committed' AND NOT delete_marker
            GROUP BY 1, 2, 3) g
        WHERE EXISTS (SELECT 1 FROM buckets x WHERE x.bucket_id = g.b)
        ORDER BY g.b, g.t, g.s
    ON CONFLICT (bucket_id, tier, shard) DO UPDATE
        SET stored_bytes = c.stored_bytes + excluded.stored_bytes,
            versions = c.versions + excluded.versions;
    RETURN NULL;
END $$;

CREATE FUNCTION plinth_cost_versions_upd()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cost_tracking AS c (bucket_id, tier, shard, stored_bytes,
                                    versions)
        SELECT g.b, g.t, g.s, g.n, g.v FROM (
            SELECT d.b, d.t, d.s, sum(d.n) AS n, sum(d.v) AS v
            FROM (SELECT bucket_id AS b, plinth_cost_tier(storage_class) AS t,
                         (version_id % 16)::smallint AS s, -size AS n,
                         -1 AS v
                  FROM old_rows WHERE state = 'committed' AND NOT delete_marker
                  UNION ALL
                  SELECT bucket_id, plinth_cost_tier(storage_class),
                         (version_id % 16)::smallint, size, 1
                  FROM new_rows WHERE state = 'committed' AND NOT delete_marker
                 ) d
            GROUP BY 1, 2, 3
            HAVING sum(d.n) <> 0 OR sum(d.v) <> 0) g
        WHERE EXISTS (SELECT 1 FROM buckets x WHERE x.bucket_id = g.b)
        ORDER BY g.b, g.t, g.s
    ON CONFLICT (bucket_id, tier, shard) DO UPDATE
        SET stored_bytes = c.stored_bytes + excluded.stored_bytes,
            versions = c.versions + excluded.versions;
    RETURN NULL;
END $$;

CREATE TRIGGER versions_cost_ins AFTER INSERT ON versions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION plinth_cost_versions_ins();
CREATE TRIGGER versions_cost_upd AFTER UPDATE ON versions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION plinth_cost_versions_upd();
CREATE TRIGGER versions_cost_del AFTER DELETE ON versions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION plinth_cost_versions_del();

-- what is stored already (once, at migration time)
INSERT INTO cost_tracking (bucket_id, tier, shard, stored_bytes, versions)
    SELECT v.bucket_id, plinth_cost_tier(v.storage_class),
           (v.version_id % 16)::smallint, sum(v.size), count(*)
    FROM versions v JOIN buckets b USING (bucket_id)
    WHERE v.state = 'committed' AND NOT v.delete_marker
    GROUP BY 1, 2, 3;


-- A gateway's flush of what its workers counted: one row per key read
-- (bucket name, key, bytes sent, reads, last read in ms since the epoch).
-- Keys of buckets that no longer exist are dropped. Also records the
-- gateway's replication factor (p_rf) for the cost figures.
CREATE FUNCTION plinth_usage_flush(p_rf integer, p_buckets text[],
    p_keys text[], p_bytes bigint[], p_reads bigint[], p_last bigint[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);

    IF p_rf IS NOT NULL THEN
        UPDATE cost_settings SET value = p_rf, updated_at = now()
            WHERE name = 'replication_factor' AND value <> p_rf;
    END IF;

    WITH batch AS (
        SELECT b.bucket_id, u.k AS key, sum(u.n) AS bytes, sum(u.r) AS reads,
               to_timestamp(max(u.l) / 1000.0) AS last_access
        FROM unnest(p_buckets, p_keys, p_bytes, p_reads, p_last)
             AS u(b, k, n, r, l)
        JOIN buckets b ON b.name = u.b
        GROUP BY b.bucket_id, u.k
    ), egress AS (
        INSERT INTO cost_egress AS e (bucket_id, egress_bytes, reads)
            SELECT bucket_id, sum(bytes), sum(reads) FROM batch
            GROUP BY bucket_id
        ON CONFLICT (bucket_id) DO UPDATE
            SET egress_bytes = e.egress_bytes + excluded.egress_bytes,
                reads = e.reads + excluded.reads, last_flush = now()
    ), access AS (
        INSERT INTO object_access AS a (bucket_id, key, read_count,
                                        last_access)
            SELECT bucket_id, key, reads, last_access FROM batch
            WHERE reads > 0
        ON CONFLICT (bucket_id, key) DO UPDATE
            SET read_count = a.read_count + excluded.read_count,
                last_access = greatest(a.last_access, excluded.last_access)
    )
    SELECT count(*) INTO v_n FROM batch;

    RETURN v_n;
END $$;


-- The cost report as JSON: every bucket, or one (p_bucket; PL001 if there
-- is none). p_rf: the replication factor to cost with (NULL: the one
-- recorded in cost_settings).
CREATE FUNCTION plinth_cost_report(p_bucket text, p_rf integer)
RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_rf     numeric;
    v_hot    numeric;
    v_warm   numeric;
    v_cold   numeric;
    v_egress numeric;
    v_gib    constant numeric := 1073741824;
    v_out    json;
BEGIN
    IF p_bucket IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM buckets WHERE name = p_bucket) THEN
        RAISE EXCEPTION 'no bucket "%"', p_bucket USING ERRCODE = 'PL001';
    END IF;

    SELECT max(value) FILTER (WHERE name = 'hot'),
           max(value) FILTER (WHERE name = 'warm'),
           max(value) FILTER (WHERE name = 'cold'),
           max(value) FILTER (WHERE name = 'egress'),
           max(value) FILTER (WHERE name = 'replication_factor')
        INTO v_hot, v_warm, v_cold, v_egress, v_rf
        FROM cost_settings;
    v_rf := coalesce(p_rf, v_rf, 3);

    WITH per AS (
        SELECT b.name,
               coalesce(sum(c.stored_bytes) FILTER (WHERE c.tier = 'hot'), 0) AS hot,
               coalesce(sum(c.stored_bytes) FILTER (WHERE c.tier = 'warm'), 0) AS warm,
               coalesce(sum(c.stored_bytes) FILTER (WHERE c.tier = 'cold'), 0) AS cold,
               coalesce(sum(c.versions), 0) AS versions,
               coalesce(max(e.egress_bytes), 0) AS egress,
               coalesce(max(e.reads), 0) AS reads
        FROM buckets b
        LEFT JOIN cost_tracking c ON c.bucket_id = b.bucket_id
        LEFT JOIN cost_egress e ON e.bucket_id = b.bucket_id
        WHERE p_bucket IS NULL OR b.name = p_bucket
        GROUP BY b.name
    ), costed AS (
        SELECT per.*,
               round(hot * v_rf * v_hot / v_gib, 10) AS hot_cost,
               round(warm * v_rf * v_warm / v_gib, 10) AS warm_cost,
               round(cold * v_rf * v_cold / v_gib, 10) AS cold_cost,
               round(egress * v_egress / v_gib, 10) AS egress_cost
        FROM per
    ), rows AS (
        SELECT name, hot, warm, cold, versions, egress, reads,
               hot_cost, warm_cost, cold_cost, egress_cost,
               hot_cost + warm_cost + cold_cost AS storage_cost
        FROM costed
    )
    SELECT json_build_object(
        'currency', 'USD',
        'unit', 'GiB',
        'replication_factor', v_rf,
        'prices', json_build_object('hot', v_hot, 'warm', v_warm,
                                    'cold', v_cold, 'egress', v_egress),
        'buckets', coalesce((SELECT json_agg(json_build_object(
            'bucket', name,
            'versions', versions,
            'stored_bytes', json_build_object('hot', hot, 'warm', warm,
                                              'cold', cold,
                                              'total', hot + warm + cold),
            'storage_cost_per_month', json_build_object('hot', hot_cost,
                'warm', warm_cost, 'cold', cold_cost, 'total', storage_cost),
            'egress_bytes', egress,
            'egress_cost', egress_cost,
            'reads', reads,
            'total_cost', storage_cost + egress_cost) ORDER BY name)
            FROM rows), '[]'::json),
        'totals', (SELECT json_build_object(
            'versions', coalesce(sum(versions), 0),
            'stored_bytes', json_build_object(
                'hot', coalesce(sum(hot), 0), 'warm', coalesce(sum(warm), 0),
                'cold', coalesce(sum(cold), 0),
                'total', coalesce(sum(hot + warm + cold), 0)),
            'storage_cost_per_month', json_build_object(
                'hot', coalesce(sum(hot_cost), 0),
                'warm', coalesce(sum(warm_cost), 0),
                'cold', coalesce(sum(cold_cost), 0),
                'total', coalesce(sum(storage_cost), 0)),
            'egress_bytes', coalesce(sum(egress), 0),
            'egress_cost', coalesce(sum(egress_cost), 0),
            'reads', coalesce(sum(reads), 0),
            'total_cost', coalesce(sum(storage_cost + egress_cost), 0))
            FROM rows))
    INTO v_out;

    RETURN v_out;
END $$;


-- A bucket's hottest objects (most reads first) or coldest (least recently
-- touched first: never read since tracking began counts from its last
-- write). Only keys with a current object are listed. p_which: 'hottest'
-- or 'coldest'; p_n: 1..1000.
CREATE FUNCTION plinth_access_report(p_bucket text, p_which text,
    p_n integer)
RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_id  bigint;
    v_out json;
BEGIN
    SELECT bucket_id INTO v_id FROM buckets WHERE name = p_bucket;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no bucket "%"', p_bucket USING ERRCODE = 'PL001';
    END IF;
    IF p_which NOT IN ('hottest', 'coldest') OR p_n IS NULL
       OR p_n < 1 OR p_n > 1000 THEN
        RAISE EXCEPTION 'bad access report % %', p_which, p_n
            USING ERRCODE = 'PL015';
    END IF;

    IF p_which = 'hottest' THEN
        SELECT coalesce(json_agg(json_build_object('key', x.key,
                   'read_count', x.read_count,
                   'last_access', to_char(x.last_access AT TIME ZONE 'UTC',
                       'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                   'size', x.size) ORDER BY x.ord), '[]'::json)
            INTO v_out
            FROM (SELECT a.key, a.read_count, a.last_access, o.size,
                         row_number() OVER (ORDER BY a.read_count DESC,
                             a.last_access DESC, a.key) AS ord
                  FROM object_access a
                  JOIN objects o ON o.bucket_id = a.bucket_id
                                AND o.key = a.key AND NOT o.deleted
                  WHERE a.bucket_id = v_id
                  ORDER BY a.read_count DESC, a.last_access DESC, a.key
                  LIMIT p_n) x;
    ELSE
        SELECT coalesce(json_agg(json_build_object('key', x.key,
                   'read_count', x.read_count,
                   'last_access', to_char(x.last_access AT TIME ZONE 'UTC',
                       'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                   'last_modified', to_char(x.ts AT TIME ZONE 'UTC',
                       'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                   'size', x.size) ORDER BY x.ord), '[]'::json)
            INTO v_out
            FROM (SELECT o.key, coalesce(a.read_count, 0) AS read_count,
                         a.last_access, o.ts, o.size,
                         row_number() OVER (ORDER BY
                             coalesce(a.last_access, o.ts), o.key) AS ord
                  FROM objects o
                  LEFT JOIN object_access a ON a.bucket_id = o.bucket_id
                                           AND a.key = o.key
                  WHERE o.bucket_id = v_id AND NOT o.deleted
                  ORDER BY coalesce(a.last_access, o.ts), o.key
                  LIMIT p_n) x;
    END IF;

    RETURN json_build_object('bucket', p_bucket, p_which, v_out);
END $$;


-- The admin API's entry points: administrators only (users.is_admin).
CREATE FUNCTION plinth_admin_check(p_caller text)
RETURNS void LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM users WHERE user_id = p_caller
                   AND is_admin) THEN
        RAISE EXCEPTION 'user "%" is not an administrator', p_caller
            USING ERRCODE = 'PL011';
    END IF;
END $$;

CREATE FUNCTION plinth_admin_cost(p_caller text, p_bucket text, p_rf integer)
RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM plinth_admin_check(p_caller);
    RETURN plinth_cost_report(p_bucket, p_rf);
END $$;

CREATE FUNCTION plinth_admin_access(p_caller text, p_bucket text,
    p_which text, p_n integer)
RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM plinth_admin_check(p_caller);
    RETURN plinth_access_report(p_bucket, p_which, p_n);
END $$;
