-- Plinth metadata schema, migration 005: DeleteObjects (multi-delete).
--
-- One round trip deletes up to 1,000 keys of one bucket, each exactly as
-- DeleteObject does (a delete marker made current; deleting a missing key
-- succeeds). The caller must own the bucket (PL011 otherwise, for the whole
-- request). Returns each key with NULL (deleted) or an S3 error code.

CREATE FUNCTION plinth_delete_objects(p_bucket text, p_caller text,
    p_keys text[])
RETURNS TABLE (key text, code text)
LANGUAGE plpgsql AS $$
DECLARE
    v_key text;
BEGIN
    PERFORM plinth_bucket_owned(p_bucket, p_caller);
    FOREACH v_key IN ARRAY p_keys LOOP
        key := v_key;
        IF octet_length(v_key) > 1024 THEN
            code := 'KeyTooLongError';
        ELSE
            PERFORM plinth_delete_object(p_bucket, v_key, p_caller);
            code := NULL;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;
