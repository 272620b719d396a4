SET LOCAL ROLE mail_owner;

-- Remove the loaded row of one source key from mail.* (a row the source no longer has,
-- or a replaced row the rules now reject). Deleting an account cascades to its sessions,
-- as in the application. Returns whether a row was deleted.
CREATE OR REPLACE FUNCTION migration.delete_row(p_table text, p_key text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  v_rows bigint;
  v_target text := migration.key_target(p_table, p_key);  -- the key the row has in mail.*
BEGIN
  /* The row path's delete, by source key. */
  IF p_table = 'sessions' THEN
    DELETE FROM mail.sessions WHERE id = v_target;
  ELSIF p_table NOT IN ('emails', 'accounts') THEN
    RAISE EXCEPTION 'unknown source table %', p_table;
  ELSIF v_target IS NULL OR v_target !~ '^-?[0-9]{1,19}$'
        OR v_target::numeric NOT BETWEEN -9223372036854775808 AND 9223372036854775807 THEN
    RETURN false;  -- not a key any loaded row can have
  ELSIF p_table = 'emails' THEN
    DELETE FROM mail.emails WHERE id = v_target::bigint;
  ELSE
    DELETE FROM mail.accounts WHERE id = v_target::bigint;
  END IF;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  RETURN v_rows > 0;
END;
$$;

COMMENT ON FUNCTION migration.delete_row(text, text) IS
  'Remove the loaded row of one source key from mail.* (accounts cascade to their sessions).';
