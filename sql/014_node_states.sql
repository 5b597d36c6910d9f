-- Plinth metadata schema, migration 014: what a gateway reads to place
-- new writes (cached, refreshed every few seconds; one small query).
--
--     SELECT node_id, writable, readable FROM plinth_node_states;
--
-- writable: new writes may go to the node (online, not full, not
-- draining); readable: worth trying for a GET before the others (not
-- offline). A node without a row (no repaird has probed it yet, or no
-- repaird runs) is not listed: treat it as writable and readable, as
-- before repaird existed. status and last_heartbeat are repaird's last
-- probe (sql/010), draining the operator's flag (sql/012).
--
-- (First committed as 013_node_states.sql beside 013_list_limit.sql;
-- renumbered, and OR REPLACE, so a database that applied it under the old
-- name takes this one too.)

CREATE OR REPLACE VIEW plinth_node_states AS
    SELECT h.node_id, h.status, h.is_full,
           coalesce(a.draining, false) AS draining,
           h.status = 'online' AND NOT h.is_full
               AND NOT coalesce(a.draining, false) AS writable,
           h.status <> 'offline' AS readable,
           h.last_heartbeat
      FROM node_health h
      LEFT JOIN node_admin a ON a.node_id = h.node_id;
