-- migration.column_map also says where each source column goes (its column of
-- mail.<table>, the same name unless the mapping says `target:`) and which column is the
-- table's key: staging, the merge and validate are generated from it. Its rows are
-- written by the runner from config/mapping.yaml at every `schema apply`.
SET LOCAL ROLE mail_owner;

ALTER TABLE migration.column_map
  ADD COLUMN target_column text,
  ADD COLUMN is_key boolean NOT NULL DEFAULT false;
UPDATE migration.column_map SET target_column = column_name, is_key = (column_name = 'id');
ALTER TABLE migration.column_map
  ALTER COLUMN target_column SET NOT NULL,
  ADD UNIQUE (source_table, target_column);
