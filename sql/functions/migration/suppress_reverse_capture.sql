SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION migration.suppress_reverse_capture() RETURNS void
LANGUAGE sql
BEGIN ATOMIC
  /* Keep the writes of the calling transaction out of the reverse changelog (a
     transaction-local setting the capture trigger reads; gone at COMMIT/ROLLBACK). */
  SELECT set_config('mailmig.suppress_reverse_capture', 'on', true);
END;

COMMENT ON FUNCTION migration.suppress_reverse_capture() IS
  'Reverse capture ignores the rest of the calling transaction (the forward sync calls it).';
GRANT EXECUTE ON FUNCTION migration.suppress_reverse_capture() TO PUBLIC;
