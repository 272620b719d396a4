-- load_run_start: a load run recorded as running
INSERT INTO migration.runs (run_id, kind) VALUES (%s, 'load')
