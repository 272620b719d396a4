-- validate_digest: rows and md5 sums per bucket of one table's canonical rows, hashed server-side (keys in [lo, hi) when given)
SELECT bucket, row_count, sum_hi, sum_lo FROM migration.validate_digest(%(table)s, %(lo)s, %(hi)s)
