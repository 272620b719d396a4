-- cron_schedule: a pg_cron job scheduled by name in the cron database (pg_cron before 1.4 has no schedule_in_database)
SELECT cron.schedule(%(name)s, %(schedule)s, %(command)s)
