SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION migration.sequence_past_max(p_sequence regclass, p_table regclass)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_max bigint;
  v_last bigint;
BEGIN
  /* setval to greatest(max(id), last_value): the next id is past every loaded one. */
  EXECUTE format('SELECT coalesce(max(id), 0) FROM %s', p_table) INTO v_max;
  EXECUTE format('SELECT last_value FROM %s', p_sequence) INTO v_last;
  RETURN setval(p_sequence, greatest(v_max, v_last), true);
END;
$$;

COMMENT ON FUNCTION migration.sequence_past_max(regclass, regclass) IS
  'A table''s id sequence set past its largest id, never moved back.';
