SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.create_session(
  p_id         text,
  p_account_id bigint,
  p_expires_at timestamptz DEFAULT NULL,
  p_ip         text DEFAULT NULL,
  p_user_agent text DEFAULT NULL,
  p_created_at timestamptz DEFAULT now()
) RETURNS text
LANGUAGE plpgsql
AS $$
BEGIN
  /* Create a session of an account; its id (a secret, chosen by the caller). A missing
     account fails with 23503. Timestamps at whole seconds. */
  INSERT INTO mail.sessions (id, account_id, created_at, expires_at, ip, user_agent)
  VALUES (p_id, p_account_id, date_trunc('second', p_created_at), date_trunc('second', p_expires_at),
          p_ip, p_user_agent);
  RETURN p_id;
END
$$;

COMMENT ON FUNCTION mail.create_session(text, bigint, timestamptz, text, text, timestamptz) IS
  'Creates a session of an account; its id.';
GRANT EXECUTE ON FUNCTION mail.create_session(text, bigint, timestamptz, text, text, timestamptz) TO mail_app;
