-- Retention: drop the monthly partitions wholly older than the retention (mail.drop_expired_partitions, a procedure that commits step by step: autocommit only); one row: the partitions dropped and their rows
CALL mail.drop_expired_partitions(%(keep)s, %(now)s)
