-- Record where the sync of a source file starts (the load, when its snapshot held the capture).
SELECT migration.sync_start(%(source)s, %(install_id)s, %(seq)s, %(seq_at)s, %(path)s, %(run_id)s, %(exact)s)
