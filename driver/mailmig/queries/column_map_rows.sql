-- column_map_rows: every column of migration.column_map, as mapping.Table.column_map_rows gives them
SELECT source_table, position, column_name, kind, target_column, is_key
FROM migration.column_map
ORDER BY source_table, position
