-- requires: functions/mail/guard_after_insert.sql
-- requires: functions/mail/guard_after_update.sql
-- requires: functions/mail/guard_after_delete.sql
-- requires: functions/mail/guard_before_truncate.sql
SET LOCAL ROLE mail_owner;

-- The guard triggers of one table (the parent, or a partition written to directly).
CREATE OR REPLACE FUNCTION mail.guard_email_table(p_table regclass) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  /* Attach the message_id guard triggers to p_table unless it has them. */
  IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = p_table AND tgname = 'message_id_guard_insert') THEN
    RETURN;
  END IF;
  EXECUTE format('CREATE TRIGGER message_id_guard_insert AFTER INSERT ON %s'
                 ' REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT'
                 ' EXECUTE FUNCTION mail.guard_after_insert()', p_table);
  EXECUTE format('CREATE TRIGGER message_id_guard_update AFTER UPDATE ON %s'
                 ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT'
                 ' EXECUTE FUNCTION mail.guard_after_update()', p_table);
  EXECUTE format('CREATE TRIGGER message_id_guard_delete AFTER DELETE ON %s'
                 ' REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT'
                 ' EXECUTE FUNCTION mail.guard_after_delete()', p_table);
  IF (SELECT relkind FROM pg_class WHERE oid = p_table) = 'r' THEN
    -- TRUNCATE of the parent fires this on every partition it empties.
    EXECUTE format('CREATE TRIGGER message_id_guard_truncate BEFORE TRUNCATE ON %s'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION mail.guard_before_truncate()', p_table);
  END IF;
END
$$;

COMMENT ON FUNCTION mail.guard_email_table(regclass) IS
  'Attaches the message_id guard triggers to mail.emails or one of its partitions (idempotent).';

-- Every existing table of mail.emails gets the guard (partitions made by
-- mail.create_email_partition attach it themselves).
SELECT mail.guard_email_table(t.relid)
FROM pg_partition_tree('mail.emails') t
WHERE t.isleaf OR t.level = 0;
