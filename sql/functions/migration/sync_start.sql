SET LOCAL ROLE mail_owner;

-- Where the sync of one source file starts, recorded by a load whose snapshot held the
-- file's capture: p_seq is the changelog's high-water mark inside that snapshot, p_seq_at
-- the `at` of that changelog row (NULL when the snapshot no longer holds it).
-- p_exact: mail.* held nothing but this load's rows (it was empty when the load began),
-- so mail.* is the snapshot's state and the changes after p_seq are all that is missing.
-- Returns what it did:
--   started  the position is now (p_install_id, p_seq);
--   kept     a position of the same install at or before p_seq stays: the changes after
--            it are still in the changelog (the sync prunes only what it applied) and
--            re-applying one is harmless (each key takes its current source state);
--   impossible  no exact start: mail.* held rows this snapshot may contradict, and no
--            position of this install covers them. The caller says so.
CREATE OR REPLACE FUNCTION migration.sync_start(p_source text, p_install_id text, p_seq bigint,
                                                p_seq_at double precision, p_path text, p_run_id text,
                                                p_exact boolean)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_current migration.sync_position;
BEGIN
  /* The load's half of "the load and the capture agree" (issue 12 item 2). */
  SELECT * INTO v_current FROM migration.sync_position WHERE source = p_source FOR UPDATE;
  IF FOUND AND v_current.install_id = p_install_id AND v_current.seq <= p_seq THEN
    RETURN 'kept';
  END IF;
  IF NOT p_exact THEN
    RETURN 'impossible';
  END IF;
  INSERT INTO migration.sync_position (source, install_id, seq, seq_at, path, set_by)
  VALUES (p_source, p_install_id, p_seq, p_seq_at, p_path, p_run_id)
  ON CONFLICT (source) DO UPDATE
    SET install_id = EXCLUDED.install_id, seq = EXCLUDED.seq, seq_at = EXCLUDED.seq_at, path = EXCLUDED.path,
        set_by = EXCLUDED.set_by, updated_at = now();
  RETURN 'started';
END;
$$;

COMMENT ON FUNCTION migration.sync_start(text, text, bigint, double precision, text, text, boolean) IS
  'Records where the sync of a source file starts (called by a load whose snapshot held the capture).';
