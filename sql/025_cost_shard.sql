-- Plinth metadata schema, migration 025: a cost total's shard is chosen by
-- the writer's backend, not by the version.
--
-- 016 kept each (bucket, tier) total in 16 rows, a version's change going
-- to the row of version_id % 16. Overwriting an object changes two
-- versions in two statements of one transaction (the new one committed,
-- the one it replaces retired), so a PUT's commit locked two of the rows
-- of its bucket, one after the other, and held them until its commit's
-- WAL flush. Two such commits that took the same two rows in opposite
-- orders deadlocked: PostgreSQL found it after deadlock_timeout (1 s) and
-- failed one of them, and the client got 500 InternalError. Measured: 8
-- clients overwriting 4 KiB objects in one bucket, 10 s runs: 1 to 8
-- failed PUTs in most runs and a p99 of 0.9 to 2 s; the trigger's upsert
-- took 0.81 ms on average (pg_stat_statements) against 0.05 ms for the
-- UPDATE of objects in the same transaction, mostly waiting for locks.
--
-- Here every delta of a statement goes to the row of its backend's shard
-- (pg_backend_pid() % 64): all statements of one transaction use the same
-- row of a (bucket, tier), so transactions of different backends never
-- wait for each other's rows, and two that share a shard wait at their
-- first common row instead of crossing (a deadlock is left only where two
-- backends share a shard and each changes two tiers of one bucket in
-- opposite orders). Any row may take any delta: readers add a bucket's
-- shards up (016), and the rows written before stay as they are. Within a
-- statement rows still go in (bucket, tier, shard) order (a statement
-- touching many buckets).

-- The shard of the totals this backend writes.
CREATE FUNCTION plinth_cost_shard()
RETURNS smallint LANGUAGE sql STABLE PARALLEL RESTRICTED AS $$
    SELECT (pg_backend_pid() % 64)::smallint
$$;

CREATE OR REPLACE FUNCTION plinth_cost_versions_ins()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cost_tracking AS c (bucket_id, tier, shard, stored_bytes,
                                    versions)
        SELECT g.b, g.t, g.s, g.n, g.v FROM (
            SELECT bucket_id AS b, plinth_cost_tier(storage_class) AS t,
                   plinth_cost_shard() AS s, sum(size) AS n,
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

CREATE OR REPLACE FUNCTION plinth_cost_versions_del()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cost_tracking AS c (bucket_id, tier, shard, stored_bytes,
                                    versions)
        SELECT g.b, g.t, g.s, g.n, g.v FROM (
            SELECT bucket_id AS b, plinth_cost_tier(storage_class) AS t,
                   plinth_cost_shard() AS s, -sum(size) AS n,
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

CREATE OR REPLACE FUNCTION plinth_cost_versions_upd()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cost_tracking AS c (bucket_id, tier, shard, stored_bytes,
                                    versions)
        SELECT g.b, g.t, g.s, g.n, g.v FROM (
            SELECT d.b, d.t, d.s, sum(d.n) AS n, sum(d.v) AS v
            FROM (SELECT bucket_id AS b, plinth_cost_tier(storage_class) AS t,
                         plinth_cost_shard() AS s, -size AS n,
                         -1 AS v
                  FROM old_rows WHERE state = 'committed' AND NOT delete_marker
                  UNION ALL
                  SELECT bucket_id, plinth_cost_tier(storage_class),
                         plinth_cost_shard(), size, 1
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
