-- validate_bookkeeping_tables: do migration.repairs and migration.rejects exist (a database never loaded has neither)?
SELECT to_regclass('migration.repairs') IS NOT NULL, to_regclass('migration.rejects') IS NOT NULL
