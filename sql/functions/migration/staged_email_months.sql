SET LOCAL ROLE mail_owner;

-- The months the staged emails fall in (UTC), so their partitions exist before rows arrive.
CREATE OR REPLACE FUNCTION migration.staged_email_months() RETURNS date[]
LANGUAGE sql STABLE AS $$
  SELECT coalesce(array_agg(DISTINCT m ORDER BY m), '{}')
  FROM (
    SELECT (date_trunc('month', coalesce(migration.timestamp_fast(created_at),
                                          migration.timestamp_from_text(created_at)) AT TIME ZONE 'UTC'))::date AS m
    FROM staging.emails
    UNION ALL
    SELECT (date_trunc('month', (c.value #>> '{}')::timestamptz AT TIME ZONE 'UTC'))::date
    FROM staging.hostile h
    CROSS JOIN LATERAL migration.convert_value('timestamp_required', h.original->'created_at') c
    WHERE h.source_table = 'emails' AND c.sqlstate IS NULL
  ) months
  WHERE m IS NOT NULL
$$;

COMMENT ON FUNCTION migration.staged_email_months() IS
  'The UTC months of the staged emails, so that their partitions exist before rows arrive.';
