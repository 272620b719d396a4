SET LOCAL ROLE mail_owner;

-- Is this source row already in mail.* (a re-run)?
CREATE OR REPLACE FUNCTION migration.row_present(p_table text, p_key text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  /* The idempotence check of the row path. */
  IF p_table = 'emails' THEN
    RETURN p_key ~ '^-?[0-9]{1,19}$' AND EXISTS (SELECT 1 FROM mail.emails WHERE id = p_key::bigint);
  ELSIF p_table = 'accounts' THEN
    RETURN p_key ~ '^-?[0-9]{1,19}$' AND EXISTS (SELECT 1 FROM mail.accounts WHERE id = p_key::bigint);
  ELSIF p_table = 'sessions' THEN
    RETURN EXISTS (SELECT 1 FROM mail.sessions WHERE id = p_key);
  END IF;
  RAISE EXCEPTION 'unknown source table %', p_table;
END;
$$;

COMMENT ON FUNCTION migration.row_present(text, text) IS
  'Is this source row already in mail.* (a re-run)?';
