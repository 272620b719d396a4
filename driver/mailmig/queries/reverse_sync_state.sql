-- reverse_sync_state: the reverse sync's position beside the current capture install, and the xid horizon of this snapshot
SELECT p.install_id, s.install_id, s.installed, s.missing, p.after_xid, p.after_seq,
       pg_snapshot_xmin(pg_current_snapshot())
FROM migration.reverse_sync_position p, migration.reverse_capture_state() s
