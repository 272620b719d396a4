-- A sync run's row in migration.runs.
INSERT INTO migration.runs (run_id, kind) VALUES (%(run_id)s, 'sync')
