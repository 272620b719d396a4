-- Does this database have the live sync's bookkeeping (migration.sync_position)?
SELECT to_regclass('migration.sync_position') IS NOT NULL
