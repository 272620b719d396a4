-- validate_rows_in_buckets: one table's canonical rows in these buckets (the drill-down; keys in [lo, hi) when given)
SELECT bucket, vals FROM migration.validate_rows(%(table)s, %(buckets)s::bigint[], %(lo)s, %(hi)s)
