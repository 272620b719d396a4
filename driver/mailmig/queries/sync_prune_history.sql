-- Forget sync batches older than the configured keep (migration.sync_prune_history).
SELECT migration.sync_prune_history(%(keep)s::interval)
