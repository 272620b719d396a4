-- requires: functions/mail/ensure_partitions_for_months.sql
-- requires: functions/mail/create_email_partition.sql
-- requires: functions/mail/guard_email_table.sql
SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.ensure_partitions(p_ahead int DEFAULT 3, p_now timestamptz DEFAULT now())
RETURNS SETOF text
LANGUAGE sql
AS $$
  -- The current month (UTC) and p_ahead months after it; returns the names created.
  SELECT mail.ensure_partitions_for_months(
           ARRAY(SELECT (date_trunc('month', p_now AT TIME ZONE 'UTC') + n * interval '1 month')::date
                 FROM generate_series(0, greatest(p_ahead, 0)) AS n))
$$;

COMMENT ON FUNCTION mail.ensure_partitions(int, timestamptz) IS
  'Creates the partitions of the current UTC month and p_ahead months after it.';

-- A new database can take mail at once: the current month and the next three
-- (from then on the premake job, cron/premake.sql, keeps them ahead).
SELECT mail.ensure_partitions(3);
