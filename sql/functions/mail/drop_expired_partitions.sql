SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.drop_expired_partitions(p_keep interval DEFAULT '90 days', p_now timestamptz DEFAULT now())
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

COMMENT ON FUNCTION mail.drop_expired_partitions(interval, timestamptz) IS
  'Drops the partitions wholly older than the retention, releasing their message_ids.';
