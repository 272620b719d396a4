SET LOCAL ROLE mail_owner;

-- SQLSTATE 23505 like a unique index would raise, naming the message_id.
CREATE OR REPLACE FUNCTION mail.raise_duplicate_message_id(p_message_id text, p_email_id bigint)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  /* The one error every write path raises for a duplicate message_id. */
  RAISE EXCEPTION 'duplicate message_id %: already stored as email %', p_message_id, p_email_id
    USING ERRCODE = 'unique_violation',
          DETAIL = format('Key (message_id)=(%s) already exists.', p_message_id),
          SCHEMA = 'mail', TABLE = 'emails', CONSTRAINT = 'message_id_guard_pkey';
END
$$;

COMMENT ON FUNCTION mail.raise_duplicate_message_id(text, bigint) IS
  'Raises SQLSTATE 23505 naming a duplicate message_id: the one error of every write path.';
