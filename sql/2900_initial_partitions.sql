-- A new database can take mail at once: the current month and the next three.
-- From then on the premake job (cron/premake.sql) keeps them ahead.
SET LOCAL ROLE mail_owner;
SELECT mail.ensure_partitions(3);
