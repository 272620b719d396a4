-- reverse_sync_lock: one reverse sync pass at a time per database (a session advisory lock, waited for)
SELECT pg_advisory_lock(%(key)s)
