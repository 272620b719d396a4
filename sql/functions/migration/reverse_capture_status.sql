SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION migration.reverse_capture_status(p_now timestamptz DEFAULT clock_timestamp())
RETURNS TABLE (installed boolean, install_id text, installed_at timestamptz, missing text[],
               changelog_rows bigint, sync_started boolean, sync_install_id text,
               backlog bigint, oldest_unapplied_age_s double precision,
               applied_changes bigint, applied_keys bigint,
               heartbeat_age_s double precision, lag_seconds double precision)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
  v_pos migration.reverse_sync_position;
BEGIN
  /* Reverse capture and the reverse sync at a glance: installed or not (and what is
     missing), rows in the changelog, rows not yet carried to SQLite (all of them when
     the reverse sync has not started: the cut-over sets its start) and the oldest one's
     age, what the reverse sync has carried, its last heartbeat and lag. */
  SELECT s.installed, s.install_id, s.installed_at, s.missing
    INTO installed, install_id, installed_at, missing
  FROM migration.reverse_capture_state() s;
  SELECT count(*) INTO changelog_rows FROM migration.reverse_changelog;
  SELECT * INTO v_pos FROM migration.reverse_sync_position;
  sync_started := FOUND;
  sync_install_id := v_pos.install_id;
  SELECT count(*), extract(epoch FROM p_now - min(c.at))
    INTO backlog, oldest_unapplied_age_s
  FROM migration.reverse_changelog c
  WHERE NOT sync_started OR (c.xid, c.seq) > (v_pos.after_xid, v_pos.after_seq);
  applied_changes := v_pos.applied_changes;
  applied_keys := v_pos.applied_keys;
  heartbeat_age_s := extract(epoch FROM p_now - v_pos.heartbeat_at);
  lag_seconds := v_pos.lag_seconds;
  RETURN NEXT;
END
$$;

COMMENT ON FUNCTION migration.reverse_capture_status(timestamptz) IS
  'Reverse capture installed or not, changelog backlog and the reverse sync''s position, heartbeat and lag.';
