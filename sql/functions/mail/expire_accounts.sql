SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.expire_accounts(p_grace interval DEFAULT '7 days', p_now timestamptz DEFAULT now())
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

COMMENT ON FUNCTION mail.expire_accounts(interval, timestamptz) IS
  'Deactivates accounts past expires_at and deletes them p_grace later.';
GRANT EXECUTE ON FUNCTION mail.expire_accounts(interval, timestamptz) TO mail_app;
