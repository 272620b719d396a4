-- Expiry of accounts and sessions (legacy columns: expires_at NULL = never expires).
SET LOCAL ROLE mail_owner;

CREATE FUNCTION mail.expire_accounts(p_grace interval DEFAULT '7 days', p_now timestamptz DEFAULT now())
RETURNS TABLE (deactivated bigint, deleted bigint)
LANGUAGE plpgsql
AS $$
BEGIN
  /* Accounts past expires_at stop being active; p_grace later they are deleted
     (their sessions with them: ON DELETE CASCADE). Their mail stays until retention. */
  UPDATE mail.accounts SET is_active = false
  WHERE expires_at <= p_now AND is_active IS DISTINCT FROM false;
  GET DIAGNOSTICS deactivated = ROW_COUNT;
  DELETE FROM mail.accounts WHERE expires_at <= p_now - p_grace;
  GET DIAGNOSTICS deleted = ROW_COUNT;
  RETURN NEXT;
END
$$;

CREATE FUNCTION mail.expire_sessions(p_now timestamptz DEFAULT now()) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
  v_deleted bigint;
BEGIN
  /* Delete the sessions past expires_at; returns how many. */
  DELETE FROM mail.sessions WHERE expires_at <= p_now;
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  RETURN v_deleted;
END
$$;

GRANT EXECUTE ON FUNCTION mail.expire_accounts(interval, timestamptz), mail.expire_sessions(timestamptz)
  TO mail_app;
