SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION migration.reverse_capture_uninstall(p_lock_timeout text DEFAULT '5s')
RETURNS TABLE (removed text[], changelog_rows bigint)
LANGUAGE plpgsql
AS $$
DECLARE
  v_table text;
  v_removed text[] := '{}';
BEGIN
  /* Remove the reverse capture triggers, the install record, the changelog and the
     reverse sync's position (idempotent). After this a rollback cannot carry what
     PostgreSQL receives back to SQLite: the rollback window is closed. */
  PERFORM pg_advisory_xact_lock(hashtext('mailmig.reverse_capture'));
  PERFORM set_config('lock_timeout', p_lock_timeout, true);
  FOREACH v_table IN ARRAY ARRAY['emails', 'accounts', 'sessions'] LOOP
    IF EXISTS (SELECT 1 FROM pg_trigger
               WHERE tgrelid = format('mail.%I', v_table)::regclass
                 AND tgname = 'mailmig_reverse_capture') THEN
      EXECUTE format('DROP TRIGGER mailmig_reverse_capture ON mail.%I', v_table);
      v_removed := v_removed || format('mail.%I', v_table);
    END IF;
  END LOOP;
  SELECT count(*) INTO changelog_rows FROM migration.reverse_changelog;
  DELETE FROM migration.reverse_capture;
  DELETE FROM migration.reverse_sync_position;
  TRUNCATE migration.reverse_changelog;
  removed := v_removed;
  RETURN NEXT;
END
$$;

COMMENT ON FUNCTION migration.reverse_capture_uninstall(text) IS
  'Removes reverse capture (triggers, changelog, reverse sync position): closes the rollback window.';
