-- The merge: staging into mail.*, every source row ending loaded, loaded after a
-- recorded repair, or rejected with the row kept whole (contracts, DESIGN step 4).
-- Plain rows go set-based; any row the set-based path cannot take as-is goes through
-- migration.merge_row, the one place where the conversion rules are applied row by row.
SET LOCAL ROLE mail_owner;

-- The typed-JSON form of a plain staging row: staging holds text, and a plain row's
-- storage classes are known (contracts: plain rows), so nothing is guessed.
CREATE FUNCTION migration.typed_row(p_table text, p_row jsonb) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(jsonb_object_agg(m.column_name,
           CASE
             WHEN p_row->>m.column_name IS NULL THEN '{"t": "null"}'::jsonb
             WHEN m.kind IN ('int', 'flag') THEN
               jsonb_build_object('t', 'integer', 'v', (p_row->>m.column_name)::numeric)
             WHEN m.kind = 'float' THEN
               jsonb_build_object('t', 'real', 'v', to_jsonb((p_row->>m.column_name)::float8))
             ELSE jsonb_build_object('t', 'text', 'v', p_row->>m.column_name)
           END), '{}'::jsonb)
  FROM migration.column_map m
  WHERE m.source_table = p_table
$$;

-- Is this source row already in mail.* (a re-run)?
CREATE FUNCTION migration.row_present(p_table text, p_key text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  /* The idempotence check of the row path. */
  IF p_table = 'emails' THEN
    RETURN p_key ~ '^-?[0-9]{1,19}$' AND EXISTS (SELECT 1 FROM mail.emails WHERE id = p_key::bigint);
  ELSIF p_table = 'accounts' THEN
    RETURN p_key ~ '^-?[0-9]{1,19}$' AND EXISTS (SELECT 1 FROM mail.accounts WHERE id = p_key::bigint);
  ELSIF p_table = 'sessions' THEN
    RETURN EXISTS (SELECT 1 FROM mail.sessions WHERE id = p_key);
  END IF;
  RAISE EXCEPTION 'unknown source table %', p_table;
END;
$$;

-- One source row, converted by the rules, inserted, its repairs recorded; or rejected
-- whole with the reason and SQLSTATE. Returns loaded | repaired | rejected | present.
CREATE FUNCTION migration.merge_row(p_run_id text, p_table text, p_key text, p_row jsonb)
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

-- Counts a merge step returns.
CREATE TYPE migration.merge_counts AS (
  fast bigint, loaded bigint, repaired bigint, rejected bigint, present bigint, fallback boolean
);

-- One block range [p_first_block, p_last_block) of staging.<p_table>: plain rows in one
-- set-based INSERT, the others (or all, when that INSERT fails) through merge_row.
CREATE FUNCTION migration.merge_chunk(p_run_id text, p_table text,
                                      p_first_block bigint, p_last_block bigint)
RETURNS migration.merge_counts
LANGUAGE plpgsql AS $$
DECLARE
  v_lo tid := format('(%s,0)', p_first_block)::tid;
  v_hi tid := format('(%s,0)', p_last_block)::tid;
  v_result migration.merge_counts := (0, 0, 0, 0, 0, false);
  v_row record;
  v_outcome text;
  v_fast_sql text;
  v_rest_sql text;
  v_total bigint;
BEGIN
  /* The unit of work of the merge: one transaction, safe to repeat after a crash. */
  IF p_table = 'emails' THEN
    v_fast_sql := $q$
      INSERT INTO mail.emails (id, message_id, from_address, to_address, subject, body, html,
                               headers, raw_email, size, starred, is_read, spam_score, created_at)
      SELECT s.id::bigint, s.message_id, s.from_address, s.to_address, s.subject, s.body, s.html,
             s.headers::jsonb, s.raw_email, s.size::bigint, s.starred = '1', s.is_read = '1',
             s.spam_score::float8, t.ts
      FROM staging.emails s
      CROSS JOIN LATERAL (SELECT migration.timestamp_fast(s.created_at) AS ts) t
      WHERE s.ctid >= $1 AND s.ctid < $2
        AND t.ts IS NOT NULL
        AND (s.starred IS NULL OR s.starred IN ('0', '1'))
        AND (s.is_read IS NULL OR s.is_read IN ('0', '1'))
        AND NOT EXISTS (SELECT 1 FROM mail.message_id_guard g WHERE g.message_id = s.message_id)$q$;
    v_rest_sql := $q$
      SELECT s.id AS key, to_jsonb(s) AS row FROM staging.emails s
      WHERE s.ctid >= $1 AND s.ctid < $2
        AND ($3 OR migration.timestamp_fast(s.created_at) IS NULL
             OR s.starred NOT IN ('0', '1') OR s.is_read NOT IN ('0', '1')
             OR EXISTS (SELECT 1 FROM mail.message_id_guard g
                        WHERE g.message_id = s.message_id AND g.email_id IS DISTINCT FROM s.id::bigint))$q$;
  ELSIF p_table = 'accounts' THEN
    v_fast_sql := $q$
      INSERT INTO mail.accounts (id, email, password_hash, token, created_at, expires_at,
                                 last_login_at, is_active)
      SELECT s.id::bigint, s.email, s.password_hash, s.token, c.ts, e.ts, l.ts, s.is_active = '1'
      FROM staging.accounts s
      CROSS JOIN LATERAL (SELECT migration.timestamp_fast(s.created_at) AS ts) c
      CROSS JOIN LATERAL (SELECT migration.timestamp_fast(s.expires_at) AS ts) e
      CROSS JOIN LATERAL (SELECT migration.timestamp_fast(s.last_login_at) AS ts) l
      WHERE s.ctid >= $1 AND s.ctid < $2
        AND (s.created_at IS NULL OR c.ts IS NOT NULL)
        AND (s.expires_at IS NULL OR e.ts IS NOT NULL)
        AND (s.last_login_at IS NULL OR l.ts IS NOT NULL)
        AND (s.is_active IS NULL OR s.is_active IN ('0', '1'))
        AND NOT EXISTS (SELECT 1 FROM mail.accounts a WHERE a.id = s.id::bigint)$q$;
    v_rest_sql := $q$
      SELECT s.id AS key, to_jsonb(s) AS row FROM staging.accounts s
      WHERE s.ctid >= $1 AND s.ctid < $2
        AND ($3 OR (s.created_at IS NOT NULL AND migration.timestamp_fast(s.created_at) IS NULL)
             OR (s.expires_at IS NOT NULL AND migration.timestamp_fast(s.expires_at) IS NULL)
             OR (s.last_login_at IS NOT NULL AND migration.timestamp_fast(s.last_login_at) IS NULL)
             OR s.is_active NOT IN ('0', '1'))$q$;
  ELSIF p_table = 'sessions' THEN
    v_fast_sql := $q$
      INSERT INTO mail.sessions (id, account_id, created_at, expires_at, ip, user_agent)
      SELECT s.id, s.account_id::bigint, c.ts, e.ts, s.ip, s.user_agent
      FROM staging.sessions s
      CROSS JOIN LATERAL (SELECT migration.timestamp_fast(s.created_at) AS ts) c
      CROSS JOIN LATERAL (SELECT migration.timestamp_fast(s.expires_at) AS ts) e
      WHERE s.ctid >= $1 AND s.ctid < $2
        AND (s.created_at IS NULL OR c.ts IS NOT NULL)
        AND (s.expires_at IS NULL OR e.ts IS NOT NULL)
        AND EXISTS (SELECT 1 FROM mail.accounts a WHERE a.id = s.account_id::bigint)
        AND NOT EXISTS (SELECT 1 FROM mail.sessions x WHERE x.id = s.id)$q$;
    v_rest_sql := $q$
      SELECT s.id AS key, to_jsonb(s) AS row FROM staging.sessions s
      WHERE s.ctid >= $1 AND s.ctid < $2
        AND ($3 OR (s.created_at IS NOT NULL AND migration.timestamp_fast(s.created_at) IS NULL)
             OR (s.expires_at IS NOT NULL AND migration.timestamp_fast(s.expires_at) IS NULL)
             OR NOT EXISTS (SELECT 1 FROM mail.accounts a WHERE a.id = s.account_id::bigint))$q$;
  ELSE
    RAISE EXCEPTION 'unknown source table %', p_table;
  END IF;

  BEGIN
    EXECUTE v_fast_sql USING v_lo, v_hi;
    GET DIAGNOSTICS v_result.fast = ROW_COUNT;
  EXCEPTION WHEN others THEN
    v_result.fallback := true;  -- some row needs the row path; the rollback undid the rest
    v_result.fast := 0;
  END;

  -- rows the set-based INSERT did not take; merge_row itself skips those already loaded
  FOR v_row IN EXECUTE v_rest_sql USING v_lo, v_hi, v_result.fallback LOOP
    v_outcome := migration.merge_row(p_run_id, p_table, v_row.key,
                                     migration.typed_row(p_table, v_row.row));
    CASE v_outcome
      WHEN 'loaded' THEN v_result.loaded := v_result.loaded + 1;
      WHEN 'repaired' THEN v_result.repaired := v_result.repaired + 1;
      WHEN 'rejected' THEN v_result.rejected := v_result.rejected + 1;
      ELSE NULL;  -- present: counted below
    END CASE;
  END LOOP;
  v_result.loaded := v_result.loaded + v_result.fast;
  -- the rest of the chunk was in mail.* already (a re-run)
  EXECUTE format('SELECT count(*) FROM staging.%I s WHERE s.ctid >= $1 AND s.ctid < $2', p_table)
    INTO v_total USING v_lo, v_hi;
  v_result.present := v_total - v_result.loaded - v_result.rejected;
  RETURN v_result;
END;
$$;

-- The hostile rows of one table (stored whole by the driver) through the row path.
CREATE FUNCTION migration.merge_hostile(p_run_id text, p_table text)
RETURNS migration.merge_counts
LANGUAGE plpgsql AS $$
DECLARE
  v_result migration.merge_counts := (0, 0, 0, 0, 0, false);
  v_row record;
BEGIN
  /* Rows pgloader never saw: each through merge_row. */
  FOR v_row IN SELECT source_key, original FROM staging.hostile
               WHERE source_table = p_table ORDER BY source_key LOOP
    CASE migration.merge_row(p_run_id, p_table, v_row.source_key, v_row.original)
      WHEN 'loaded' THEN v_result.loaded := v_result.loaded + 1;
      WHEN 'repaired' THEN v_result.repaired := v_result.repaired + 1;
      WHEN 'rejected' THEN v_result.rejected := v_result.rejected + 1;
      ELSE v_result.present := v_result.present + 1;
    END CASE;
  END LOOP;
  RETURN v_result;
END;
$$;

-- The months the staged emails fall in (UTC), so their partitions exist before rows arrive.
CREATE FUNCTION migration.staged_email_months() RETURNS date[]
LANGUAGE sql STABLE AS $$
  SELECT coalesce(array_agg(DISTINCT m ORDER BY m), '{}')
  FROM (
    SELECT (date_trunc('month', coalesce(migration.timestamp_fast(created_at),
                                          migration.timestamp_from_text(created_at)) AT TIME ZONE 'UTC'))::date AS m
    FROM staging.emails
    UNION ALL
    SELECT (date_trunc('month', (c.value #>> '{}')::timestamptz AT TIME ZONE 'UTC'))::date
    FROM staging.hostile h
    CROSS JOIN LATERAL migration.convert_value('timestamp_required', h.original->'created_at') c
    WHERE h.source_table = 'emails' AND c.sqlstate IS NULL
  ) months
  WHERE m IS NOT NULL
$$;

-- Where every staged row of a table ended: the accounting the load's exit status rests on.
-- Hash joins over the keys (a probe per key into every partition's index was 16 s at seed
-- volume).
CREATE FUNCTION migration.account_for(p_table text,
  OUT staged bigint, OUT loaded bigint, OUT repaired bigint, OUT rejected bigint,
  OUT unaccounted bigint, OUT doubly bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  /* staged = loaded + rejected, each key in exactly one place. */
  EXECUTE format($q$
    WITH keys AS (
      SELECT id AS key FROM staging.%1$I
      UNION ALL
      SELECT source_key FROM staging.hostile WHERE source_table = %2$L
    ), in_mail AS (
      SELECT id::text AS key, count(*) AS n FROM mail.%1$I GROUP BY id
    ), in_rejects AS (
      SELECT source_key AS key FROM migration.rejects WHERE source_table = %2$L
    ), in_repairs AS (
      SELECT DISTINCT source_key AS key FROM migration.repairs WHERE source_table = %2$L
    ), placed AS (
      SELECT k.key, m.key IS NOT NULL AS is_loaded, coalesce(m.n, 0) > 1 AS twice,
             r.key IS NOT NULL AS is_rejected, p.key IS NOT NULL AS is_repaired
      FROM keys k
      LEFT JOIN in_mail m ON m.key = k.key
      LEFT JOIN in_rejects r ON r.key = k.key
      LEFT JOIN in_repairs p ON p.key = k.key
    )
    SELECT count(*),
           count(*) FILTER (WHERE is_loaded AND NOT is_rejected),
           count(*) FILTER (WHERE is_loaded AND is_repaired AND NOT is_rejected),
           count(*) FILTER (WHERE is_rejected AND NOT is_loaded),
           count(*) FILTER (WHERE NOT is_loaded AND NOT is_rejected),
           count(*) FILTER (WHERE (is_loaded AND is_rejected) OR twice)
    FROM placed$q$,
    p_table, p_table)
  INTO staged, loaded, repaired, rejected, unaccounted, doubly;
END;
$$;
