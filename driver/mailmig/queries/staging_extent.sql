-- staging_extent: the blocks and rows of one staging table (the merge cuts it into block ranges; the load counts what the loader staged)
SELECT blocks, row_count FROM migration.staging_extent(%s)
