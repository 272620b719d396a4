-- job: mailmig-retention
-- schedule: maintenance.retention_schedule
-- database: target
-- Drops the partitions of mail.emails wholly older than maintenance.retention
-- (with their message_id guard entries). Dropping whole partitions leaves no bloat,
-- which is why no VACUUM FULL is scheduled.
SELECT * FROM mail.drop_expired_partitions({retention}::interval)
