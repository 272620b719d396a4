SET LOCAL ROLE mail_owner;

-- Create the partition of p_month (any day of it); NULL when it already exists.
-- Rows of that month already in the default partition are moved into it, in this
-- transaction: detach the default, create the partition, move the rows, reattach.
-- SECURITY DEFINER: whoever calls it (the load, pg_cron as a superuser), the
-- partition is owned by mail_owner like its parent.
CREATE OR REPLACE FUNCTION mail.create_email_partition(p_month date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_month    date := date_trunc('month', p_month)::date;
  v_name     text := 'emails_p' || to_char(date_trunc('month', p_month), 'YYYYMM');
  -- bounds are UTC midnights whatever the session's timezone
  v_from     timestamptz := v_month::timestamp AT TIME ZONE 'UTC';
  v_to       timestamptz := (v_month + interval '1 month')::timestamp AT TIME ZONE 'UTC';
  v_strays   boolean;
  v_columns  text;
BEGIN
  /* Create one month's partition of mail.emails, taking its rows out of the default. */
  IF to_regclass(format('mail.%I', v_name)) IS NOT NULL THEN
    RETURN NULL;
  END IF;
  SELECT EXISTS (SELECT 1 FROM mail.emails_default WHERE created_at >= v_from AND created_at < v_to)
    INTO v_strays;
  IF NOT v_strays THEN
    EXECUTE format('CREATE TABLE mail.%I PARTITION OF mail.emails FOR VALUES FROM (%L) TO (%L)',
                   v_name, v_from, v_to);
    PERFORM mail.guard_email_table(format('mail.%I', v_name)::regclass);
    RETURN v_name;
  END IF;

  -- Every stored column (search_vector is generated: recomputed on insert).
  SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO v_columns
  FROM pg_attribute
  WHERE attrelid = 'mail.emails'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '';

  ALTER TABLE mail.emails DETACH PARTITION mail.emails_default;
  EXECUTE format('CREATE TABLE mail.%I PARTITION OF mail.emails FOR VALUES FROM (%L) TO (%L)',
                 v_name, v_from, v_to);
  -- The new partition has no guard triggers yet, so copying keeps the entries as
  -- they are; deleting from the default releases them, and they are claimed again
  -- for the moved rows (a concurrent claim of the same message_id waits for us).
  EXECUTE format('INSERT INTO mail.%I (%s) SELECT %s FROM mail.emails_default'
                 ' WHERE created_at >= %L AND created_at < %L',
                 v_name, v_columns, v_columns, v_from, v_to);
  DELETE FROM mail.emails_default WHERE created_at >= v_from AND created_at < v_to;
  EXECUTE format('INSERT INTO mail.message_id_guard (message_id, email_id) SELECT message_id, id FROM mail.%I',
                 v_name);
  PERFORM mail.guard_email_table(format('mail.%I', v_name)::regclass);
  ALTER TABLE mail.emails ATTACH PARTITION mail.emails_default DEFAULT;
  RETURN v_name;
END
$$;

COMMENT ON FUNCTION mail.create_email_partition(date) IS
  'Creates one month''s partition of mail.emails, moving that month''s rows out of the default partition.';
