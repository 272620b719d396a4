-- ledger_bootstrap: the runner's ledger, created or brought to its current shape (kind, note added to the old runner's table)
CREATE SCHEMA IF NOT EXISTS migration;
CREATE TABLE IF NOT EXISTS migration.sql_ledger (
    name        text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    duration_ms numeric NOT NULL
);
ALTER TABLE migration.sql_ledger ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'migration';
ALTER TABLE migration.sql_ledger ADD COLUMN IF NOT EXISTS note text;
