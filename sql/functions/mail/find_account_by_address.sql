SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.find_account_by_address(p_email text)
RETURNS TABLE (id bigint, email text, token text, password_hash text, created_at timestamptz,
               expires_at timestamptz, last_login_at timestamptz, is_active boolean)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  /* The account of an address, ASCII case folded like SQLite's NOCASE (through the
     unique index on mail.ascii_lower(email)). Holds the secrets: mail_app only. */
  SELECT a.id, a.email, a.token, a.password_hash, a.created_at, a.expires_at, a.last_login_at, a.is_active
  FROM mail.accounts a
  WHERE mail.ascii_lower(a.email) = mail.ascii_lower(p_email)
$$;

COMMENT ON FUNCTION mail.find_account_by_address(text) IS
  'The account of an address (ASCII case folded); includes the token: mail_app only.';
GRANT EXECUTE ON FUNCTION mail.find_account_by_address(text) TO mail_app;
