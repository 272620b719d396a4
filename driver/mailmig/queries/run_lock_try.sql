-- run_lock_try: take the one-load-at-a-time lock of this database for this session (true) or not (false, someone holds it)
SELECT pg_try_advisory_lock(%(class_key)s, %(object_key)s)
