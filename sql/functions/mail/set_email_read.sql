SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.set_email_read(p_id bigint, p_is_read boolean DEFAULT true)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
  /* Mark one email read (or unread); false when there is no such email. */
  UPDATE mail.emails SET is_read = p_is_read WHERE id = p_id;
  RETURN FOUND;
END
$$;

COMMENT ON FUNCTION mail.set_email_read(bigint, boolean) IS
  'Marks one email read or unread; false when there is no such email.';
GRANT EXECUTE ON FUNCTION mail.set_email_read(bigint, boolean) TO mail_app;
