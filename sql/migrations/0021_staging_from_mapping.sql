-- The staging tables of the mapped legacy tables are made from migration.column_map by
-- migration.prepare_staging() at the start of each load (config/mapping.yaml is their one
-- source); the lists of 0006 go. staging.hostile, which is the same for every table, stays.
SET LOCAL ROLE mail_owner;

DROP TABLE staging.emails, staging.accounts, staging.sessions;
