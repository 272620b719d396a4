SET LOCAL ROLE mail_owner;

-- One batch of the sync, in the caller's transaction: the position of p_source moves
-- from p_from_seq to p_to_seq (whose changelog row's `at` is p_to_seq_at), and every key
-- of staging.sync_keys takes the state of its source row, whose values the driver landed
-- in staging.<table> (plain rows) and staging.hostile (the others) as a load lands them:
--   absent from the source: deleted from mail.*;
--   present: merged by the load's own rules (migration.merge_chunk set-based for the
--   plain rows, migration.merge_row for the rest): loaded, repaired or rejected.
-- Emails and sessions are deleted and inserted again (an email whose created_at changed
-- moves month); accounts are updated in place (merge_row's p_replace), because deleting
-- one cascades to its sessions. Each key's repairs and rejects are rewritten. The batch
-- fails, changing nothing, unless afterwards every present key is in mail.* or rejected
-- and no absent key is in mail.*. Returns the batch's row of migration.sync_batches;
-- migration.sync_applied_keys gets one row per key.
CREATE OR REPLACE FUNCTION migration.sync_apply_batch(p_run_id text, p_source text, p_install_id text,
                                                      p_from_seq bigint, p_to_seq bigint,
                                                      p_to_seq_at double precision, p_changes int,
                                                      p_path text)
RETURNS migration.sync_batches
LANGUAGE plpgsql AS $$
DECLARE
  v_batch migration.sync_batches;
  v_ids bigint[];
  v_session_ids text[];  -- keys in mail.* (migration.key_target: a key of a foreign class converts)
  v_row record;
  v_unaccounted text[];
  v_tables text[];
  v_keys text[];
  v_outcomes text[];
BEGIN
  /* Apply the landed batch and advance the position, all or nothing. */
  UPDATE migration.sync_position
  SET seq = p_to_seq, seq_at = p_to_seq_at, path = p_path, set_by = p_run_id, updated_at = now()
  WHERE source = p_source AND install_id = p_install_id AND seq = p_from_seq;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'the sync position of % is no longer (install %, seq %): another sync or a load moved it',
      p_source, p_install_id, p_from_seq
      USING ERRCODE = 'serialization_failure';
  END IF;

  DELETE FROM migration.repairs r USING staging.sync_keys k
  WHERE r.source_table = k.source_table AND r.source_key = k.source_key;
  DELETE FROM migration.rejects r USING staging.sync_keys k
  WHERE r.source_table = k.source_table AND r.source_key = k.source_key;

  -- accounts: the gone ones deleted (their sessions in PostgreSQL go with them: the
  -- driver pulled those into the batch, so they are merged again below or rejected);
  -- the present ones first get placeholder unique values, so that addresses or tokens
  -- moving between accounts of one batch never collide half-way, then each is upserted
  SELECT array_agg(t.target::bigint) INTO v_ids
  FROM staging.sync_keys k CROSS JOIN LATERAL (SELECT migration.key_target('accounts', k.source_key) AS target) t
  WHERE k.source_table = 'accounts' AND NOT k.present AND t.target IS NOT NULL;
  IF v_ids IS NOT NULL THEN
    DELETE FROM mail.accounts WHERE id = ANY (v_ids);
  END IF;
  SELECT array_agg(t.target::bigint) INTO v_ids
  FROM staging.sync_keys k CROSS JOIN LATERAL (SELECT migration.key_target('accounts', k.source_key) AS target) t
  WHERE k.source_table = 'accounts' AND k.present AND t.target IS NOT NULL;
  IF v_ids IS NOT NULL THEN
    UPDATE mail.accounts SET email = E'\uFFFF' || id, token = NULL WHERE id = ANY (v_ids);
    FOR v_row IN
      SELECT k.source_key, coalesce(h.original, migration.typed_row('accounts', to_jsonb(s))) AS original
      FROM staging.sync_keys k
      LEFT JOIN staging.accounts s ON s.id = k.source_key
      LEFT JOIN staging.hostile h ON h.source_table = 'accounts' AND h.source_key = k.source_key
      WHERE k.source_table = 'accounts' AND k.present
      ORDER BY k.source_key
    LOOP
      PERFORM migration.merge_row(p_run_id, 'accounts', v_row.source_key, v_row.original, true);
    END LOOP;
  END IF;

  -- sessions and emails: delete every key of the batch, then merge what is landed
  SELECT array_agg(migration.key_target('sessions', source_key)) INTO v_session_ids
  FROM staging.sync_keys WHERE source_table = 'sessions';
  IF v_session_ids IS NOT NULL THEN
    DELETE FROM mail.sessions WHERE id = ANY (v_session_ids);
    PERFORM migration.sync_merge_staged(p_run_id, 'sessions');
  END IF;
  SELECT array_agg(t.target::bigint) INTO v_ids
  FROM staging.sync_keys k CROSS JOIN LATERAL (SELECT migration.key_target('emails', k.source_key) AS target) t
  WHERE k.source_table = 'emails' AND t.target IS NOT NULL;
  IF v_ids IS NOT NULL THEN
    DELETE FROM mail.emails WHERE id = ANY (v_ids);
    PERFORM mail.ensure_partitions_for_months(migration.staged_email_months());
    PERFORM migration.sync_merge_staged(p_run_id, 'emails');
  END IF;

  -- where each key ended; the batch is refused unless every key is where it must be
  WITH placed AS (
    SELECT k.source_table, k.source_key, k.present,
           CASE k.source_table
             WHEN 'emails' THEN EXISTS (SELECT 1 FROM mail.message_id_guard g
                                        WHERE g.email_id = migration.key_target('emails', k.source_key)::bigint)
             WHEN 'accounts' THEN EXISTS (SELECT 1 FROM mail.accounts a
                                          WHERE a.id = migration.key_target('accounts', k.source_key)::bigint)
             ELSE EXISTS (SELECT 1 FROM mail.sessions x WHERE x.id = migration.key_target('sessions', k.source_key))
           END AS in_mail,
           EXISTS (SELECT 1 FROM migration.rejects r
                   WHERE r.source_table = k.source_table AND r.source_key = k.source_key) AS rejected,
           EXISTS (SELECT 1 FROM migration.repairs r
                   WHERE r.source_table = k.source_table AND r.source_key = k.source_key) AS repaired
    FROM staging.sync_keys k
  ), judged AS (
    SELECT source_table, source_key, present, in_mail, rejected,
           CASE WHEN NOT present AND NOT in_mail AND NOT rejected THEN 'deleted'
                WHEN present AND rejected AND NOT in_mail THEN 'rejected'
                WHEN present AND in_mail AND NOT rejected AND repaired THEN 'repaired'
                WHEN present AND in_mail AND NOT rejected THEN 'loaded'
           END AS outcome
    FROM placed
  )
  SELECT array_agg(source_table ORDER BY source_table, source_key),
         array_agg(source_key ORDER BY source_table, source_key),
         array_agg(outcome ORDER BY source_table, source_key),
         (array_agg(format('%s %s (%s in the source, %s in mail.*, %s rejected)', source_table, source_key,
                           CASE WHEN present THEN 'present' ELSE 'absent' END,
                           CASE WHEN in_mail THEN 'present' ELSE 'absent' END,
                           CASE WHEN rejected THEN 'and' ELSE 'not' END))
            FILTER (WHERE outcome IS NULL))[1:10]
  INTO v_tables, v_keys, v_outcomes, v_unaccounted
  FROM judged;
  IF v_unaccounted IS NOT NULL THEN
    RAISE EXCEPTION 'sync batch of % (seq % to %) cannot account for every key: %',
      p_source, p_from_seq, p_to_seq, array_to_string(v_unaccounted, '; ');
  END IF;

  INSERT INTO migration.sync_batches (run_id, source, install_id, from_seq, to_seq, changes, keys, pulled,
                                      loaded, repaired, rejected, deleted)
  SELECT p_run_id, p_source, p_install_id, p_from_seq, p_to_seq, p_changes,
         coalesce(cardinality(v_keys), 0),
         (SELECT count(*) FROM staging.sync_keys WHERE pulled),
         count(*) FILTER (WHERE o = 'loaded'), count(*) FILTER (WHERE o = 'repaired'),
         count(*) FILTER (WHERE o = 'rejected'), count(*) FILTER (WHERE o = 'deleted')
  FROM unnest(coalesce(v_outcomes, '{}')) o
  RETURNING * INTO v_batch;
  INSERT INTO migration.sync_applied_keys (batch_id, source_table, source_key, outcome)
  SELECT v_batch.batch_id, t, k, o FROM unnest(v_tables, v_keys, v_outcomes) AS u(t, k, o);
  RETURN v_batch;
END;
$$;

COMMENT ON FUNCTION migration.sync_apply_batch(text, text, text, bigint, bigint, double precision, int, text) IS
  'One sync batch: the landed keys brought to their source state by the load''s rules, the position advanced, all or nothing.';
