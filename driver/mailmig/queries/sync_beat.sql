-- The sync's heartbeat for one source file (migration.sync_beat).
SELECT migration.sync_beat(%(source)s, %(run_id)s, %(pid)s, %(following)s, %(applied_seq)s,
                           %(source_seq)s, %(oldest_unapplied_at)s, %(rows_per_s)s)
