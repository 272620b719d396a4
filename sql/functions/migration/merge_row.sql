SET LOCAL ROLE mail_owner;

-- One source row, converted by the rules, inserted, its repairs recorded; or rejected
-- whole with the reason and SQLSTATE. Returns loaded | repaired | rejected | present.
CREATE OR REPLACE FUNCTION migration.merge_row(p_run_id text, p_table text, p_key text, p_row jsonb)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_col record;
  v_conv record;
  v_values jsonb := '{}'::jsonb;
  v_repairs jsonb := '[]'::jsonb;
  v_columns text;
  v_select text;
  v_sql_nulls text[] := '{}';
  v_state text;
  v_message text;
BEGIN
  /* The row path of the merge: the conversion rules applied to one row. */
  IF migration.row_present(p_table, p_key) THEN
    RETURN 'present';
  END IF;
  FOR v_col IN SELECT column_name, kind FROM migration.column_map
               WHERE source_table = p_table ORDER BY position LOOP
    v_conv := migration.convert_value(v_col.kind, p_row->v_col.column_name);
    IF v_conv.sqlstate IS NOT NULL THEN
      INSERT INTO migration.rejects (run_id, source_table, source_key, reason, sqlstate, original)
      VALUES (p_run_id, p_table, p_key, v_col.column_name || ': ' || v_conv.reason,
              v_conv.sqlstate, p_row)
      ON CONFLICT (source_table, source_key) DO NOTHING;
      RETURN 'rejected';
    END IF;
    v_values := v_values || jsonb_build_object(v_col.column_name, v_conv.value);
    IF v_conv.value IS NULL THEN
      v_sql_nulls := v_sql_nulls || v_col.column_name::text;
    END IF;
    IF v_conv.rule IS NOT NULL THEN
      v_repairs := v_repairs || jsonb_build_array(jsonb_build_object(
        'column', v_col.column_name, 'rule', v_conv.rule,
        'original', p_row->v_col.column_name, 'repaired', v_conv.value #>> '{}'));
    END IF;
  END LOOP;

  SELECT string_agg(quote_ident(column_name), ', ' ORDER BY position),
         -- jsonb_populate_record turns a JSON null into SQL NULL: json columns are taken
         -- from the object itself, SQL NULL only where the converted value was SQL NULL
         string_agg(CASE WHEN kind = 'json'
                         THEN format('CASE WHEN %L = ANY ($2) THEN NULL ELSE $1 -> %L END', column_name, column_name)
                         ELSE 'r.' || quote_ident(column_name) END, ', ' ORDER BY position)
  INTO v_columns, v_select
  FROM migration.column_map WHERE source_table = p_table;
  BEGIN
    EXECUTE format('INSERT INTO mail.%I (%s) SELECT %s FROM jsonb_populate_record(NULL::mail.%I, $1) r',
                   p_table, v_columns, v_select, p_table)
      USING v_values, v_sql_nulls;
    INSERT INTO migration.repairs (run_id, source_table, source_key, column_name, rule, original, repaired)
    SELECT p_run_id, p_table, p_key, r->>'column', r->>'rule', r->'original', r->>'repaired'
    FROM jsonb_array_elements(v_repairs) r
    ON CONFLICT (source_table, source_key, column_name) DO NOTHING;
  EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
    INSERT INTO migration.rejects (run_id, source_table, source_key, reason, sqlstate, original)
    VALUES (p_run_id, p_table, p_key, v_message, v_state, p_row)
    ON CONFLICT (source_table, source_key) DO NOTHING;
    RETURN 'rejected';
  END;
  RETURN CASE WHEN jsonb_array_length(v_repairs) > 0 THEN 'repaired' ELSE 'loaded' END;
END;
$$;

COMMENT ON FUNCTION migration.merge_row(text, text, text, jsonb) IS
  'The row path of the merge: one source row converted by the rules, inserted, repairs recorded, or rejected whole.';
