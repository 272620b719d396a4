-- The last committed sync batch when a validation begins (its sync point).
SELECT migration.sync_point()
