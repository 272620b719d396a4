SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION migration.reverse_capture_install(p_lock_timeout text DEFAULT '5s')
RETURNS TABLE (install_id text, created text[], already boolean)
LANGUAGE plpgsql
AS $$
DECLARE
  v_table text;
  v_missing text[] := '{}';
BEGIN
  /* Attach the reverse capture triggers to mail.emails (a row trigger on the
     partitioned parent: every partition, present and future, gets a clone), mail.accounts
     and mail.sessions. Idempotent: an intact install is left as it is; an incomplete or
     disabled one is replaced under a new install id (the reverse sync refuses to read
     across the gap). CREATE TRIGGER waits for in-flight writes: lock_timeout bounds it. */
  PERFORM pg_advisory_xact_lock(hashtext('mailmig.reverse_capture'));
  PERFORM set_config('lock_timeout', p_lock_timeout, true);

  SELECT s.missing INTO v_missing FROM migration.reverse_capture_state() s;
  IF cardinality(v_missing) = 0 AND EXISTS (SELECT 1 FROM migration.reverse_capture) THEN
    RETURN QUERY SELECT c.install_id, '{}'::text[], true FROM migration.reverse_capture c;
    RETURN;
  END IF;

  FOREACH v_table IN ARRAY ARRAY['emails', 'accounts', 'sessions'] LOOP
    IF EXISTS (SELECT 1 FROM pg_trigger
               WHERE tgrelid = format('mail.%I', v_table)::regclass AND tgname = 'mailmig_reverse_capture') THEN
      EXECUTE format('DROP TRIGGER mailmig_reverse_capture ON mail.%I', v_table);
    END IF;
    EXECUTE format('CREATE TRIGGER mailmig_reverse_capture AFTER INSERT OR UPDATE OR DELETE ON mail.%I'
                   ' FOR EACH ROW EXECUTE FUNCTION migration.reverse_capture_row(%L)', v_table, v_table);
  END LOOP;
  DELETE FROM migration.reverse_capture;
  INSERT INTO migration.reverse_capture (install_id)
  VALUES (left(replace(gen_random_uuid()::text, '-', ''), 16));
  RETURN QUERY SELECT c.install_id, ARRAY['mail.emails', 'mail.accounts', 'mail.sessions'], false
               FROM migration.reverse_capture c;
END
$$;

COMMENT ON FUNCTION migration.reverse_capture_install(text) IS
  'Installs reverse capture (row triggers on mail.emails, accounts, sessions); idempotent.';
