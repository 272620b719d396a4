-- validate_rejects: every recorded reject (the row is accounted for, its original must equal the source row)
SELECT run_id, source_table, source_key, reason, sqlstate, original
FROM migration.rejects
