SET LOCAL ROLE mail_owner;

-- Before 0010 this was a function: one transaction that locked the month's partition
-- ACCESS EXCLUSIVE, deleted its guard entries under that lock and then took the parent's
-- lock to drop it, queueing every insert and search of mail.emails behind it.
DROP FUNCTION IF EXISTS mail.drop_expired_partitions(interval, timestamptz);

-- Retention that never stalls ingest. Each month partition wholly older than p_now - p_keep
-- (upper bound <= cutoff) goes in steps, each its own transaction:
--   1. detach it: SHARE UPDATE EXCLUSIVE on the month and the default partition first
--      (they conflict with no read or write: this waits out an autovacuum harmlessly),
--      then the parent's ACCESS EXCLUSIVE lock (parent first, the order every query takes),
--      each wait bounded by p_lock_timeout and retried up to p_attempts times with a short
--      back-off; DETACH and a rename, then commit at once. Inserts and searches wait at
--      most p_lock_timeout plus the DETACH itself. From then on rows of that month go to
--      mail.emails_default and stay there (the parent's range no longer includes the
--      month): nothing of a month is dropped that arrived after it was detached.
--      (DETACH ... CONCURRENTLY is refused while a default partition exists.)
--   2. release its message_id guard entries in batches of p_batch rows, a transaction each
--      (the detached table is reachable by no query of mail.emails any more);
--   3. drop the detached table: only its own lock, bounded and retried the same way.
-- mail.retention_log records each month, so a run that stopped (a crash, a lock it could
-- not get) is finished by the next. Returns the partitions dropped and their rows. Needs
-- the owner of mail.emails (or a superuser, as pg_cron runs it); a second run at once
-- skips (advisory lock). Call it outside a transaction block (it commits):
--   CALL mail.drop_expired_partitions('90 days');
CREATE OR REPLACE PROCEDURE mail.drop_expired_partitions(
  p_keep interval DEFAULT '90 days',
  p_now timestamptz DEFAULT now(),
  INOUT dropped_partitions text[] DEFAULT NULL,
  INOUT dropped_rows bigint DEFAULT NULL,
  p_batch int DEFAULT 5000,
  p_lock_timeout interval DEFAULT '50 ms',
  p_attempts int DEFAULT 200)
LANGUAGE plpgsql
AS $$
DECLARE
  v_cutoff timestamptz := p_now - p_keep;
  v_expired record;
  v_months regclass[];
  v_bounds timestamptz[];
  v_uppers timestamptz[];
  v_i int;
  v_log record;
  v_logs bigint[];
  v_log_id bigint;
  v_attempt int;
  v_done boolean;
  v_name text;
  v_last bigint;
  v_batch_rows bigint;
  v_batch_max bigint;
  v_gone bigint;
  v_left bigint;
  v_stray bigint;
  v_oldest timestamptz;
