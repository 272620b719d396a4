SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION migration.reverse_sync_advance(p_install_id text, p_after_xid xid8, p_after_seq bigint,
                                                          p_changes bigint, p_keys bigint,
                                                          p_lag_seconds double precision DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  /* Record that every changelog row up to (p_after_xid, p_after_seq) is in the SQLite
     files (called after their commit), with the figures of the pass and a heartbeat.
     Refuses another install's position and a position that would move backwards. */
  UPDATE migration.reverse_sync_position p
  SET after_xid = p_after_xid, after_seq = p_after_seq,
      applied_changes = p.applied_changes + p_changes, applied_keys = p.applied_keys + p_keys,
      updated_at = now(), heartbeat_at = clock_timestamp(),
      lag_seconds = coalesce(p_lag_seconds, p.lag_seconds)
  WHERE p.install_id = p_install_id AND (p.after_xid, p.after_seq) <= (p_after_xid, p_after_seq);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'the reverse sync position moved (another install or a restart of the reverse sync): refusing to record (%, %)',
      p_after_xid, p_after_seq USING ERRCODE = '40001';
  END IF;
END
$$;

COMMENT ON FUNCTION migration.reverse_sync_advance(text, xid8, bigint, bigint, bigint, double precision) IS
  'The reverse sync''s position moved forward after a SQLite commit (with its figures and a heartbeat).';
