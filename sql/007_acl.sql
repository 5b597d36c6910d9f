-- Plinth metadata schema, migration 007: GetBucketAcl/PutBucketAcl,
-- GetObjectAcl/PutObjectAcl with canned ACLs (private, public-read).
-- Only the bucket's owner reads or changes an ACL (PL011).

CREATE FUNCTION plinth_bucket_acl(p_name text, p_caller text,
    OUT owner_id text, OUT display_name text, OUT acl text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM plinth_bucket_owned(p_name, p_caller);
    SELECT b.owner_id, u.display_name, b.acl
        INTO owner_id, display_name, acl
        FROM buckets b JOIN users u ON u.user_id = b.owner_id
        WHERE b.name = p_name;
END $$;


CREATE FUNCTION plinth_object_acl(p_bucket text, p_key text, p_caller text,
    OUT owner_id text, OUT display_name text, OUT acl text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_bucket bigint;
BEGIN
    v_bucket := plinth_bucket_owned(p_bucket, p_caller);
    SELECT b.owner_id, u.display_name, v.acl
        INTO owner_id, display_name, acl
        FROM objects o
        JOIN versions v ON v.version_id = o.version_id
        JOIN buckets b ON b.bucket_id = o.bucket_id
        JOIN users u ON u.user_id = b.owner_id
        WHERE o.bucket_id = v_bucket AND o.key = p_key AND NOT o.deleted;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no key "%"', p_key USING ERRCODE = 'PL002';
    END IF;
END $$;


CREATE FUNCTION plinth_set_bucket_acl(p_name text, p_caller text,
    p_acl text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM plinth_bucket_owned(p_name, p_caller);
    UPDATE buckets SET acl = p_acl WHERE name = p_name;
END $$;


CREATE FUNCTION plinth_set_object_acl(p_bucket text, p_key text,
    p_caller text, p_acl text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_bucket bigint;
BEGIN
    v_bucket := plinth_bucket_owned(p_bucket, p_caller);
    UPDATE versions v SET acl = p_acl
        FROM objects o
        WHERE o.bucket_id = v_bucket AND o.key = p_key AND NOT o.deleted
          AND v.version_id = o.version_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no key "%"', p_key USING ERRCODE = 'PL002';
    END IF;
END $$;
