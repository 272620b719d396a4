SET LOCAL ROLE mail_owner;

-- One block range [p_first_block, p_last_block) of staging.<p_table>: plain rows in one
-- set-based INSERT, the others (or all, when that INSERT fails) through merge_row. Both
-- statements come from migration.merge_statements (the mapping's columns and kinds).
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
  SELECT m.insert_plain, m.select_rest INTO v_fast_sql, v_rest_sql
  FROM migration.merge_statements(p_table) m;

  EXECUTE format('SELECT count(*) FROM staging.%I s WHERE s.ctid >= $1 AND s.ctid < $2', p_table)
    INTO v_total USING v_lo, v_hi;

  BEGIN
    EXECUTE v_fast_sql USING v_lo, v_hi;
    GET DIAGNOSTICS v_result.fast = ROW_COUNT;
  EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
    -- some row's values need the row path; the rollback undid the rest. Any other error
    -- (lock or statement timeout, deadlock, shutdown ...) is no fact about the data: it
    -- propagates, and the range's transaction is undone whole, recording nothing
    v_result.fallback := true;
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
