SET LOCAL ROLE mail_owner;

-- The extent of staging.<p_table>: its blocks (the merge hands out block ranges of it) and
-- its rows (what the loader staged, checked against the snapshot).
--   SELECT * FROM migration.staging_extent('emails');
CREATE OR REPLACE FUNCTION migration.staging_extent(p_table text, OUT blocks bigint, OUT row_count bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_table regclass := format('staging.%I', p_table)::regclass;
BEGIN
  /* Blocks and rows of one staging table. */
  blocks := pg_relation_size(v_table) / current_setting('block_size')::int;
  EXECUTE format('SELECT count(*) FROM %s', v_table) INTO row_count;
END;
$$;

COMMENT ON FUNCTION migration.staging_extent(text) IS
  'The blocks and rows of one staging table.';
