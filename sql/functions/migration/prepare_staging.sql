SET LOCAL ROLE mail_owner;

-- The staging tables of a load, as the mapping says, empty: for each table of
-- migration.column_map, staging.<table> with every source column as text under its source
-- name, UNLOGGED (disposable), no constraints, no indexes, no autovacuum (written once per
-- load and read once by the merge, by block ranges: an autovacuum of 2 GB would be work
-- nothing uses). Big values are compressed with lz4 where the server has it: a third fewer
-- TOAST chunks for COPY to write and the merge to read, and the merge copies a compressed
-- value into mail.emails as it is (lz4 there too); without lz4, STORAGE EXTERNAL (not
-- compressed twice). A table whose columns are already the mapping's is only emptied; one
-- that differs (a column added to the mapping) is made again. staging.hostile is emptied.
-- Owned by mail_owner whoever calls it (SECURITY DEFINER), as every staging table.
CREATE OR REPLACE FUNCTION migration.prepare_staging()
RETURNS TABLE (source_table text, columns int, remade boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_table record;
  v_have text[];
  v_lz4 boolean := EXISTS (SELECT 1 FROM pg_settings
                           WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals));
BEGIN
  /* staging.<table> per mapped table, with the mapping's columns, empty. */
  FOR v_table IN
    SELECT m.source_table AS name, array_agg(m.column_name ORDER BY m.position) AS wanted
    FROM migration.column_map m GROUP BY m.source_table ORDER BY m.source_table
  LOOP
    source_table := v_table.name;
    columns := cardinality(v_table.wanted);
    SELECT array_agg(a.attname::text ORDER BY a.attnum) INTO v_have
    FROM pg_attribute a
    WHERE a.attrelid = to_regclass(format('staging.%I', v_table.name))
      AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid = 'text'::regtype;
    remade := v_have IS DISTINCT FROM v_table.wanted;
    IF remade THEN
      IF to_regclass(format('staging.%I', v_table.name)) IS NOT NULL THEN
        EXECUTE format('DROP TABLE staging.%I', v_table.name);
      END IF;
      EXECUTE format('CREATE UNLOGGED TABLE staging.%I (%s) '
                     'WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)',
                     v_table.name,
                     (SELECT string_agg(format('%I text', c) || CASE WHEN v_lz4 THEN ' COMPRESSION lz4' ELSE '' END,
                                        ', ' ORDER BY n)
                      FROM unnest(v_table.wanted) WITH ORDINALITY AS u(c, n)));
      IF NOT v_lz4 THEN
        EXECUTE format('ALTER TABLE staging.%I %s', v_table.name,
                       (SELECT string_agg(format('ALTER COLUMN %I SET STORAGE EXTERNAL', c), ', ')
                        FROM unnest(v_table.wanted) AS u(c)));
      END IF;
    ELSE
      EXECUTE format('TRUNCATE staging.%I', v_table.name);
    END IF;
    RETURN NEXT;
  END LOOP;
  TRUNCATE staging.hostile;
END;
$$;

REVOKE ALL ON FUNCTION migration.prepare_staging() FROM PUBLIC;

COMMENT ON FUNCTION migration.prepare_staging() IS
  'The staging tables of a load made from migration.column_map (config/mapping.yaml), empty.';
