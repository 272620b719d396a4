SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION migration.reverse_capture_state()
RETURNS TABLE (installed boolean, install_id text, installed_at timestamptz, missing text[])
LANGUAGE sql STABLE
BEGIN ATOMIC
  /* Is reverse capture complete? Every table of mail (and every partition of
     mail.emails) must carry an enabled mailmig_reverse_capture trigger, and the install
     must be recorded; `missing` names what is not so. */
  WITH wanted AS (
    SELECT t.relid AS rel
    FROM pg_partition_tree('mail.emails'::regclass) t
    UNION ALL SELECT 'mail.accounts'::regclass
    UNION ALL SELECT 'mail.sessions'::regclass
  ), problems AS (
    SELECT w.rel::text || CASE WHEN tg.oid IS NULL THEN ': no trigger' ELSE ': trigger disabled' END AS what
    FROM wanted w
    LEFT JOIN pg_trigger tg ON tg.tgrelid = w.rel AND tg.tgname = 'mailmig_reverse_capture'
    WHERE tg.oid IS NULL OR tg.tgenabled = 'D'
    UNION ALL
    SELECT 'migration.reverse_capture: no install recorded'
    WHERE NOT EXISTS (SELECT 1 FROM migration.reverse_capture)
  )
  SELECT (SELECT count(*) FROM problems) = 0,
         (SELECT c.install_id FROM migration.reverse_capture c),
         (SELECT c.installed_at FROM migration.reverse_capture c),
         coalesce((SELECT array_agg(p.what ORDER BY p.what) FROM problems p), '{}');
END;

COMMENT ON FUNCTION migration.reverse_capture_state() IS
  'Whether reverse capture is installed and enabled on every mail table and partition.';
