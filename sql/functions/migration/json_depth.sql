SET LOCAL ROLE mail_owner;

-- How deeply a JSON text nests arrays and objects (brackets inside strings do not count),
-- for the conversion rule that loads JSON up to 1000 levels deep: PostgreSQL's own
-- parser stops at a depth that depends on max_stack_depth, validate's at its recursion
-- limit, so the rule names a depth both reach. Callers test the cheap bound first: a
-- text with at most 1000 brackets cannot nest deeper.
CREATE OR REPLACE FUNCTION migration.json_depth(p_text text) RETURNS int
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  v_brackets text;
  v_depth int := 0;
  v_deepest int := 0;
  v_char text;
BEGIN
  /* The nesting depth of a JSON text; meaningful for valid JSON only. */
  v_brackets := regexp_replace(regexp_replace(p_text, '"(?:[^"\\]|\\.)*"', '', 'g'), '[^][{}]', '', 'g');
  FOREACH v_char IN ARRAY regexp_split_to_array(v_brackets, '') LOOP
    IF v_char IN ('[', '{') THEN
      v_depth := v_depth + 1;
      v_deepest := greatest(v_deepest, v_depth);
    ELSE
      v_depth := v_depth - 1;
    END IF;
  END LOOP;
  RETURN v_deepest;
END;
$$;

COMMENT ON FUNCTION migration.json_depth(text) IS
  'How deeply a JSON text nests arrays and objects (the rule loads at most 1000 levels).';
