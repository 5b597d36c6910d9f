-- Plinth metadata schema, migration 015: the columns and table that cost
-- tracking, access patterns and storage tiers all build on (their
-- functions come in later migrations).
--
-- Storage classes are S3's names; each maps to a node tier (DESIGN.md,
-- "Cost and tiers"):
--     STANDARD                      -> hot
--     STANDARD_IA                   -> warm
--     GLACIER, DEEP_ARCHIVE         -> cold
-- A version keeps the class it was written with (or moved to by a
-- lifecycle rule); a bucket has a default class for writes that name none;
-- an open multipart upload keeps the class given at its creation.

ALTER TABLE buckets  ADD COLUMN storage_class text NOT NULL DEFAULT 'STANDARD';
ALTER TABLE versions ADD COLUMN storage_class text NOT NULL DEFAULT 'STANDARD';
ALTER TABLE uploads  ADD COLUMN storage_class text NOT NULL DEFAULT 'STANDARD';

CREATE FUNCTION plinth_storage_class_tier(p_class text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_class
        WHEN 'STANDARD'     THEN 'hot'
        WHEN 'STANDARD_IA'  THEN 'warm'
        WHEN 'GLACIER'      THEN 'cold'
        WHEN 'DEEP_ARCHIVE' THEN 'cold'
    END
$$;

-- Access patterns, per key (the current object): how often it was read and
-- when last. Gateways never write a row per GET: they count reads in
-- shared memory and flush the sums every few seconds, adding to
-- read_count and keeping the later last_access.
CREATE TABLE object_access (
    bucket_id     bigint NOT NULL REFERENCES buckets (bucket_id) ON DELETE CASCADE,
    key           text COLLATE "C" NOT NULL,
    read_count    bigint NOT NULL DEFAULT 0,
    last_access   timestamptz NOT NULL,
    PRIMARY KEY (bucket_id, key)
);

-- coldest objects of a bucket first (the admin API's coldest list, and
-- the access-based tier rule)
CREATE INDEX object_access_last_idx ON object_access (bucket_id, last_access);
