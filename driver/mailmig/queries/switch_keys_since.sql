-- switch_keys_since: the keys the sync applied after a point (table, key), each once
SELECT source_table, source_key FROM migration.sync_keys_since(%(point)s)
