-- ledger_has_kind: whether the ledger has the kind column (absent in a database of the old runner not yet bootstrapped)
SELECT EXISTS (SELECT 1 FROM pg_attribute
               WHERE attrelid = 'migration.sql_ledger'::regclass AND attname = 'kind' AND NOT attisdropped)
