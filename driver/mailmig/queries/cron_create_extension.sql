-- cron_create_extension: pg_cron in its database (cron.database_name), if it is not there yet
CREATE EXTENSION IF NOT EXISTS pg_cron
