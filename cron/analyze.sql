-- job: mailmig-analyze
-- schedule: maintenance.analyze_schedule
-- database: target
-- Autovacuum analyzes partitions but never a partitioned parent, whose statistics
-- the planner uses for queries over all months. One statement: a job is one transaction.
ANALYZE mail.emails, mail.accounts, mail.sessions
