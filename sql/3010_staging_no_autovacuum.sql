-- Staging is written once per load and read once by the merge, by block ranges: an
-- autovacuum or autoanalyze of it (2 GB at seed volume) is work nothing uses, taken
-- from the merge running beside it.
SET LOCAL ROLE mail_owner;

ALTER TABLE staging.emails SET (autovacuum_enabled = false, toast.autovacuum_enabled = false);
ALTER TABLE staging.accounts SET (autovacuum_enabled = false, toast.autovacuum_enabled = false);
ALTER TABLE staging.sessions SET (autovacuum_enabled = false, toast.autovacuum_enabled = false);
ALTER TABLE staging.hostile SET (autovacuum_enabled = false, toast.autovacuum_enabled = false);
