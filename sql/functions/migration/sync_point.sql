SET LOCAL ROLE mail_owner;

-- The last committed sync batch: a point to ask migration.sync_keys_since about later
-- (e.g. taken right after a full validation). 0 when no batch was ever applied.
CREATE OR REPLACE FUNCTION migration.sync_point() RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT coalesce(max(batch_id), (SELECT pruned_through FROM migration.sync_history_horizon), 0)
  FROM migration.sync_batches
$$;

COMMENT ON FUNCTION migration.sync_point() IS
  'The id of the last committed sync batch (a point for migration.sync_keys_since).';
