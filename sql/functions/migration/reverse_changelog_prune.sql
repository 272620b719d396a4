SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION migration.reverse_changelog_prune(p_limit integer DEFAULT 5000)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
  v_pruned bigint;
BEGIN
  /* Delete up to p_limit changelog rows the reverse sync has carried (at or before its
     position), oldest first: small batches keep each transaction short. */
  DELETE FROM migration.reverse_changelog c
  WHERE c.seq IN (
    SELECT c2.seq FROM migration.reverse_changelog c2, migration.reverse_sync_position p
    WHERE (c2.xid, c2.seq) <= (p.after_xid, p.after_seq)
    ORDER BY c2.xid, c2.seq
    LIMIT p_limit);
  GET DIAGNOSTICS v_pruned = ROW_COUNT;
  RETURN v_pruned;
END
$$;

COMMENT ON FUNCTION migration.reverse_changelog_prune(integer) IS
  'Deletes a small batch of reverse changelog rows already carried to SQLite.';
