-- Plinth metadata schema, migration 002: users, access keys, canned ACLs.
--
-- A user owns buckets (buckets.owner_id = users.user_id) and has any
-- number of access keys. SigV4 needs the secret itself (it is an HMAC
-- key), so secrets are stored as issued: give the gateway's database role
-- nothing more than it needs, and protect backups like the keys
-- themselves. The admin command (bin/plinth-admin) creates, lists and
-- deletes keys.
--
-- New SQLSTATEs: PL011 AccessDenied.

CREATE TABLE users (
    user_id       text PRIMARY KEY,
    display_name  text NOT NULL,
    is_admin      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- the identity of every caller while authentication is off
INSERT INTO users (user_id, display_name) VALUES ('anonymous', 'anonymous');

CREATE TABLE access_keys (
    access_key_id text PRIMARY KEY
                  CHECK (access_key_id ~ '^[A-Z0-9]{16,128}$'),
    secret_key    text NOT NULL CHECK (length(secret_key) >= 16),
    user_id       text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    status        text NOT NULL DEFAULT 'active'
                  CHECK (status IN ('active', 'inactive')),
    description   text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX access_keys_user_idx ON access_keys (user_id);

-- canned ACLs: private (owner only) or public-read (anyone may GET, HEAD
-- and list; only the owner writes)
ALTER TABLE buckets ADD COLUMN acl text NOT NULL DEFAULT 'private'
    CHECK (acl IN ('private', 'public-read'));
ALTER TABLE versions ADD COLUMN acl text NOT NULL DEFAULT 'private'
    CHECK (acl IN ('private', 'public-read'));

ALTER TABLE buckets ADD CONSTRAINT buckets_owner_fk
    FOREIGN KEY (owner_id) REFERENCES users (user_id);


-- Only a bucket's owner writes to it, and only the owner deletes it: the
-- functions of 001 that write take the caller and refuse others (PL011).
-- Reads return the owner and ACLs; the gateway decides (public-read).

CREATE OR REPLACE FUNCTION plinth_bucket_owned(p_name text, p_caller text)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_id    bigint;
    v_owner text;
BEGIN
    SELECT bucket_id, owner_id INTO v_id, v_owner FROM buckets
        WHERE name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no bucket "%"', p_name USING ERRCODE = 'PL001';
    END IF;
    IF v_owner IS DISTINCT FROM p_caller THEN
        RAISE EXCEPTION 'bucket "%" is not yours', p_name
            USING ERRCODE = 'PL011';
    END IF;
    RETURN v_id;
END $$;


CREATE FUNCTION plinth_bucket_create(p_name text, p_owner text, p_acl text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    v_id := plinth_bucket_create(p_name, p_owner);
    UPDATE buckets SET acl = p_acl WHERE bucket_id = v_id;
    RETURN v_id;
END $$;


CREATE FUNCTION plinth_bucket_delete(p_name text, p_caller text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM plinth_bucket_owned(p_name, p_caller);
    PERFORM plinth_bucket_delete(p_name);
END $$;


CREATE FUNCTION plinth_put_begin(p_bucket text, p_key text, p_size bigint,
    p_etag text, p_content_type text, p_meta text, p_owner text,
    p_acl text, OUT version_id bigint, OUT blob_id text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM plinth_bucket_owned(p_bucket, p_owner);
    SELECT b.version_id, b.blob_id INTO version_id, blob_id
        FROM plinth_put_begin(p_bucket, p_key, p_size, p_etag,
                              p_content_type, p_meta, p_owner) b;
    UPDATE versions v SET acl = p_acl WHERE v.version_id = plinth_put_begin.version_id;
END $$;


CREATE FUNCTION plinth_delete_object_as(p_bucket text, p_key text,
    p_caller text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM plinth_bucket_owned(p_bucket, p_caller);
    PERFORM plinth_delete_object(p_bucket, p_key, p_caller);
END $$;


-- Reads: the owner, or anyone when the bucket is public-read.
CREATE FUNCTION plinth_bucket_readable(p_name text, p_caller text)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_id    bigint;
    v_owner text;
    v_acl   text;
BEGIN
    SELECT bucket_id, owner_id, acl INTO v_id, v_owner, v_acl FROM buckets
        WHERE name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no bucket "%"', p_name USING ERRCODE = 'PL001';
    END IF;
    IF v_owner IS DISTINCT FROM p_caller AND v_acl <> 'public-read' THEN
        RAISE EXCEPTION 'bucket "%" is not yours', p_name
            USING ERRCODE = 'PL011';
    END IF;
    RETURN v_id;
END $$;


CREATE FUNCTION plinth_list_as(p_bucket text, p_caller text, p_prefix text,
    p_delimiter text, p_after text, p_after_prefix boolean, p_max integer)
RETURNS TABLE (key text, is_prefix boolean, size bigint, etag text,
               last_modified timestamptz)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM plinth_bucket_readable(p_bucket, p_caller);
    RETURN QUERY SELECT * FROM plinth_list(p_bucket, p_prefix, p_delimiter,
                                           p_after, p_after_prefix, p_max);
END $$;
