-- ledger_rows: every file the database has applied, with its kind and checksum
SELECT name, kind, checksum FROM migration.sql_ledger
