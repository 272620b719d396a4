-- Per source file: position, last heartbeat, lag, heartbeat age (migration.sync_status).
SELECT * FROM migration.sync_status()
