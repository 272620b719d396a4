SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION migration.reverse_capture_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  /* Row trigger of reverse capture: log the changed key of mail.<TG_ARGV[0]>, unless
     the writing transaction suppressed capture (the forward sync's own writes must not
     travel back to SQLite: migration.suppress_reverse_capture()). Keys only. */
  IF current_setting('mailmig.suppress_reverse_capture', true) = 'on' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN
    INSERT INTO migration.reverse_changelog (source_table, source_key, op)
    VALUES (TG_ARGV[0], OLD.id::text, 'D');
  ELSIF TG_OP = 'UPDATE' THEN
    IF OLD.id IS DISTINCT FROM NEW.id THEN
      -- a changed key: the old one is gone
      INSERT INTO migration.reverse_changelog (source_table, source_key, op)
      VALUES (TG_ARGV[0], OLD.id::text, 'D');
    END IF;
    INSERT INTO migration.reverse_changelog (source_table, source_key, op)
    VALUES (TG_ARGV[0], NEW.id::text, 'U');
  ELSE
    INSERT INTO migration.reverse_changelog (source_table, source_key, op)
    VALUES (TG_ARGV[0], NEW.id::text, 'I');
  END IF;
  RETURN NULL;
END
$$;

COMMENT ON FUNCTION migration.reverse_capture_row() IS
  'Reverse capture row trigger: logs the changed key into migration.reverse_changelog.';
