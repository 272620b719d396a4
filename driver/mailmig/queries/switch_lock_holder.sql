-- switch_lock_holder: who holds the one-switch-at-a-time lock (application_name names the run)
SELECT a.application_name, a.pid, a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND ((l.classid::bigint << 32) | l.objid::bigint) = %(key)s
LIMIT 1
