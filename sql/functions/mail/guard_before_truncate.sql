SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.guard_before_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  /* Release the guard entries of a partition about to be truncated. */
  EXECUTE format(
    'DELETE FROM mail.message_id_guard g USING %I.%I p WHERE g.message_id = p.message_id AND g.email_id = p.id',
    TG_TABLE_SCHEMA, TG_TABLE_NAME);
  RETURN NULL;
END
$$;

COMMENT ON FUNCTION mail.guard_before_truncate() IS
  'Statement trigger: releases the guard entries of a partition about to be truncated.';
