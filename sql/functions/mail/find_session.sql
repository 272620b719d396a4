SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.find_session(p_id text)
RETURNS TABLE (id text, account_id bigint, created_at timestamptz, expires_at timestamptz,
               ip text, user_agent text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  /* One session by its id (a secret: mail_app only). */
  SELECT s.id, s.account_id, s.created_at, s.expires_at, s.ip, s.user_agent
  FROM mail.sessions s
  WHERE s.id = p_id
$$;

COMMENT ON FUNCTION mail.find_session(text) IS 'One session by id: mail_app only.';
GRANT EXECUTE ON FUNCTION mail.find_session(text) TO mail_app;
