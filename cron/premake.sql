-- job: mailmig-premake
-- schedule: maintenance.premake_schedule
-- database: target
-- Keeps the current month's partition of mail.emails and the next
-- maintenance.premake_months ready, so that new mail never lands in the default.
SELECT mail.ensure_partitions({premake_months})
