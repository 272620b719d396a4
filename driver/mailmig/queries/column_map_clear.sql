-- column_map_clear: migration.column_map emptied before it is written again from config/mapping.yaml
DELETE FROM migration.column_map
