-- ledger_forget_legacy: the old runner's rows (sql/NNNN_*.sql), replaced by the baseline migrations they built
DELETE FROM migration.sql_ledger WHERE position('/' IN name) = 0
