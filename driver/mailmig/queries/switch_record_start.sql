-- switch_record_start: a cut-over or rollback begins (outcome running)
INSERT INTO migration.switches (run_id, kind, to_mode) VALUES (%(run_id)s, %(kind)s, %(to_mode)s)
