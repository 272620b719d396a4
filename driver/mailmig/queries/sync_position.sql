-- Where the sync of one source file stands: its capture install and last applied seq.
SELECT install_id, seq, seq_at, path, set_by, updated_at FROM migration.sync_position WHERE source = %(source)s
