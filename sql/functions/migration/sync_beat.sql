SET LOCAL ROLE mail_owner;

-- The sync's heartbeat for one source file, written with each batch and, when a read
-- found nothing, at most once a second: p_now is the time of the read, p_applied_seq the
-- position after it, p_oldest_unapplied_at the `at` of the oldest change the read found
-- not applied yet (NULL: none), so that p_now - p_oldest_unapplied_at is how far behind
-- the sync was when it looked. migration.sync_status reads it.
CREATE OR REPLACE FUNCTION migration.sync_beat(p_source text, p_run_id text, p_pid int, p_following boolean,
                                               p_applied_seq bigint, p_source_seq bigint,
                                               p_oldest_unapplied_at timestamptz, p_rows_per_s double precision,
                                               p_now timestamptz DEFAULT now())
RETURNS void
LANGUAGE sql AS $$
  INSERT INTO migration.sync_heartbeat (source, run_id, pid, following, beat_at, applied_seq, source_seq,
                                        oldest_unapplied_at, rows_per_s)
  VALUES (p_source, p_run_id, p_pid, p_following, p_now, p_applied_seq, p_source_seq,
          p_oldest_unapplied_at, p_rows_per_s)
  ON CONFLICT (source) DO UPDATE
    SET run_id = EXCLUDED.run_id, pid = EXCLUDED.pid, following = EXCLUDED.following,
        beat_at = EXCLUDED.beat_at, applied_seq = EXCLUDED.applied_seq, source_seq = EXCLUDED.source_seq,
        oldest_unapplied_at = EXCLUDED.oldest_unapplied_at, rows_per_s = EXCLUDED.rows_per_s
$$;

COMMENT ON FUNCTION migration.sync_beat(text, text, int, boolean, bigint, bigint, timestamptz, double precision, timestamptz) IS
  'The sync''s heartbeat for one source file: what its last read of the changelog saw, and when.';
