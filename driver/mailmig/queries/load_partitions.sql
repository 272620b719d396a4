-- load_partitions: the partitions of every month the staged emails fall in, made if missing (their names)
SELECT mail.ensure_partitions_for_months(migration.staged_email_months())
