SET LOCAL ROLE mail_owner;

-- validate's canonical form of mail.<p_table>, generated from migration.column_map: the
-- text of a SELECT of `bucket` (bigint; an int key: key >> 10, 1024 ids a bucket; a text
-- key: the first 12 bits of md5(key)) and v1 .. v<columns>, every mapped column as text,
-- the key first and then the mapping's order, each as validate's SQLite side writes it:
--   int: decimal; text: as it is; json: the text jsonb prints; float: the 8 bytes of the
--   double in hex (float8send: no rounding); flag: t / f; timestamp(_required): the UTC
--   instant as YYYY-MM-DDTHH:MI:SS.ffffffZ.
-- p_where chooses the rows: 'all'; 'range' (an int key in [$1, $2), $2 NULL: no end); 'keys' (the key = ANY
-- of the text array $3). The validate_* functions run it.
CREATE OR REPLACE FUNCTION migration.canonical_query(p_table text, p_where text,
                                                     OUT query text, OUT columns int)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_exprs text[];
  v_key text;
  v_key_kind text;
  v_bucket text;
BEGIN
  /* The SELECT of validate's canonical rows of one table, from its mapping. */
  SELECT array_agg(format(CASE m.kind
                            WHEN 'text' THEN '%I'
                            WHEN 'int' THEN '%I::text'
                            WHEN 'json' THEN '%I::text'
                            WHEN 'float' THEN 'encode(float8send(%I), ''hex'')'
                            WHEN 'flag' THEN 'CASE %1$I WHEN true THEN ''t'' WHEN false THEN ''f'' END'
                            ELSE 'to_char(%I AT TIME ZONE ''UTC'', ''YYYY-MM-DD"T"HH24:MI:SS.US"Z"'')'
                          END, m.target_column) || format(' AS v%s', n)
                   ORDER BY n),
         max(m.target_column) FILTER (WHERE m.is_key),
         max(m.kind) FILTER (WHERE m.is_key)
  INTO v_exprs, v_key, v_key_kind
  FROM (SELECT c.*, row_number() OVER (ORDER BY c.is_key DESC, c.position) AS n
        FROM migration.column_map c WHERE c.source_table = p_table) m;
  IF v_exprs IS NULL OR v_key IS NULL THEN
    RAISE EXCEPTION 'table % has no mapped columns or no key in migration.column_map', p_table;
  END IF;
  v_bucket := CASE WHEN v_key_kind = 'int' THEN format('%I >> 10', v_key)
                   ELSE format('(''x'' || substr(md5(%I), 1, 3))::bit(12)::int::bigint', v_key) END;
  columns := cardinality(v_exprs);
  query := format('SELECT %s AS bucket, %s FROM mail.%I', v_bucket, array_to_string(v_exprs, ', '), p_table)
    || CASE p_where
         WHEN 'all' THEN ''
         -- $2 NULL: no upper end (a bigint [lo, hi) cannot reach the largest bigint)
         WHEN 'range' THEN format(' WHERE %I >= $1 AND ($2 IS NULL OR %I < $2)', v_key, v_key)
         WHEN 'keys' THEN format(' WHERE %I = ANY ($3::%s[])', v_key,
                                 CASE WHEN v_key_kind = 'int' THEN 'bigint' ELSE 'text' END)
       END;
  IF query IS NULL THEN
    RAISE EXCEPTION 'p_where must be all, range or keys, not %', p_where;
  END IF;
END;
$$;

COMMENT ON FUNCTION migration.canonical_query(text, text) IS
  'The SELECT of validate''s canonical rows of one table (bucket, v1..vn), generated from migration.column_map.';
