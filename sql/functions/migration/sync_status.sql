SET LOCAL ROLE mail_owner;

-- Per source file: the sync's position and its last heartbeat, with the lag and the
-- heartbeat's age as of p_now (psql: SELECT * FROM migration.sync_status();).
--   lag_seconds: age of the oldest unapplied change when the sync last read the
--                changelog (0 when it found none): how far behind it was when it looked;
--   heartbeat_age_seconds: how long ago that read was (a stopped sync: it grows);
--   backlog: changes the file held past the position after that read's batch.
-- A cut-over trusts lag_seconds only with a small heartbeat_age_seconds.
CREATE OR REPLACE FUNCTION migration.sync_status(p_now timestamptz DEFAULT now())
RETURNS TABLE (source text, install_id text, position_seq bigint, position_set_by text,
               position_updated_at timestamptz, run_id text, following boolean, pid int,
               beat_at timestamptz, heartbeat_age_seconds double precision, source_seq bigint,
               backlog bigint, oldest_unapplied_at timestamptz, lag_seconds double precision,
               rows_per_s double precision)
LANGUAGE sql STABLE AS $$
  SELECT p.source, p.install_id, p.seq, p.set_by, p.updated_at, h.run_id, h.following, h.pid,
         h.beat_at, extract(epoch FROM p_now - h.beat_at)::float8, h.source_seq,
         greatest(h.source_seq - p.seq, 0),
         h.oldest_unapplied_at,
         CASE WHEN h.beat_at IS NULL THEN NULL
              WHEN h.oldest_unapplied_at IS NULL THEN 0
              ELSE greatest(extract(epoch FROM h.beat_at - h.oldest_unapplied_at)::float8, 0) END,
         h.rows_per_s
  FROM migration.sync_position p
  LEFT JOIN migration.sync_heartbeat h ON h.source = p.source
  ORDER BY p.source
$$;

COMMENT ON FUNCTION migration.sync_status(timestamptz) IS
  'Per source file: the sync position, its last heartbeat, lag and heartbeat age.';
