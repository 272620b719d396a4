-- cron_jobs: the jobs whose name matches a LIKE pattern, with the start, status and message of each one's last run
SELECT j.jobname, j.schedule, j.database, j.active, r.start_time, r.status, r.return_message
FROM cron.job j
LEFT JOIN LATERAL (
  SELECT d.start_time, d.status, d.return_message FROM cron.job_run_details d
  WHERE d.jobid = j.jobid ORDER BY d.start_time DESC NULLS LAST LIMIT 1
) r ON true
WHERE j.jobname LIKE %(pattern)s
ORDER BY j.jobname
