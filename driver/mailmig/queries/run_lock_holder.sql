-- run_lock_holder: the session holding the one-load-at-a-time lock of this database: its name (application_name), pid, since when, from where
SELECT a.application_name, a.pid, a.backend_start, a.client_addr::text, a.usename
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = %(class_key)s::oid AND l.objid = %(object_key)s::oid AND l.objsubid = 2
