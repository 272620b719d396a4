-- staging_prepare: the staging tables made from the mapping, empty (table, columns, made again?)
SELECT source_table, columns, remade FROM migration.prepare_staging()
