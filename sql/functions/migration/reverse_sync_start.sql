SET LOCAL ROLE mail_owner;

-- the earlier signature counted the skipped rows (a scan inside the write pause)
DROP FUNCTION IF EXISTS migration.reverse_sync_start();
CREATE OR REPLACE FUNCTION migration.reverse_sync_start()
RETURNS TABLE (install_id text, after_xid xid8)
LANGUAGE plpgsql
AS $$
DECLARE
  v_install text;
  v_horizon xid8 := pg_snapshot_xmin(pg_current_snapshot());
BEGIN
  /* Start the reverse sync at this moment: every change of a transaction that is
     already finished is SQLite's own (it came from SQLite through the forward sync, or
     was written in dual mode after SQLite) and is skipped; every later one will be
     carried back. The cut-over calls it while writes are paused and the forward sync
     has drained, just before switching to postgres. */
  SELECT c.install_id INTO v_install FROM migration.reverse_capture c;
  IF v_install IS NULL THEN
    RAISE EXCEPTION 'reverse capture is not installed (mailmig reverse-capture install)'
      USING ERRCODE = '55000';
  END IF;
  INSERT INTO migration.reverse_sync_position AS p (install_id, after_xid, after_seq)
  VALUES (v_install, v_horizon, 0)
  ON CONFLICT (only_row) DO UPDATE
    SET install_id = excluded.install_id, after_xid = excluded.after_xid, after_seq = 0,
        started_at = now(), applied_changes = 0, applied_keys = 0, updated_at = now(),
        heartbeat_at = NULL, lag_seconds = NULL;
  -- what lies before the start is pruned later, in small batches, by the reverse sync
  -- (migration.reverse_changelog_prune), not here: this runs inside the write pause
  install_id := v_install;
  after_xid := v_horizon;
  RETURN NEXT;
END
$$;

COMMENT ON FUNCTION migration.reverse_sync_start() IS
  'Starts the reverse sync now: finished transactions'' changes are SQLite''s own and are skipped.';