BEGIN
  /* Drop the months wholly older than the retention without stalling ingest: detach under
     a short, bounded lock of the parent, release the guard entries in batches, drop. */
  dropped_partitions := '{}';
  dropped_rows := 0;
  IF NOT pg_try_advisory_lock(hashtext('mail.drop_expired_partitions')) THEN
    RAISE NOTICE 'mail.drop_expired_partitions: another run holds the lock; skipped';
    RETURN;
  END IF;

  SELECT array_agg(p.partition ORDER BY p.upper_bound), array_agg(p.lower_bound ORDER BY p.upper_bound),
         array_agg(p.upper_bound ORDER BY p.upper_bound)
  INTO v_months, v_bounds, v_uppers
  FROM mail.email_partitions() p WHERE p.upper_bound <= v_cutoff;
  COMMIT;

  -- 1. detach each expired month
  FOR v_i IN 1 .. coalesce(array_length(v_months, 1), 0) LOOP
    v_attempt := 0;
    LOOP
      v_attempt := v_attempt + 1;
      v_done := false;
      BEGIN
        PERFORM set_config('lock_timeout', '10s', true);
        EXECUTE format('LOCK TABLE %s IN SHARE UPDATE EXCLUSIVE MODE', v_months[v_i]);
        IF to_regclass('mail.emails_default') IS NOT NULL THEN
          LOCK TABLE mail.emails_default IN SHARE UPDATE EXCLUSIVE MODE;
        END IF;
        PERFORM set_config('lock_timeout', (extract(epoch FROM p_lock_timeout) * 1000)::int::text || 'ms', true);
        LOCK TABLE mail.emails IN ACCESS EXCLUSIVE MODE;
        EXECUTE format('ALTER TABLE mail.emails DETACH PARTITION %s', v_months[v_i]);
        INSERT INTO mail.retention_log (partition, detached_as, lower_bound, upper_bound, detach_attempts)
        VALUES (v_months[v_i]::text, '', v_bounds[v_i], v_uppers[v_i], v_attempt)
        RETURNING id INTO v_log_id;
        -- a new partition of that month (old mail arriving) must not meet this name
        v_name := format('%s_expired_%s', (SELECT relname FROM pg_class WHERE oid = v_months[v_i]), v_log_id);
        EXECUTE format('ALTER TABLE %s RENAME TO %I', v_months[v_i], v_name);
        UPDATE mail.retention_log SET detached_as = format('mail.%I', v_name) WHERE id = v_log_id;
        v_done := true;
      EXCEPTION WHEN lock_not_available THEN
        IF v_attempt >= p_attempts THEN
          PERFORM pg_advisory_unlock(hashtext('mail.drop_expired_partitions'));
          RAISE EXCEPTION 'mail.drop_expired_partitions: the locks to detach % were not granted within % attempts of %; nothing of it changed, run again',
            v_months[v_i], p_attempts, p_lock_timeout
            USING ERRCODE = 'lock_not_available';
        END IF;
      END;
      COMMIT;  -- the parent's lock goes at once
      EXIT WHEN v_done;
      PERFORM pg_sleep(least(0.005 * v_attempt, 0.5));  -- let the queue behind it drain
      COMMIT;
    END LOOP;
  END LOOP;

  -- 2 and 3, for every month detached and not yet dropped (this run's and any earlier one's)
  SELECT array_agg(id ORDER BY id) INTO v_logs FROM mail.retention_log WHERE dropped_at IS NULL;
  COMMIT;
  FOR v_i IN 1 .. coalesce(array_length(v_logs, 1), 0) LOOP
    SELECT * INTO v_log FROM mail.retention_log WHERE id = v_logs[v_i];
    IF to_regclass(v_log.detached_as) IS NULL THEN  -- dropped, the log not updated (impossible: one transaction)
      UPDATE mail.retention_log SET dropped_at = clock_timestamp() WHERE id = v_log.id;
      COMMIT;
      CONTINUE;
    END IF;
    EXECUTE format('SELECT count(*) FROM %s', v_log.detached_as) INTO v_left;
    UPDATE mail.retention_log r SET row_count = v_left WHERE r.id = v_log.id;
    COMMIT;

    -- 2. release the guard entries, a batch a transaction, in id order
    v_last := NULL;
    LOOP
      v_attempt := 0;
      LOOP
        v_attempt := v_attempt + 1;
        v_done := false;
        BEGIN
          PERFORM set_config('lock_timeout', (extract(epoch FROM p_lock_timeout) * 1000)::int::text || 'ms', true);
          EXECUTE format($q$
            WITH batch AS (SELECT message_id, id FROM %s WHERE $1 IS NULL OR id > $1 ORDER BY id LIMIT $2),
                 gone AS (DELETE FROM mail.message_id_guard g USING batch b
                          WHERE g.message_id = b.message_id AND g.email_id = b.id RETURNING 1)
            SELECT (SELECT count(*) FROM batch), (SELECT max(id) FROM batch), (SELECT count(*) FROM gone)$q$,
            v_log.detached_as)
            INTO v_batch_rows, v_batch_max, v_gone USING v_last, p_batch;
          UPDATE mail.retention_log SET guard_released = guard_released + v_gone WHERE id = v_log.id;
          v_done := true;
        EXCEPTION WHEN lock_not_available THEN  -- an insert of one of these message_ids is in flight
          IF v_attempt >= p_attempts THEN
            PERFORM pg_advisory_unlock(hashtext('mail.drop_expired_partitions'));
            RAISE EXCEPTION 'mail.drop_expired_partitions: guard entries of % stayed locked for % attempts; run again',
              v_log.detached_as, p_attempts USING ERRCODE = 'lock_not_available';
          END IF;
        END;
        COMMIT;
        EXIT WHEN v_done;
        PERFORM pg_sleep(least(0.005 * v_attempt, 0.5));
        COMMIT;
      END LOOP;
      EXIT WHEN v_batch_rows < p_batch;
      v_last := v_batch_max;
    END LOOP;

    -- 3. drop it, once no guard entry points at one of its rows
    EXECUTE format('SELECT count(*) FROM mail.message_id_guard g JOIN %s e'
                   ' ON g.message_id = e.message_id AND g.email_id = e.id', v_log.detached_as) INTO v_left;
    IF v_left > 0 THEN
      PERFORM pg_advisory_unlock(hashtext('mail.drop_expired_partitions'));
      RAISE EXCEPTION 'mail.drop_expired_partitions: % guard entries of % remain after the release; not dropped',
        v_left, v_log.detached_as;
    END IF;
    v_attempt := 0;
    LOOP
      v_attempt := v_attempt + 1;
      v_done := false;
      BEGIN
        PERFORM set_config('lock_timeout', (extract(epoch FROM p_lock_timeout) * 1000)::int::text || 'ms', true);
        EXECUTE format('DROP TABLE %s', v_log.detached_as);
        UPDATE mail.retention_log SET dropped_at = clock_timestamp() WHERE id = v_log.id;
        v_done := true;
      EXCEPTION WHEN lock_not_available THEN  -- a query that began before the detach still reads it
        IF v_attempt >= p_attempts THEN
          PERFORM pg_advisory_unlock(hashtext('mail.drop_expired_partitions'));
          RAISE EXCEPTION 'mail.drop_expired_partitions: % stayed in use for % attempts; detached, not dropped: run again',
            v_log.detached_as, p_attempts USING ERRCODE = 'lock_not_available';
        END IF;
      END;
      COMMIT;
      EXIT WHEN v_done;
      PERFORM pg_sleep(least(0.005 * v_attempt, 0.5));
      COMMIT;
    END LOOP;
    SELECT r.row_count INTO v_left FROM mail.retention_log r WHERE r.id = v_log.id;
    dropped_partitions := dropped_partitions || v_log.partition;
    dropped_rows := dropped_rows + coalesce(v_left, 0);
  END LOOP;

  -- rows of an expired month that arrived after its detach wait in the default partition
  IF to_regclass('mail.emails_default') IS NOT NULL THEN
    SELECT count(*), min(created_at) INTO v_stray, v_oldest FROM mail.emails_default WHERE created_at < v_cutoff;
    IF v_stray > 0 THEN
      RAISE WARNING 'mail.drop_expired_partitions: mail.emails_default holds % row(s) older than the retention (oldest %): kept, not dropped; mail.default_partition_report() lists them',
        v_stray, v_oldest;
    END IF;
  END IF;
  PERFORM pg_advisory_unlock(hashtext('mail.drop_expired_partitions'));
END
$$;

COMMENT ON PROCEDURE mail.drop_expired_partitions(interval, timestamptz, text[], bigint, int, interval, int) IS
  'Drops the months wholly older than the retention without stalling ingest: a short bounded detach, the guard released in batches, then the drop; logged in mail.retention_log.';
