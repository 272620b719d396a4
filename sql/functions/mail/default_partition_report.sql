SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.default_partition_report()
RETURNS TABLE (month date, row_count bigint, oldest timestamptz, newest timestamptz)
LANGUAGE sql STABLE
AS $$
  -- What is in the default partition, per UTC month: each month listed needs
  -- mail.ensure_partitions_for_months to move its rows where they belong.
  SELECT date_trunc('month', d.created_at AT TIME ZONE 'UTC')::date, count(*), min(d.created_at), max(d.created_at)
  FROM mail.emails_default d
  GROUP BY 1
  ORDER BY 1
$$;

COMMENT ON FUNCTION mail.default_partition_report() IS
  'Rows in the default partition per UTC month (normal operation keeps it empty).';
