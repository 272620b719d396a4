-- Keys a landed batch must also apply (unique conflicts outside it, cascades): migration.sync_pull_keys.
SELECT source_table, source_key FROM migration.sync_pull_keys()
