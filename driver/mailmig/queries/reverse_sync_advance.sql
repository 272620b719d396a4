-- reverse_sync_advance: record the reverse sync's new position after a SQLite commit (with its figures and a heartbeat)
SELECT migration.reverse_sync_advance(%(install_id)s, %(xid)s::text::xid8, %(seq)s, %(changes)s, %(keys)s, %(lag)s)
