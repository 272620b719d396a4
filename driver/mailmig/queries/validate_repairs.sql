-- validate_repairs: every recorded repair (the column is compared through its original and repaired value)
SELECT run_id, source_table, source_key, column_name, rule, original, repaired
FROM migration.repairs
