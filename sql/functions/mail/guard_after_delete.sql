SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.guard_after_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  /* Release the guard entries of deleted rows (only entries that point at them). */
  DELETE FROM mail.message_id_guard g
  USING old_rows o
  WHERE g.message_id = o.message_id AND g.email_id = o.id;
  RETURN NULL;
END
$$;

COMMENT ON FUNCTION mail.guard_after_delete() IS
  'Statement trigger: releases the guard entries of deleted emails.';
