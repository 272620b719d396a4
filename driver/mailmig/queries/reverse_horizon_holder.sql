-- reverse_horizon_holder: the oldest transaction still running (the one that holds the xid horizon)
SELECT pid, extract(epoch FROM clock_timestamp() - xact_start)::float8, state, left(query, 200)
FROM pg_stat_activity
WHERE backend_xid IS NOT NULL
ORDER BY age(backend_xid) DESC
LIMIT 1
