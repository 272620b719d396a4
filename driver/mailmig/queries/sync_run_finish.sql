-- A sync run's outcome and report in migration.runs.
UPDATE migration.runs SET finished_at = now(), status = %(status)s, report = %(report)s WHERE run_id = %(run_id)s
