-- switch_keys_since_count: how many keys the sync applied after a point (refused when that history was pruned)
SELECT count(*) FROM migration.sync_keys_since(%(point)s)
