-- ledger_rows_legacy: the old runner's ledger (no kind column: every row is a migration)
SELECT name, 'migration' AS kind, checksum FROM migration.sql_ledger
