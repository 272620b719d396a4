-- validate_rows_of_keys: one table's canonical rows with these keys (as text), for validate_keys
SELECT bucket, vals FROM migration.validate_rows(%(table)s, p_keys => %(keys)s::text[])
