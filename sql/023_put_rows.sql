-- Plinth metadata schema, migration 023: a PUT writes its versions row
-- once at begin and once at commit, and late replicas go in batches.
--
-- Before, PutObject's begin (017's plinth_put_begin_c, through 008's
-- plinth_put_begin_v, 002's and 001's plinth_put_begin) inserted the row
-- and then updated it twice (the ACL, the storage class), re-read it for
-- its version id, and looked the bucket up three times; each UPDATE was a
-- new tuple version and ran the statement-level cost trigger of 016. The
-- commit was one UPDATE already (009), but a replica acknowledged after
-- the W-th (about a third of 4 KiB PUTs) cost one more transaction of its
-- own (the gateway's plinth_put_add_node, one UPDATE and a durable commit).
--
-- Here:
--   * plinth_put_begin_c keeps its signature and results (gateways need no
--     reload) but is one INSERT with every column known at begin: ACL,
--     storage class (x-amz-storage-class or the bucket's default) and the
--     S3 version id (decided here from the bucket's state, as 008's trigger
--     would: the trigger keeps a vid it is given). Same checks: no bucket
--     PL001, not the caller's PL011. Still synchronous_commit = off (019).
--   * plinth_put_add_nodes adds late replicas of many versions in one
--     statement (the gateway gathers them per worker): either in a
--     transaction of its own (p_wait: it waits for row locks, taken in
--     version order; the commit need not wait for its WAL flush, see
--     below), or inside a PUT's commit (plinth_put_commit, 8 arguments):
--     there it takes only rows it can lock at once (SKIP LOCKED), so a
--     late replica of another version can never make an acknowledged
--     write wait or deadlock. A late replica not recorded (skipped, lost
--     in a crash, the version gone meanwhile) is what it was before: a
--     best-effort record; repair finds the version under-replicated and
--     the copy an orphan (011's GC), and sets both right.
--   * plinth_put_commit (8 arguments): 009's, plus the late replicas the
--     gateway had waiting, applied after the write is settled. The
--     6-argument form stays for gateways not yet reloaded.

CREATE OR REPLACE FUNCTION plinth_put_begin_c(p_bucket text, p_key text,
    p_size bigint, p_etag text, p_content_type text, p_meta text,
    p_owner text, p_acl text, p_class text, OUT version_id bigint,
    OUT blob_id text, OUT vid text, OUT versioned boolean,
    OUT storage_class text)
LANGUAGE plpgsql AS $$
DECLARE
    v_bucket bigint;
    v_owner  text;
    v_mode   text;
    v_class  text;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT b.bucket_id, b.owner_id, b.versioning, b.storage_class
        INTO v_bucket, v_owner, v_mode, v_class
        FROM buckets b WHERE b.name = p_bucket;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no bucket "%"', p_bucket USING ERRCODE = 'PL001';
    END IF;
    IF v_owner IS DISTINCT FROM p_owner THEN
        RAISE EXCEPTION 'bucket "%" is not yours', p_bucket
            USING ERRCODE = 'PL011';
    END IF;
    INSERT INTO versions (bucket_id, key, blob_id, size, etag, content_type,
                          meta, owner_id, acl, storage_class, vid)
        VALUES (v_bucket, p_key, gen_random_uuid(), p_size, p_etag,
                p_content_type, p_meta, p_owner, p_acl,
                coalesce(p_class, v_class),
                CASE WHEN v_mode = 'Enabled'
                     THEN replace(gen_random_uuid()::text, '-', '') END)
        RETURNING versions.version_id,
                  replace(versions.blob_id::text, '-', ''),
                  coalesce(versions.vid, 'null'),
                  versions.storage_class
        INTO version_id, blob_id, vid, storage_class;
    versioned := v_mode <> 'Unversioned';
END $$;


-- Late replicas: node p_nodes[i] holds an acknowledged copy of version
-- p_versions[i]'s blob. Committed versions only; each node once. Returns
-- the number of rows changed.
CREATE FUNCTION plinth_put_add_nodes(p_versions bigint[], p_nodes integer[],
    p_wait boolean)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_ok bigint[];
    v_n  integer;
BEGIN
    -- The rows are locked first, in version order, by the primary key
    -- alone; their state is tested after (a state test beside the key
    -- lets the planner scan versions_list_idx, partial on 'committed',
    -- from end to end instead).
    IF p_wait THEN
        -- a transaction of its own: a lost record costs only a repair
        PERFORM set_config('synchronous_commit', 'off', true);
        WITH l AS MATERIALIZED (
            SELECT x.version_id, x.state FROM versions x
             WHERE x.version_id = ANY (p_versions)
             ORDER BY x.version_id FOR UPDATE)
        SELECT array_agg(l.version_id) INTO v_ok
          FROM l WHERE l.state = 'committed';
    ELSE
        -- inside someone's commit: never wait for a lock
        WITH l AS MATERIALIZED (
            SELECT x.version_id, x.state FROM versions x
             WHERE x.version_id = ANY (p_versions)
             ORDER BY x.version_id FOR UPDATE SKIP LOCKED)
        SELECT array_agg(l.version_id) INTO v_ok
          FROM l WHERE l.state = 'committed';
    END IF;
    IF v_ok IS NULL THEN
        RETURN 0;
    END IF;
    -- locked and committed: each gets the nodes it lacks
    UPDATE versions v
       SET nodes = v.nodes || array(
               SELECT DISTINCT u.node
                 FROM unnest(p_versions, p_nodes) AS u(ver, node)
                WHERE u.ver = v.version_id AND NOT u.node = ANY (v.nodes))
     WHERE v.version_id = ANY (v_ok)
       AND NOT (array(SELECT u.node
                        FROM unnest(p_versions, p_nodes) AS u(ver, node)
                       WHERE u.ver = v.version_id) <@ v.nodes);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END $$;


CREATE FUNCTION plinth_put_commit(p_version bigint, p_nodes integer[],
    p_if_none_match boolean, p_if_match text, p_cks_alg text, p_cks text,
    p_late_versions bigint[], p_late_nodes integer[])
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_res text;
BEGIN
    v_res := plinth_put_commit(p_version, p_nodes, p_if_none_match,
                               p_if_match, p_cks_alg, p_cks);
    IF cardinality(p_late_versions) > 0 THEN
        PERFORM plinth_put_add_nodes(p_late_versions, p_late_nodes, false);
    END IF;
    RETURN v_res;
END $$;
