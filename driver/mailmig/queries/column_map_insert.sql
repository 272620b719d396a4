-- column_map_insert: one column of the mapping (config/mapping.yaml is the one source of these rows)
INSERT INTO migration.column_map (source_table, position, column_name, kind) VALUES (%s, %s, %s, %s)
