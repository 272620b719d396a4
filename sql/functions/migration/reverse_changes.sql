SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION migration.reverse_changes(p_after_xid xid8, p_after_seq bigint, p_limit integer DEFAULT 1000)
RETURNS TABLE (xid xid8, seq bigint, source_table text, source_key text, op text, at timestamptz)
LANGUAGE sql STABLE
BEGIN ATOMIC
  /* The next changelog rows after (p_after_xid, p_after_seq) in (xid, seq) order, only
     of transactions below the oldest one still running: those are all finished, so no
     row can later appear before the last one returned (identity values commit out of
     order; xids below the horizon cannot). Read it in the snapshot that reads the rows'
     current states (REPEATABLE READ), so the two agree. */
  SELECT c.xid, c.seq, c.source_table, c.source_key, c.op, c.at
  FROM migration.reverse_changelog c
  WHERE (c.xid, c.seq) > (p_after_xid, p_after_seq)
    AND c.xid < pg_snapshot_xmin(pg_current_snapshot())
  ORDER BY c.xid, c.seq
  LIMIT p_limit;
END;

COMMENT ON FUNCTION migration.reverse_changes(xid8, bigint, integer) IS
  'Reverse changelog rows after a position, only of finished transactions, in (xid, seq) order.';
