SET LOCAL ROLE mail_owner;

-- The hostile rows of one table (stored whole by the driver) through the row path.
CREATE OR REPLACE FUNCTION migration.merge_hostile(p_run_id text, p_table text)
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

COMMENT ON FUNCTION migration.merge_hostile(text, text) IS
  'The hostile rows of one table (stored whole beside pgloader) through merge_row.';
