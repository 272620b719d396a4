-- reverse_sync_start: start the reverse sync at this moment (earlier changes are SQLite's own)
SELECT install_id, after_xid FROM migration.reverse_sync_start()
