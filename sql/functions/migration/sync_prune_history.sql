SET LOCAL ROLE mail_owner;

-- Forget sync batches (and the keys they applied) committed before p_now - p_keep; the
-- horizon moves with them, so that sync_keys_since refuses a point before it. Returns
-- the batches removed.
CREATE OR REPLACE FUNCTION migration.sync_prune_history(p_keep interval DEFAULT '7 days',
                                                        p_now timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_through bigint;
  v_removed bigint;
BEGIN
  /* Keep the applied-keys history bounded. */
  SELECT max(batch_id) INTO v_through FROM migration.sync_batches WHERE committed_at < p_now - p_keep;
  IF v_through IS NULL THEN
    RETURN 0;
  END IF;
  DELETE FROM migration.sync_batches WHERE batch_id <= v_through;  -- the keys cascade
  GET DIAGNOSTICS v_removed = ROW_COUNT;
  INSERT INTO migration.sync_history_horizon (pruned_through) VALUES (v_through)
  ON CONFLICT (one) DO UPDATE SET pruned_through = greatest(migration.sync_history_horizon.pruned_through,
                                                            EXCLUDED.pruned_through);
  RETURN v_removed;
END;
$$;

COMMENT ON FUNCTION migration.sync_prune_history(interval, timestamptz) IS
  'Forget sync batches older than p_keep (and their applied keys); sync_keys_since then refuses points before them.';
