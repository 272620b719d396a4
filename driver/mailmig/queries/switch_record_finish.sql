-- switch_record_finish: how a cut-over or rollback ended, its measured pause and its report
INSERT INTO migration.switches AS s (run_id, kind, finished_at, outcome, from_mode, to_mode, write_pause_s, paused_s,
                                     reason, report)
VALUES (%(run_id)s, %(kind)s, now(), %(outcome)s, %(from_mode)s, %(to_mode)s, %(write_pause_s)s, %(paused_s)s,
        %(reason)s, %(report)s::jsonb)
ON CONFLICT (run_id) DO UPDATE
  SET finished_at = excluded.finished_at, outcome = excluded.outcome, from_mode = excluded.from_mode,
      to_mode = excluded.to_mode, write_pause_s = excluded.write_pause_s, paused_s = excluded.paused_s,
      reason = excluded.reason, report = excluded.report
