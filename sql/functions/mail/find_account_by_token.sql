SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.find_account_by_token(p_token text)
RETURNS TABLE (id bigint, email text, token text, password_hash text, created_at timestamptz,
               expires_at timestamptz, last_login_at timestamptz, is_active boolean)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  /* The account holding an API token (the unique index on token). mail_app only. */
  SELECT a.id, a.email, a.token, a.password_hash, a.created_at, a.expires_at, a.last_login_at, a.is_active
  FROM mail.accounts a
  WHERE a.token = p_token
$$;

COMMENT ON FUNCTION mail.find_account_by_token(text) IS 'The account holding an API token: mail_app only.';
GRANT EXECUTE ON FUNCTION mail.find_account_by_token(text) TO mail_app;
