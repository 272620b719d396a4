SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION migration.sequence_at_least(p_sequence regclass, p_value bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_last bigint;
BEGIN
  /* setval to greatest(p_value, last_value): the next id is past p_value (e.g. the
     largest id SQLite ever assigned, sqlite_sequence included), never moved back. */
  EXECUTE format('SELECT last_value FROM %s', p_sequence) INTO v_last;
  RETURN setval(p_sequence, greatest(coalesce(p_value, 0), v_last, 1), true);
END;
$$;

COMMENT ON FUNCTION migration.sequence_at_least(regclass, bigint) IS
  'A sequence set so that its next value is past p_value, never moved back.';
