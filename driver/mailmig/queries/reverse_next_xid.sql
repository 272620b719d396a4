-- reverse_next_xid: the next transaction id to be assigned (every transaction below it has started)
SELECT pg_snapshot_xmax(pg_current_snapshot())
