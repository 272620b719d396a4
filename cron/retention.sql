-- job: mailmig-retention
-- schedule: maintenance.retention_schedule
-- database: target
-- Drops the partitions of mail.emails wholly older than maintenance.retention
-- (with their message_id guard entries), in short steps that never stall ingest (see the
-- procedure). Dropping whole partitions leaves no bloat, which is why no VACUUM FULL is
-- scheduled. A procedure that commits: pg_cron runs the CALL as one statement.
CALL mail.drop_expired_partitions({retention}::interval)
