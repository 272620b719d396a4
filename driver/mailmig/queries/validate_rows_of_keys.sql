-- validate_rows_of_keys: one table's canonical rows with these source keys (their names), for validate_keys;
-- a name of another storage class (blob:..., hex:...) reaches the key the rules gave its row
SELECT bucket, vals FROM migration.validate_rows(
  %(table)s, p_keys => ARRAY(SELECT migration.key_target(%(table)s, k) FROM unnest(%(keys)s::text[]) AS k))
