-- Plinth metadata schema, migration 012: rebalancing and draining.
--
-- node_admin: what an operator decides about a node. draining = true: no
-- new copies go to it (repair and rebalancing skip it; gateways should
-- stop placing writes on it too) and rebalancing moves every copy it holds
-- to the node the ring names without it; once no placement names it, it
-- can leave the cluster file with nothing under-replicated.
--
--     INSERT INTO node_admin (node_id, draining) VALUES (3, true)
--         ON CONFLICT (node_id) DO UPDATE SET draining = true;

CREATE TABLE node_admin (
    node_id    integer PRIMARY KEY,
    draining   boolean NOT NULL DEFAULT false,
    changed    timestamptz NOT NULL DEFAULT clock_timestamp()
);


-- Every live blob once, in id order after p_after, at most p_limit: its
-- ring key and the union of its recorded nodes (as plinth_repair_candidates
-- sees them, without judging them).
CREATE FUNCTION plinth_placements(p_after uuid, p_limit integer)
RETURNS TABLE (blob_id uuid, rkey text, nodes integer[])
LANGUAGE sql STABLE AS $$
    SELECT l.blob_id, (array_agg(l.rkey ORDER BY l.ref))[1],
           coalesce(array_agg(DISTINCT n.n) FILTER (WHERE n.n IS NOT NULL),
                    '{}')
      FROM plinth_live_blobs l
      LEFT JOIN LATERAL unnest(l.nodes) AS n(n) ON true
     WHERE p_after IS NULL OR l.blob_id > p_after
     GROUP BY l.blob_id
     ORDER BY l.blob_id
     LIMIT p_limit;
$$;
