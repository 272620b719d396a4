SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.delete_email(p_id bigint)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
  /* Delete one email (its guard entry goes with it, by trigger); false when there is none. */
  DELETE FROM mail.emails WHERE id = p_id;
  RETURN FOUND;
END
$$;

COMMENT ON FUNCTION mail.delete_email(bigint) IS 'Deletes one email; false when there is no such email.';
GRANT EXECUTE ON FUNCTION mail.delete_email(bigint) TO mail_app;
