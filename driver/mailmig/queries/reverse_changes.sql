-- reverse_changes: the next reverse changelog rows after the position, of finished transactions only
SELECT xid, seq, source_table, source_key, op, at
FROM migration.reverse_changes(%(xid)s::text::xid8, %(seq)s, %(limit)s)
