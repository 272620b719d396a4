-- cron_database: the name of this database, and whether its pg_cron can schedule jobs in other databases (schedule_in_database, 1.4+)
SELECT current_database(),
       to_regprocedure('cron.schedule_in_database(text,text,text,text,text,boolean)') IS NOT NULL
