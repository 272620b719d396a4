-- The sync's heartbeat for one source file (migration.sync_beat), stamped with the time of its read.
SELECT migration.sync_beat(%(source)s, %(run_id)s, %(pid)s, %(following)s, %(applied_seq)s,
                           %(source_seq)s, %(oldest_unapplied_at)s, %(rows_per_s)s, %(now)s)
