SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.create_account(
  p_email         text,
  p_token         text,
  p_expires_at    timestamptz DEFAULT NULL,
  p_password_hash text DEFAULT NULL,
  p_created_at    timestamptz DEFAULT now(),
  p_id            bigint DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
  v_id bigint;
BEGIN
  /* Create an active account; its id (p_id in dual mode, where SQLite assigned it).
     A taken address (ASCII case folded, as SQLite's NOCASE) or token fails with 23505
     naming accounts_email_ascii_lower_key or accounts_token_key. Timestamps at whole
     seconds, as the legacy files keep them. */
  INSERT INTO mail.accounts (id, email, password_hash, token, created_at, expires_at, is_active)
  VALUES (coalesce(p_id, nextval('mail.accounts_id_seq')), p_email, p_password_hash, p_token,
          date_trunc('second', p_created_at), date_trunc('second', p_expires_at), true)
  RETURNING id INTO v_id;
  RETURN v_id;
END
$$;

COMMENT ON FUNCTION mail.create_account(text, text, timestamptz, text, timestamptz, bigint) IS
  'Creates an active account (address, token: a secret); its id.';
GRANT EXECUTE ON FUNCTION mail.create_account(text, text, timestamptz, text, timestamptz, bigint) TO mail_app;
