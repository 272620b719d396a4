-- run_lock_release: the one-run-at-a-time lock given back before the connection closes (a close is asynchronous on the server)
SELECT pg_advisory_unlock(%(class_key)s, %(object_key)s)
