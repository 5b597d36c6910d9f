-- Plinth metadata schema, migration 010: repaird (health, repair, scrub).
--
-- node_health      one row per data node of the cluster file, written by
--                  the working repaird after every probe; gateways read it
--                  (cached) to keep new writes off offline and full nodes.
-- repair_queue     replicas known bad (corrupt or missing blob on a node
--                  that is otherwise up), found by a scrub or reported by
--                  a gateway read (plinth_report_bad_replica); repaird
--                  rebuilds them at its next pass and removes the row in
--                  the transaction that fixes the placement.
-- scrub_progress   each node's scrub cursor, so a scrub resumes where a
--                  restarted (or replaced) repaird left it.
--
-- Where placement lives (what repair reads and rewrites): versions.nodes
-- (a single-PUT version, state committed), version_parts.nodes (the parts
-- of a committed multipart version) and upload_parts.nodes (parts of an
-- open upload). A blob may be referenced by several rows (CopyObject
-- shares blobs): repair treats a blob once, with the union of their
-- nodes, and rewrites every row that names it.

CREATE TABLE node_health (
    node_id          integer PRIMARY KEY,
    address          text NOT NULL,
    -- online: answered the last probe; suspect: silent for less than the
    -- offline limit; offline: silent for longer (repair replaces its
    -- replicas)
    status           text NOT NULL DEFAULT 'online'
                     CHECK (status IN ('online', 'suspect', 'offline')),
    is_full          boolean NOT NULL DEFAULT false,  -- "full" on /health
    disk_total_bytes bigint,
    disk_used_bytes  bigint,
    disk_free_bytes  bigint,
    blob_count       bigint,
    last_heartbeat   timestamptz,      -- last answered probe
    last_probe       timestamptz,
    last_error       text,
    status_changed   timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE repair_queue (
    blob_id       uuid NOT NULL,
    node_id       integer NOT NULL,
    -- corrupt | missing | read failure (free text from the reporter)
    reason        text NOT NULL,
    queued_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    PRIMARY KEY (blob_id, node_id)
);

CREATE TABLE scrub_progress (
    node_id         integer PRIMARY KEY,
    cursor          text,               -- last blob id checked; NULL: start
    pass_started    timestamptz,
    last_completed  timestamptz,
    checked         bigint NOT NULL DEFAULT 0,   -- in the current pass
    corrupt         bigint NOT NULL DEFAULT 0,   -- in the current pass
    missing         bigint NOT NULL DEFAULT 0    -- in the current pass
);

-- For "which blobs should node N hold" (scrub's missing-blob check).
CREATE INDEX upload_parts_blob_idx ON upload_parts (blob_id);


-- A replica found bad (by a gateway read or a scrub): queue it for repair.
-- Idempotent; the gateway may call it for every failed read.
CREATE FUNCTION plinth_report_bad_replica(p_blob uuid, p_node integer,
    p_reason text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO repair_queue (blob_id, node_id, reason)
        VALUES (p_blob, p_node, p_reason)
        ON CONFLICT (blob_id, node_id) DO NOTHING;
$$;


-- Every live reference to a blob, with its placement and the ring key the
-- gateway placed it by ("bucket/key" for a single PUT, the blob id in hex
-- for a part).
CREATE VIEW plinth_live_blobs AS
    SELECT v.blob_id, v.nodes, v.size, b.name || '/' || v.key AS rkey,
           v.version_id AS ref
      FROM versions v JOIN buckets b ON b.bucket_id = v.bucket_id
     WHERE v.state = 'committed' AND NOT v.delete_marker
       AND v.blob_id IS NOT NULL
    UNION ALL
    SELECT vp.blob_id, vp.nodes, vp.size,
           replace(vp.blob_id::text, '-', ''), vp.version_id
      FROM version_parts vp JOIN versions v ON v.version_id = vp.version_id
     WHERE v.state = 'committed'
    UNION ALL
    SELECT up.blob_id, up.nodes, up.size,
           replace(up.blob_id::text, '-', ''), 0
      FROM upload_parts up JOIN uploads u ON u.upload_id = up.upload_id
     WHERE u.state = 'open';


-- Blobs that need repair, in blob id order after p_after (NULL: from the
-- start), at most p_limit (NULL: all): fewer than p_rf replicas on live
-- nodes (p_live: the nodes repaird sees up) that are not queued as bad,
-- or any replica queued as bad. nodes: every node recorded; good: the
-- live, not-bad ones; bad: the queued ones.
CREATE FUNCTION plinth_repair_candidates(p_live integer[], p_rf integer,
    p_after uuid, p_limit integer)
RETURNS TABLE (blob_id uuid, size bigint, rkey text, nodes integer[],
               good integer[], bad integer[])
LANGUAGE sql STABLE AS $$
    WITH agg AS (
        SELECT l.blob_id, max(l.size) AS size,
               (array_agg(l.rkey ORDER BY l.ref))[1] AS rkey,
               coalesce(array_agg(DISTINCT n.n) FILTER (WHERE n.n IS NOT NULL),
                        '{}') AS nodes
          FROM plinth_live_blobs l
          LEFT JOIN LATERAL unnest(l.nodes) AS n(n) ON true
         WHERE p_after IS NULL OR l.blob_id > p_after
         GROUP BY l.blob_id
    ), marked AS (
        SELECT a.*,
               coalesce(array(SELECT q.node_id FROM repair_queue q
                               WHERE q.blob_id = a.blob_id
                               ORDER BY q.node_id), '{}') AS bad
          FROM agg a
    ), judged AS (
        SELECT m.*,
               array(SELECT x FROM unnest(m.nodes) AS x
                      WHERE x = ANY (p_live) AND NOT x = ANY (m.bad)
                      ORDER BY x) AS good
          FROM marked m
    )
    SELECT j.blob_id, j.size, j.rkey, j.nodes, j.good, j.bad
      FROM judged j
     WHERE cardinality(j.good) < p_rf OR cardinality(j.bad) > 0
     ORDER BY j.blob_id
     LIMIT p_limit;
$$;


-- nodes less p_remove, then p_add's nodes not already there (order kept).
CREATE FUNCTION plinth_nodes_merge(p_nodes integer[], p_add integer[],
    p_remove integer[])
RETURNS integer[] LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(x ORDER BY o), '{}') FROM (
        SELECT x, o FROM unnest(p_nodes) WITH ORDINALITY AS t(x, o)
         WHERE NOT x = ANY (p_remove)
        UNION ALL
        SELECT x, 1000000 + o FROM unnest(p_add) WITH ORDINALITY AS t(x, o)
         WHERE NOT x = ANY (
             array(SELECT y FROM unnest(p_nodes) AS y
                    WHERE NOT y = ANY (p_remove)))
    ) s;
$$;


-- Repair's placement change for one blob, in one transaction: every row
-- naming the blob gets p_add (verified copies) and loses p_remove (copies
-- on offline nodes, or bad ones). Removed copies that were not replaced on
-- the same node go to garbage_blobs (reason 'repaired away'): a node that
-- comes back still holds them. The queue rows of the nodes touched go.
-- Returns the number of placement rows changed.
CREATE FUNCTION plinth_repair_placement(p_blob uuid, p_add integer[],
    p_remove integer[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n  integer := 0;
    c  integer;
    g  integer[];
BEGIN
    UPDATE versions SET nodes = plinth_nodes_merge(nodes, p_add, p_remove)
        WHERE blob_id = p_blob;
    GET DIAGNOSTICS c = ROW_COUNT;
    n := n + c;
    UPDATE version_parts SET nodes = plinth_nodes_merge(nodes, p_add, p_remove)
        WHERE blob_id = p_blob;
    GET DIAGNOSTICS c = ROW_COUNT;
    n := n + c;
    UPDATE upload_parts SET nodes = plinth_nodes_merge(nodes, p_add, p_remove)
        WHERE blob_id = p_blob;
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


-- The blobs node p_node should hold, in id order after p_after, up to
-- p_before (inclusive; NULL: no bound): scrub compares them with the
-- node's listing to find blobs missing on disk. Only references older
-- than p_older_than count (a write in flight is not yet on every node).
CREATE FUNCTION plinth_node_blobs(p_node integer, p_after uuid,
    p_before uuid, p_older_than timestamptz)
RETURNS TABLE (blob_id uuid) LANGUAGE sql STABLE AS $$
    SELECT DISTINCT v.blob_id FROM versions v
     WHERE v.state = 'committed' AND v.blob_id IS NOT NULL
       AND p_node = ANY (v.nodes) AND v.committed_at < p_older_than
       AND (p_after IS NULL OR v.blob_id > p_after)
       AND (p_before IS NULL OR v.blob_id <= p_before)
    UNION
    SELECT vp.blob_id FROM version_parts vp
      JOIN versions v ON v.version_id = vp.version_id
     WHERE v.state = 'committed' AND p_node = ANY (vp.nodes)
       AND v.committed_at < p_older_than
       AND (p_after IS NULL OR vp.blob_id > p_after)
       AND (p_before IS NULL OR vp.blob_id <= p_before)
    UNION
    SELECT up.blob_id FROM upload_parts up
      JOIN uploads u ON u.upload_id = up.upload_id
     WHERE u.state = 'open' AND p_node = ANY (up.nodes)
       AND up.uploaded < p_older_than
       AND (p_after IS NULL OR up.blob_id > p_after)
       AND (p_before IS NULL OR up.blob_id <= p_before)
    ORDER BY 1;
$$;


-- One health probe of node p_node by repaird: p_ok with the node's
-- figures, or failed with p_error. A node answering is online; a silent
-- one is suspect, and offline once its last answer (or, never answered,
-- its first probe) is older than p_offline_after seconds. Returns the
-- status before and after (repaird logs the transitions).
CREATE FUNCTION plinth_node_probe(p_node integer, p_addr text, p_ok boolean,
    p_full boolean, p_total bigint, p_used bigint, p_free bigint,
    p_count bigint, p_error text, p_offline_after double precision,
    OUT old_status text, OUT new_status text)
LANGUAGE plpgsql AS $$
DECLARE
    h    node_health%ROWTYPE;
    now  timestamptz := clock_timestamp();
BEGIN
    SELECT * INTO h FROM node_health WHERE node_id = p_node FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO node_health (node_id, address, status, status_changed)
            VALUES (p_node, p_addr, CASE WHEN p_ok THEN 'online'
                                         ELSE 'suspect' END, now)
            RETURNING * INTO h;
        old_status := NULL;
    ELSE
        old_status := h.status;
    END IF;
    IF p_ok THEN
        new_status := 'online';
        UPDATE node_health SET address = p_addr, status = new_status,
               is_full = p_full, disk_total_bytes = p_total,
               disk_used_bytes = p_used, disk_free_bytes = p_free,
               blob_count = p_count, last_heartbeat = now, last_probe = now,
               last_error = NULL,
               status_changed = CASE WHEN h.status = new_status
                                     AND old_status IS NOT NULL
                                     THEN h.status_changed ELSE now END
         WHERE node_id = p_node;
    ELSE
        new_status := CASE WHEN coalesce(h.last_heartbeat, h.status_changed)
                                < now - make_interval(secs => p_offline_after)
                           THEN 'offline' ELSE 'suspect' END;
        UPDATE node_health SET address = p_addr, status = new_status,
               last_probe = now, last_error = p_error,
               status_changed = CASE WHEN h.status = new_status
                                     THEN h.status_changed ELSE now END
         WHERE node_id = p_node;
    END IF;
END $$;
