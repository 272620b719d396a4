-- Partition lifecycle of mail.emails: one partition per calendar month in UTC,
-- named mail.emails_pYYYYMM, and a DEFAULT partition that normal operation keeps
-- empty. These functions are DDL: only the owner and superusers may run them.
SET LOCAL ROLE mail_owner;

-- Create the partition of p_month (any day of it); NULL when it already exists.
-- Rows of that month already in the default partition are moved into it, in this
-- transaction: detach the default, create the partition, move the rows, reattach.
-- SECURITY DEFINER: whoever calls it (the load, pg_cron as a superuser), the
-- partition is owned by mail_owner like its parent.
CREATE FUNCTION mail.create_email_partition(p_month date) RETURNS text
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

CREATE FUNCTION mail.ensure_partitions_for_months(p_months date[]) RETURNS SETOF text
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

CREATE FUNCTION mail.ensure_partitions(p_ahead int DEFAULT 3, p_now timestamptz DEFAULT now())
RETURNS SETOF text
LANGUAGE sql
AS $$
  -- The current month (UTC) and p_ahead months after it; returns the names created.
  SELECT mail.ensure_partitions_for_months(
           ARRAY(SELECT (date_trunc('month', p_now AT TIME ZONE 'UTC') + n * interval '1 month')::date
                 FROM generate_series(0, greatest(p_ahead, 0)) AS n))
$$;

CREATE FUNCTION mail.default_partition_report()
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

-- The month partitions with their bounds, from the catalog (not from the names).
CREATE FUNCTION mail.email_partitions()
RETURNS TABLE (partition regclass, lower_bound timestamptz, upper_bound timestamptz)
LANGUAGE sql STABLE
AS $$
  SELECT c.oid::regclass,
         (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
         (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = 'mail.emails'::regclass
    AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
  ORDER BY 2
$$;

CREATE FUNCTION mail.drop_expired_partitions(p_keep interval DEFAULT '90 days', p_now timestamptz DEFAULT now())
RETURNS TABLE (partition text, row_count bigint, upper_bound timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- Fail fast rather than queue behind the app's writes (and block them while queued).
SET lock_timeout = '5s'
AS $$
DECLARE
  v_cutoff timestamptz := p_now - p_keep;
  v_part   record;
  v_newest timestamptz;
BEGIN
  /* Drop the partitions wholly older than the retention (upper bound <= p_now - p_keep),
     releasing their message_id guard entries first; returns what was dropped. */
  IF NOT pg_try_advisory_xact_lock(hashtext('mail.drop_expired_partitions')) THEN
    RAISE NOTICE 'mail.drop_expired_partitions: another run holds the lock; skipped';
    RETURN;
  END IF;
  FOR v_part IN
    SELECT p.partition, p.upper_bound FROM mail.email_partitions() p
    WHERE p.upper_bound <= v_cutoff ORDER BY p.upper_bound
  LOOP
    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', v_part.partition);
    -- Belt and braces: a row newer than the cutoff (impossible within the bounds)
    -- keeps its partition.
    EXECUTE format('SELECT max(created_at) FROM %s', v_part.partition) INTO v_newest;
    CONTINUE WHEN v_newest >= v_cutoff;
    EXECUTE format('SELECT count(*) FROM %s', v_part.partition) INTO row_count;
    EXECUTE format('DELETE FROM mail.message_id_guard g USING %s p'
                   ' WHERE g.message_id = p.message_id AND g.email_id = p.id', v_part.partition);
    partition := v_part.partition::text;
    upper_bound := v_part.upper_bound;
    EXECUTE format('DROP TABLE %s', v_part.partition);
    RETURN NEXT;
  END LOOP;
END
$$;
