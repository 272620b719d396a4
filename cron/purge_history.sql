-- job: mailmig-purge-history
-- schedule: maintenance.purge_history_schedule
-- database: cron
-- pg_cron never purges cron.job_run_details itself; keep maintenance.job_history_keep.
DELETE FROM cron.job_run_details WHERE end_time < now() - {job_history_keep}::interval
