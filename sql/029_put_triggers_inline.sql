-- Plinth metadata schema, migration 029: a PUT's two writes of its
-- versions row do their triggers' work themselves.
--
-- Every INSERT and UPDATE of versions runs two triggers besides its own
-- work: 016's statement-level cost trigger (transition tables, then one
-- grouped upsert of cost_tracking: a plan of a sort, an aggregate and a
-- join started for each statement) and, on INSERT, 008's row trigger
-- that gives a version in a versioning-enabled bucket its S3 version id
-- (a bucket lookup). A PutObject writes the row twice (023): its begin
-- inserts it pending, which bills nothing, and 023's begin decides the
-- version id itself; its commit makes it committed, which bills one
-- version of its size. Measured with bench/pg-put-stats (2,000 PUTs of
-- 4 KiB, 8 clients, two runs each), dropping those three triggers took
-- PostgreSQL's CPU per PUT from 0.77 - 0.79 ms to 0.59 - 0.64 ms, and the
-- statements' execution from 0.93 to 0.65 ms: auto_explain put the
-- commit's cost trigger at 0.17 - 0.23 ms, the begin's at 0.08 (for no
-- row to bill) and the version id trigger at 0.04 - 0.05.
--
-- Here the three triggers keep their functions but gain a WHEN condition:
-- they do not fire while the transaction-local setting
-- plinth.triggers_inline is 'on'. plinth_put_begin_c sets it around its
-- INSERT (nothing to bill, the version id decided); plinth_put_commit
-- sets it around its UPDATE and bills the version with one upsert of its
-- own, to the same (bucket, tier, shard) row the trigger would have
-- chosen. Everything else (replacing the previous version, deletes,
-- lifecycle, repair, GC, bulk statements) still goes through the
-- triggers. The setting is turned off again right after the statement;
-- an error aborts the transaction, which undoes it as well.

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
    -- pending: nothing to bill; the version id is decided here
    PERFORM set_config('plinth.triggers_inline', 'on', true);
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
    PERFORM set_config('plinth.triggers_inline', 'off', true);
    versioned := v_mode <> 'Unversioned';
END $$;


CREATE OR REPLACE FUNCTION plinth_put_commit(p_version bigint,
    p_nodes integer[], p_if_none_match boolean, p_if_match text,
    p_cks_alg text, p_cks text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_bucket bigint;
    v_class  text;
    v_size   bigint;
    v_marker boolean;
BEGIN
    PERFORM set_config('plinth.triggers_inline', 'on', true);
    UPDATE versions SET state = 'committed', nodes = p_nodes,
                        committed_at = clock_timestamp(),
                        state_changed = clock_timestamp(),
                        checksum_alg = p_cks_alg, checksum = p_cks,
                        checksum_type = CASE WHEN p_cks_alg IS NOT NULL
                                             THEN 'FULL_OBJECT' END
        WHERE version_id = p_version AND state = 'pending'
        RETURNING bucket_id, storage_class, size, delete_marker
        INTO v_bucket, v_class, v_size, v_marker;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pending version % is gone', p_version
            USING ERRCODE = 'PL006';
    END IF;
    PERFORM set_config('plinth.triggers_inline', 'off', true);
    -- what 025's plinth_cost_versions_upd would add for this one row
    IF NOT v_marker THEN
        INSERT INTO cost_tracking AS c (bucket_id, tier, shard,
                                        stored_bytes, versions)
            VALUES (v_bucket, plinth_cost_tier(v_class),
                    plinth_cost_shard(), v_size, 1)
        ON CONFLICT (bucket_id, tier, shard) DO UPDATE
            SET stored_bytes = c.stored_bytes + excluded.stored_bytes,
                versions = c.versions + excluded.versions;
    END IF;
    RETURN plinth_make_current(p_version, p_if_none_match, p_if_match);
END $$;


-- The triggers, as 008 and 016 made them, but for statements whose
-- caller does their work (above).
DROP TRIGGER versions_vid ON versions;
CREATE TRIGGER versions_vid BEFORE INSERT ON versions
    FOR EACH ROW
    WHEN (current_setting('plinth.triggers_inline', true)
          IS DISTINCT FROM 'on')
    EXECUTE FUNCTION plinth_version_vid();

DROP TRIGGER versions_cost_ins ON versions;
CREATE TRIGGER versions_cost_ins AFTER INSERT ON versions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    WHEN (current_setting('plinth.triggers_inline', true)
          IS DISTINCT FROM 'on')
    EXECUTE FUNCTION plinth_cost_versions_ins();

DROP TRIGGER versions_cost_upd ON versions;
CREATE TRIGGER versions_cost_upd AFTER UPDATE ON versions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT
    WHEN (current_setting('plinth.triggers_inline', true)
          IS DISTINCT FROM 'on')
    EXECUTE FUNCTION plinth_cost_versions_upd();
