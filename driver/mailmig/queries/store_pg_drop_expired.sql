-- Retention: drop the monthly partitions wholly older than the retention; one row per partition dropped with its row count
SELECT partition, row_count, upper_bound FROM mail.drop_expired_partitions(%(keep)s, %(now)s)
