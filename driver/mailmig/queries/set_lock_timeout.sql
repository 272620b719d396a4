-- set_lock_timeout: how long this session waits for a lock (milliseconds as text; '0' waits forever)
SELECT set_config('lock_timeout', %(ms)s, false)
