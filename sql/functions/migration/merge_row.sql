SET LOCAL ROLE mail_owner;

-- The 4-argument form before p_replace (the sync's upsert) existed.
DROP FUNCTION IF EXISTS migration.merge_row(text, text, text, jsonb);

-- One source row, converted by the rules, inserted, its repairs recorded; or rejected
-- whole with the reason and SQLSTATE. Returns loaded | repaired | rejected | present.
-- p_replace (the sync: the source row changed): the row's loaded version and its
-- bookkeeping are replaced instead of kept. A table without a foreign key pointing at it
-- (emails, sessions) gets delete + insert, which also moves an email whose created_at
-- changed to its new month; accounts are updated in place (INSERT ... ON CONFLICT DO
-- UPDATE), because a delete would cascade to their sessions. A replaced row that the
-- rules now reject is removed from mail.* (its reject recorded).
CREATE OR REPLACE FUNCTION migration.merge_row(p_run_id text, p_table text, p_key text, p_row jsonb,
                                               p_replace boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_col record;
  v_conv record;
  v_values jsonb := '{}'::jsonb;
  v_repairs jsonb := '[]'::jsonb;
  v_columns text;
  v_select text;
  v_upsert text := '';
  v_sql_nulls text[] := '{}';
  v_state text;
  v_message text;
  v_outcome text;
  v_target text;
  v_rival text;
BEGIN
  /* The row path of the merge: the conversion rules applied to one row. */
  IF p_replace THEN
    DELETE FROM migration.repairs WHERE source_table = p_table AND source_key = p_key;
    DELETE FROM migration.rejects WHERE source_table = p_table AND source_key = p_key;
    IF p_table <> 'accounts' THEN
      PERFORM migration.delete_row(p_table, p_key);
    END IF;
  ELSE
    IF p_key ~ '^(null|integer|real|text|hex|blob):' THEN
      -- a key of another storage class than its column's: rejected when another source
      -- row's key converts to the same target (whoever came first: contracts, source keys)
      v_target := migration.key_target(p_table, p_key);
      v_rival := migration.key_rival(p_table, p_key, v_target);
      IF v_rival IS NOT NULL THEN
        INSERT INTO migration.rejects (run_id, source_table, source_key, reason, sqlstate, original)
        VALUES (p_run_id, p_table, p_key,
                format('key: converts to %L, the key of source row %s too', v_target, v_rival), '23505', p_row)
        ON CONFLICT (source_table, source_key) DO NOTHING;
        RETURN 'rejected';
      END IF;
    END IF;
    IF migration.row_present(p_table, p_key) THEN
      RETURN 'present';
    END IF;
  END IF;
  FOR v_col IN SELECT column_name, target_column, kind FROM migration.column_map
               WHERE source_table = p_table ORDER BY position LOOP
    v_conv := migration.convert_value(v_col.kind, p_row->v_col.column_name);
    IF v_conv.sqlstate IS NOT NULL THEN
      INSERT INTO migration.rejects (run_id, source_table, source_key, reason, sqlstate, original)
      VALUES (p_run_id, p_table, p_key, v_col.column_name || ': ' || v_conv.reason,
              v_conv.sqlstate, p_row)
      ON CONFLICT (source_table, source_key) DO NOTHING;
      IF p_replace THEN
        PERFORM migration.delete_row(p_table, p_key);
      END IF;
      RETURN 'rejected';
    END IF;
    v_values := v_values || jsonb_build_object(v_col.target_column, v_conv.value);
    IF v_conv.value IS NULL THEN
      v_sql_nulls := v_sql_nulls || v_col.target_column;
    END IF;
    IF v_conv.rule IS NOT NULL THEN
      v_repairs := v_repairs || jsonb_build_array(jsonb_build_object(
        'column', v_col.column_name, 'rule', v_conv.rule,
        'original', p_row->v_col.column_name, 'repaired', v_conv.value #>> '{}'));
    END IF;
  END LOOP;

  SELECT string_agg(quote_ident(target_column), ', ' ORDER BY position),
         -- jsonb_populate_record turns a JSON null into SQL NULL: json columns are taken
         -- from the object itself, SQL NULL only where the converted value was SQL NULL
         string_agg(CASE WHEN kind = 'json'
                         THEN format('CASE WHEN %L = ANY ($2) THEN NULL ELSE $1 -> %L END', target_column, target_column)
                         ELSE 'r.' || quote_ident(target_column) END, ', ' ORDER BY position)
  INTO v_columns, v_select
  FROM migration.column_map WHERE source_table = p_table;
  IF p_replace AND p_table = 'accounts' THEN
    SELECT format(' ON CONFLICT (%I) DO UPDATE SET (%s) = ROW(%s)',
                  max(target_column) FILTER (WHERE is_key),
                  string_agg(quote_ident(target_column), ', ' ORDER BY position),
                  string_agg('EXCLUDED.' || quote_ident(target_column), ', ' ORDER BY position))
    INTO v_upsert
    FROM migration.column_map WHERE source_table = p_table;
  END IF;
  BEGIN
    EXECUTE format('INSERT INTO mail.%I (%s) SELECT %s FROM jsonb_populate_record(NULL::mail.%I, $1) r%s',
                   p_table, v_columns, v_select, p_table, v_upsert)
      USING v_values, v_sql_nulls;
    INSERT INTO migration.repairs (run_id, source_table, source_key, column_name, rule, original, repaired)
    SELECT p_run_id, p_table, p_key, r->>'column', r->>'rule', r->'original', r->>'repaired'
    FROM jsonb_array_elements(v_repairs) r
    ON CONFLICT (source_table, source_key, column_name) DO NOTHING;
    v_outcome := CASE WHEN jsonb_array_length(v_repairs) > 0 THEN 'repaired' ELSE 'loaded' END;
  EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
    -- only a fact about the row's values rejects it (classes 22, 23, 54: contracts); a lock
    -- or statement timeout, a deadlock, a shutdown, a full disk is none, and propagates:
    -- the range's transaction is undone and the load fails, to be re-run
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
    INSERT INTO migration.rejects (run_id, source_table, source_key, reason, sqlstate, original)
    VALUES (p_run_id, p_table, p_key, v_message, v_state, p_row)
    ON CONFLICT (source_table, source_key) DO NOTHING;
    v_outcome := 'rejected';
  END;
  IF v_outcome = 'rejected' AND p_replace THEN
    PERFORM migration.delete_row(p_table, p_key);  -- the old version must not stay loaded
  END IF;
  RETURN v_outcome;
END;
$$;

COMMENT ON FUNCTION migration.merge_row(text, text, text, jsonb, boolean) IS
  'The row path of the merge: one source row converted by the rules, inserted (or, with p_replace, '
  'replacing its loaded version), repairs recorded, or rejected whole.';
