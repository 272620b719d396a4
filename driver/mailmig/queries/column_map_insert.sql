-- column_map_insert: one column of the mapping (config/mapping.yaml is the one source of these rows)
INSERT INTO migration.column_map (source_table, position, column_name, kind, target_column, is_key)
VALUES (%s, %s, %s, %s, %s, %s)
