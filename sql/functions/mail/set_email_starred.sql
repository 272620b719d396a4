SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.set_email_starred(p_id bigint, p_starred boolean DEFAULT true)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
  /* Star (or unstar) one email; false when there is no such email. */
  UPDATE mail.emails SET starred = p_starred WHERE id = p_id;
  RETURN FOUND;
END
$$;

COMMENT ON FUNCTION mail.set_email_starred(bigint, boolean) IS
  'Stars or unstars one email; false when there is no such email.';
GRANT EXECUTE ON FUNCTION mail.set_email_starred(bigint, boolean) TO mail_app;
