-- load_run_finish: a load run's end, status and report
UPDATE migration.runs SET finished_at = now(), status = %(status)s, report = %(report)s WHERE run_id = %(run_id)s
