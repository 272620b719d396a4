SET LOCAL ROLE mail_owner;

-- Another staged source row whose key reaches the same target as p_key's, or NULL. A key
-- of another storage class than its column's (a blob, an invalid text, a number in a text
-- key) is loaded only when no other source row claims its target: the key of the column's
-- own class wins, and rivals of other classes are all rejected (23505), whatever the order
-- of the merge, so that re-runs and crashes cannot change who wins.
CREATE OR REPLACE FUNCTION migration.key_rival(p_table text, p_key text, p_target text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_rival text;
BEGIN
  /* Who else claims this target key among the staged rows. */
  IF p_target IS NULL THEN
    RETURN NULL;
  END IF;
  EXECUTE format('SELECT s.%2$I FROM staging.%1$I s WHERE s.%2$I = $1 LIMIT 1', p_table,
                 (SELECT m.column_name FROM migration.column_map m WHERE m.source_table = p_table AND m.is_key))
    INTO v_rival USING p_target;
  IF v_rival IS NULL THEN
    SELECT h.source_key INTO v_rival
    FROM staging.hostile h
    WHERE h.source_table = p_table AND h.source_key <> p_key
      AND migration.key_target(p_table, h.source_key) = p_target
    ORDER BY h.source_key
    LIMIT 1;
  END IF;
  RETURN v_rival;
END;
$$;

COMMENT ON FUNCTION migration.key_rival(text, text, text) IS
  'Another staged source row whose key converts to the same target key (the rule rejects keys of a foreign class that collide).';
