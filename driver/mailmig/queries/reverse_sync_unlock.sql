-- reverse_sync_unlock: release the reverse sync pass lock
SELECT pg_advisory_unlock(%(key)s)
