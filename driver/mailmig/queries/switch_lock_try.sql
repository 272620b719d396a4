-- switch_lock_try: take the one-switch-at-a-time lock (session advisory lock), without waiting
SELECT pg_try_advisory_lock(%(key)s)
