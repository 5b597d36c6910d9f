-- Plinth metadata schema, migration 019: a commit is durable before the
-- client hears "200", whatever the server's synchronous_commit.
--
-- DESIGN.md promises it, but every transaction used the server's setting:
-- on a PostgreSQL run with synchronous_commit = off (a common tuning, and
-- the test harness's fast mode) an acknowledged write was lost when
-- PostgreSQL stopped without a clean shutdown (crash, OOM kill, immediate
-- stop) within the WAL writer's delay. The crash-consistency checker
-- (t/96-chaos.t, CHAOS_PG_FAST=1) saw it: acknowledged PUTs gone after an
-- immediate stop, GETs returning the bodies they had replaced (stale).
--
-- The database's own default wins over the server's configuration file
-- (a role's default, ALTER ROLE ... SET, would still win over this one).
-- Statements that may be lost keep saying so themselves: the pending
-- inserts (both plinth_put_begin functions) set
-- synchronous_commit = off for their own transaction. New sessions take
-- the setting: gateways and repaird get it as they (re)connect.

DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET synchronous_commit = on',
                   current_database());
END $$;
