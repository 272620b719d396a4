SET LOCAL ROLE mail_owner;

-- Everything landed in staging.<p_table> and staging.hostile, merged by the load's own
-- functions: merge_chunk over block ranges of about p_chunk_rows rows, then merge_hostile.
-- Ranges as small as the load's matter more here: one row the set-based INSERT cannot
-- take (a 10 KB address over the btree limit, say, updated by the app) sends its whole
-- range through the row path. Returns the summed counts.
CREATE OR REPLACE FUNCTION migration.sync_merge_staged(p_run_id text, p_table text, p_chunk_rows int DEFAULT 500)
RETURNS migration.merge_counts
LANGUAGE plpgsql AS $$
DECLARE
  v_blocks bigint;
  v_rows bigint;
  v_step bigint;
  v_first bigint := 0;
  v_part migration.merge_counts;
  v_sum migration.merge_counts := (0, 0, 0, 0, 0, false);
BEGIN
  /* The sync's merge of a landed batch. */
  v_blocks := pg_relation_size(format('staging.%I', p_table)::regclass) / current_setting('block_size')::int;
  EXECUTE format('SELECT count(*) FROM staging.%I', p_table) INTO v_rows;
  v_step := greatest(1, (p_chunk_rows * v_blocks) / greatest(v_rows, 1));
  WHILE v_rows > 0 AND v_first <= v_blocks LOOP
    v_part := migration.merge_chunk(p_run_id, p_table, v_first, v_first + v_step);
    v_sum := (v_sum.fast + v_part.fast, v_sum.loaded + v_part.loaded, v_sum.repaired + v_part.repaired,
              v_sum.rejected + v_part.rejected, v_sum.present + v_part.present,
              v_sum.fallback OR v_part.fallback);
    v_first := v_first + v_step;
  END LOOP;
  v_part := migration.merge_hostile(p_run_id, p_table);
  RETURN (v_sum.fast, v_sum.loaded + v_part.loaded, v_sum.repaired + v_part.repaired,
          v_sum.rejected + v_part.rejected, v_sum.present + v_part.present, v_sum.fallback);
END;
$$;

COMMENT ON FUNCTION migration.sync_merge_staged(text, text, int) IS
  'A landed sync batch of one table merged by merge_chunk (block ranges of about p_chunk_rows rows) and merge_hostile.';
