SET LOCAL ROLE mail_owner;

-- Every key the sync applied after the point p_batch_id (a migration.sync_point()), once,
-- with where its last application left it (loaded, repaired, rejected, deleted) and in
-- which batch. Refused when the history after that point was pruned (answering in part
-- would let a validation of "the changed keys" miss some).
CREATE OR REPLACE FUNCTION migration.sync_keys_since(p_batch_id bigint)
RETURNS TABLE (source_table text, source_key text, outcome text, batch_id bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_pruned bigint;
BEGIN
  /* The keys changed since a point: what the cut-over re-validates. */
  SELECT pruned_through INTO v_pruned FROM migration.sync_history_horizon;
  IF v_pruned IS NOT NULL AND p_batch_id < v_pruned THEN
    RAISE EXCEPTION 'sync history after batch % is pruned (kept from batch %): validate everything instead',
      p_batch_id, v_pruned + 1;
  END IF;
  RETURN QUERY
  SELECT DISTINCT ON (k.source_table, k.source_key) k.source_table, k.source_key, k.outcome, k.batch_id
  FROM migration.sync_applied_keys k
  WHERE k.batch_id > p_batch_id
  ORDER BY k.source_table, k.source_key, k.batch_id DESC;
END;
$$;

COMMENT ON FUNCTION migration.sync_keys_since(bigint) IS
  'Every key the sync applied after a point (a sync_point()), with its last outcome; refused if that history was pruned.';
