SET LOCAL ROLE mail_owner;

-- Is this source row already in mail.* (a re-run)? Looked up by the key the row has there
-- (migration.key_target: a key of another storage class than its column's converts).
CREATE OR REPLACE FUNCTION migration.row_present(p_table text, p_key text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_target text := migration.key_target(p_table, p_key);
BEGIN
  /* The idempotence check of the row path. */
  IF p_table = 'sessions' THEN
    RETURN EXISTS (SELECT 1 FROM mail.sessions WHERE id = v_target);
  ELSIF p_table NOT IN ('emails', 'accounts') THEN
    RAISE EXCEPTION 'unknown source table %', p_table;
  ELSIF v_target IS NULL OR v_target !~ '^-?[0-9]{1,19}$'
        OR v_target::numeric NOT BETWEEN -9223372036854775808 AND 9223372036854775807 THEN
    RETURN false;  -- not a key any loaded row can have
  ELSIF p_table = 'emails' THEN
    RETURN EXISTS (SELECT 1 FROM mail.emails WHERE id = v_target::bigint);
  END IF;
  RETURN EXISTS (SELECT 1 FROM mail.accounts WHERE id = v_target::bigint);
END;
$$;

COMMENT ON FUNCTION migration.row_present(text, text) IS
  'Is this source row already in mail.* (a re-run)? By the key it has there.';
