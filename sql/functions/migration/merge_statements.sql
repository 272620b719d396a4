SET LOCAL ROLE mail_owner;

-- The two statements of the merge of one table, generated from migration.column_map
-- (config/mapping.yaml), both over the block range [$1, $2) of staging.<p_table>:
--   insert_plain: the rows every value of which converts as it is, in one set-based INSERT
--                 into mail.<p_table> (its target columns), each by its kind's conversion;
--   select_rest:  (key, row as jsonb) of the rows for migration.merge_row: those the
--                 conversions or a table's own checks leave out, or all of them when $3.
-- Per kind: int ::bigint, float ::float8, json ::jsonb (a value they refuse raises, and the
-- range goes row by row), text as it is; a flag only as '0'/'1'; a timestamp only in the
-- form of migration.timestamp_fast (timestamp_required: never NULL). Per table: a row whose
-- key is in mail.* already is left to the row path (emails: by the message_id guard, which
-- also catches duplicates); a session needs its account.
CREATE OR REPLACE FUNCTION migration.merge_statements(p_table text,
                                                      OUT insert_plain text, OUT select_rest text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_col record;
  v_source text;
  v_value text;
  v_targets text[] := '{}';
  v_values text[] := '{}';
  v_laterals text := '';
  v_plain text[] := '{}';  -- what a row meets to go set-based
  v_rest text[] := '{}';   -- any of these sends a row to the row path
  v_key_source text;
  v_key_target text;
  v_key_value text;
BEGIN
  /* The merge's set-based INSERT and row-path SELECT for one table, from its mapping. */
  FOR v_col IN SELECT m.column_name, m.target_column, m.kind, m.position, m.is_key
               FROM migration.column_map m WHERE m.source_table = p_table ORDER BY m.position LOOP
    v_source := format('s.%I', v_col.column_name);
    CASE v_col.kind
      WHEN 'text' THEN
        v_value := v_source;
      WHEN 'int' THEN
        v_value := v_source || '::bigint';
      WHEN 'float' THEN
        v_value := v_source || '::float8';
      WHEN 'json' THEN
        v_value := v_source || '::jsonb';
        -- JSON may nest at most 1000 levels (convert_value): a text with more brackets
        -- than that goes to the row path, where migration.json_depth decides
        v_plain := v_plain || format('(%s IS NULL OR length(%s) - length(translate(%s, ''[{'', '''')) <= 1000)',
                                     v_source, v_source, v_source);
        v_rest := v_rest || format('length(%s) - length(translate(%s, ''[{'', '''')) > 1000', v_source, v_source);
      WHEN 'flag' THEN
        v_value := v_source || ' = ''1''';
        v_plain := v_plain || format('(%s IS NULL OR %s IN (''0'', ''1''))', v_source, v_source);
        v_rest := v_rest || format('%s NOT IN (''0'', ''1'')', v_source);
      WHEN 'timestamp', 'timestamp_required' THEN
        -- converted once per row, in a lateral subquery, for the value and the filter
        v_value := format('t%s.ts', v_col.position);
        v_laterals := v_laterals || format(
          E'\n      CROSS JOIN LATERAL (SELECT migration.timestamp_fast(%s) AS ts) t%s', v_source, v_col.position);
        IF v_col.kind = 'timestamp_required' THEN
          v_plain := v_plain || format('%s IS NOT NULL', v_value);
          v_rest := v_rest || format('migration.timestamp_fast(%s) IS NULL', v_source);
        ELSE
          v_plain := v_plain || format('(%s IS NULL OR %s IS NOT NULL)', v_source, v_value);
          v_rest := v_rest || format('(%s IS NOT NULL AND migration.timestamp_fast(%s) IS NULL)', v_source, v_source);
        END IF;
      ELSE
        RAISE EXCEPTION 'column % of table %: unknown kind %', v_col.column_name, p_table, v_col.kind;
    END CASE;
    IF v_col.is_key THEN
      v_key_source := v_col.column_name;
      v_key_target := v_col.target_column;
      v_key_value := v_value;
    END IF;
    v_targets := v_targets || quote_ident(v_col.target_column);
    v_values := v_values || v_value;
  END LOOP;
  IF cardinality(v_targets) = 0 THEN
    RAISE EXCEPTION 'unknown source table % (not in migration.column_map)', p_table;
  END IF;
  IF v_key_source IS NULL THEN
    RAISE EXCEPTION 'table % has no key in migration.column_map', p_table;
  END IF;

  -- the checks of a table of its own
  IF p_table = 'emails' THEN
    -- a message_id already in the guard: a re-run or a duplicate, which the row path tells apart
    v_plain := v_plain || 'NOT EXISTS (SELECT 1 FROM mail.message_id_guard g WHERE g.message_id = s.message_id)'::text;
    v_rest := v_rest || ('EXISTS (SELECT 1 FROM mail.message_id_guard g'
                         || ' WHERE g.message_id = s.message_id AND g.email_id IS DISTINCT FROM s.id::bigint)');
  ELSE
    v_plain := v_plain || format('NOT EXISTS (SELECT 1 FROM mail.%I x WHERE x.%I = %s)',
                                 p_table, v_key_target, v_key_value);
  END IF;
  IF p_table = 'sessions' THEN
    v_plain := v_plain || 'EXISTS (SELECT 1 FROM mail.accounts a WHERE a.id = s.account_id::bigint)'::text;
    v_rest := v_rest || 'NOT EXISTS (SELECT 1 FROM mail.accounts a WHERE a.id = s.account_id::bigint)'::text;
  END IF;

  insert_plain := format(
    E'INSERT INTO mail.%I (%s)\n      SELECT %s\n      FROM staging.%I s%s\n      WHERE s.ctid >= $1 AND s.ctid < $2\n        AND %s',
    p_table, array_to_string(v_targets, ', '), array_to_string(v_values, ', '), p_table, v_laterals,
    array_to_string(v_plain, E'\n        AND '));
  select_rest := format(
    E'SELECT s.%I AS key, to_jsonb(s) AS row FROM staging.%I s\n      WHERE s.ctid >= $1 AND s.ctid < $2\n        AND ($3 OR %s)',
    v_key_source, p_table, coalesce(array_to_string(v_rest, E'\n             OR '), 'false'));
END;
$$;

COMMENT ON FUNCTION migration.merge_statements(text) IS
  'The merge''s set-based INSERT and row-path SELECT of one table, generated from migration.column_map.';
