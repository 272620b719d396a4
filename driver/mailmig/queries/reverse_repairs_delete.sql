-- reverse_repairs_delete: drop repair records whose source value the reverse sync replaced (or whose row it removed)
DELETE FROM migration.repairs r
USING unnest(%(tables)s::text[], %(keys)s::text[], %(columns)s::text[]) AS k(source_table, source_key, column_name)
WHERE r.source_table = k.source_table AND r.source_key = k.source_key AND r.column_name = k.column_name
