-- cron_schedule_in_database: a pg_cron job scheduled by name to run in a given database (pg_cron 1.4+; a job of the same name is replaced)
SELECT cron.schedule_in_database(%(name)s, %(schedule)s, %(command)s, %(database)s)
