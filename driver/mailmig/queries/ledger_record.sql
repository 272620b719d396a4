-- ledger_record: one applied file recorded (a re-applied definition replaces its row)
INSERT INTO migration.sql_ledger (name, kind, checksum, applied_at, duration_ms, note)
VALUES (%(name)s, %(kind)s, %(checksum)s, clock_timestamp(),
        coalesce(extract(epoch FROM clock_timestamp() - %(started)s::timestamptz) * 1000, 0), %(note)s)
ON CONFLICT (name) DO UPDATE
  SET kind = EXCLUDED.kind, checksum = EXCLUDED.checksum, applied_at = EXCLUDED.applied_at,
      duration_ms = EXCLUDED.duration_ms, note = EXCLUDED.note
