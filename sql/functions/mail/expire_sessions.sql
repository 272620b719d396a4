SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.expire_sessions(p_now timestamptz DEFAULT now()) RETURNS bigint
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

COMMENT ON FUNCTION mail.expire_sessions(timestamptz) IS
  'Deletes the sessions past expires_at; returns how many.';
GRANT EXECUTE ON FUNCTION mail.expire_sessions(timestamptz) TO mail_app;
