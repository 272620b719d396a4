-- cron_unschedule: the jobs whose name matches a LIKE pattern unscheduled (their names)
SELECT j.jobname, cron.unschedule(j.jobid) FROM cron.job j
WHERE j.jobname LIKE %(pattern)s ORDER BY j.jobname
