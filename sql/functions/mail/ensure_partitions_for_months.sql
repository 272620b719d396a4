SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.ensure_partitions_for_months(p_months date[]) RETURNS SETOF text
LANGUAGE plpgsql
AS $$
DECLARE
  v_month date;
  v_name  text;
BEGIN
  /* Create the partition of every month listed (the load: every month in the data,
     outliers included), moving rows of those months out of the default partition.
     Returns the names created. */
  FOR v_month IN
    SELECT DISTINCT date_trunc('month', m)::date FROM unnest(p_months) AS m WHERE m IS NOT NULL ORDER BY 1
  LOOP
    v_name := mail.create_email_partition(v_month);
    IF v_name IS NOT NULL THEN
      RETURN NEXT v_name;
    END IF;
  END LOOP;
END
$$;

COMMENT ON FUNCTION mail.ensure_partitions_for_months(date[]) IS
  'Creates the partition of every month listed; returns the names created.';
