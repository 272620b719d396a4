-- cron_target: the target database's name and pg_cron's database (cron.database_name; NULL when pg_cron is not loaded)
SELECT current_database(), current_setting('cron.database_name', true)
