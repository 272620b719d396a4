SET LOCAL ROLE mail_owner;

-- One block range [p_first_block, p_last_block) of staging.<p_table>: plain rows in one
-- set-based INSERT, the others (or all, when that INSERT fails) through merge_row.
CREATE OR REPLACE FUNCTION migration.merge_chunk(p_run_id text, p_table text,
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

  EXECUTE format('SELECT count(*) FROM staging.%I s WHERE s.ctid >= $1 AND s.ctid < $2', p_table)
    INTO v_total USING v_lo, v_hi;

  BEGIN
    EXECUTE v_fast_sql USING v_lo, v_hi;
    GET DIAGNOSTICS v_result.fast = ROW_COUNT;
  EXCEPTION WHEN others THEN
    v_result.fallback := true;  -- some row needs the row path; the rollback undid the rest
    v_result.fast := 0;
  END;

  -- rows the set-based INSERT did not take: none when it took the whole range (the
  -- common case, which then skips a second scan); merge_row skips those already loaded
  IF v_result.fast < v_total THEN
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
  END IF;
  v_result.loaded := v_result.loaded + v_result.fast;
  -- the rest of the chunk was in mail.* already (a re-run)
  v_result.present := v_total - v_result.loaded - v_result.rejected;
  RETURN v_result;
END;
$$;

COMMENT ON FUNCTION migration.merge_chunk(text, text, bigint, bigint) IS
  'One block range of staging merged in one transaction: plain rows set-based, the rest through merge_row.';
