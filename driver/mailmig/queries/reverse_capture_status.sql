-- reverse_capture_status: reverse capture installed?, backlog, the reverse sync's position, heartbeat and lag
SELECT * FROM migration.reverse_capture_status()
