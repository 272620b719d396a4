-- reverse_repairs_of_keys: the repair records (column, original) of these source rows
SELECT r.source_table, r.source_key, r.column_name, r.original
FROM migration.repairs r
JOIN unnest(%(tables)s::text[], %(keys)s::text[]) AS k(source_table, source_key)
  ON r.source_table = k.source_table AND r.source_key = k.source_key
