SET LOCAL ROLE mail_owner;

-- One source value converted for a column of the given kind.
--   value:    the value to store as jsonb (for jsonb_populate_record), SQL NULL for NULL;
--             for a json column, the JSON value itself (JSON null is a value, not NULL)
--   rule:     the repair rule applied, NULL when loaded as-is
--   sqlstate: set when the row must be rejected for this value
CREATE OR REPLACE FUNCTION migration.convert_value(p_kind text, p_value jsonb,
                                        OUT value jsonb, OUT rule text,
                                        OUT sqlstate text, OUT reason text)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  v_t text := coalesce(p_value->>'t', 'null');
  v_v text := p_value->>'v';
  v_bytes bytea;
  v_text text;
  v_ts timestamptz;
  v_num numeric;
  v_float float8;
BEGIN
  /* The contracts' conversion rules for one value; never raises. */
  value := NULL;  -- SQL NULL; a JSON column may also receive the JSON value null
  IF v_t = 'null' THEN
    IF p_kind = 'timestamp_required' THEN
      sqlstate := '23502';
      reason := 'created_at is NULL: the row has no month to live in';
    END IF;
    RETURN;
  END IF;
  IF p_value ? 'hex' THEN
    v_bytes := decode(p_value->>'hex', 'hex');
  END IF;

  IF p_kind = 'text' THEN
    IF v_t = 'blob' THEN
      value := to_jsonb(migration.utf8_replace(v_bytes));
      rule := 'blob_as_text';
    ELSIF v_bytes IS NOT NULL THEN
      value := to_jsonb(migration.utf8_replace(v_bytes));
      rule := 'text_bytes_replaced';
    ELSE
      value := to_jsonb(v_v);  -- text, or a number SQLite kept in a text column
    END IF;

  ELSIF p_kind = 'int' THEN
    IF v_t = 'integer' OR (v_t = 'text' AND v_v ~ '^-?[0-9]{1,19}$') THEN
      v_num := v_v::numeric;
      IF v_num BETWEEN -9223372036854775808 AND 9223372036854775807 THEN
        value := to_jsonb(v_num::bigint);
        RETURN;
      END IF;
    ELSIF v_t = 'real' AND v_v ~ '^-?[0-9]+(\.0*)?$' THEN
      -- an integral double: the integer it is exactly (its shortest decimal, which the
      -- typed JSON carries, may differ beyond 2^53: 2.028725511765283e16 is ...832)
      v_float := v_v::float8;
      IF v_float >= -9223372036854775808::float8 AND v_float < 9223372036854775808::float8 THEN
        value := to_jsonb(v_float::bigint);
        RETURN;
      END IF;
    END IF;
    rule := 'number_unreadable_null';

  ELSIF p_kind = 'float' THEN
    IF v_t IN ('integer', 'real') THEN
      value := to_jsonb(v_v::float8);  -- 'Infinity' too
    ELSIF v_t = 'text' AND length(v_v) <= 400
          AND v_v ~ '^[ \t\n\r\f\v]*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,3})?[ \t\n\r\f\v]*$' THEN
      -- numeric text (at most 400 characters: numeric then cannot overflow) by value: 0,
      -- or a magnitude in [1e-300, 1e300], which a double holds without overflow or
      -- underflow, so that the cast to float8 cannot raise either
      v_num := v_v::numeric;
      IF v_num = 0 THEN
        value := to_jsonb(0::float8);
      ELSIF abs(v_num) BETWEEN 1e-300 AND 1e300 THEN
        value := to_jsonb(v_num::float8);
      ELSE
        rule := 'number_unreadable_null';
      END IF;
    ELSE
      rule := 'number_unreadable_null';
    END IF;

  ELSIF p_kind = 'flag' THEN
    IF v_t = 'integer' THEN
      value := to_jsonb(v_v::numeric <> 0);
      IF v_v NOT IN ('0', '1') THEN
        rule := 'flag_nonzero_true';
      END IF;
    ELSIF v_t = 'text' AND lower(btrim(v_v, E' \t\n\r\f\x0b')) IN ('0', 'f', 'false', 'n', 'no', 'off') THEN
      value := 'false'::jsonb;
    ELSIF v_t = 'text' AND lower(btrim(v_v, E' \t\n\r\f\x0b')) IN ('1', 't', 'true', 'y', 'yes', 'on') THEN
      value := 'true'::jsonb;
    ELSE
      rule := 'flag_unreadable_null';
    END IF;

  ELSIF p_kind = 'json' THEN
    IF v_bytes IS NULL AND v_t IN ('text', 'integer', 'real')
       AND (length(v_v) - length(translate(v_v, '[{', '')) <= 1000 OR migration.json_depth(v_v) <= 1000) THEN
      BEGIN
        value := v_v::jsonb;
        RETURN;
      EXCEPTION WHEN data_exception OR program_limit_exceeded THEN
        -- not JSON that jsonb takes (22P02, 22P05 ...; 54001 nesting, 54000 size): the
        -- repair below. Anything else (a lock, a cancel, a shutdown) is no fact about the
        -- value and propagates.
        NULL;
      END;
    END IF;
    value := NULL;
    rule := 'json_invalid_null';

  ELSIF p_kind IN ('timestamp', 'timestamp_required') THEN
    IF v_t IN ('integer', 'real') THEN
      v_ts := migration.timestamp_from_epoch(v_v::numeric);
    ELSIF v_t = 'text' AND v_bytes IS NULL THEN
      v_ts := migration.timestamp_from_text(v_v);
    END IF;
    IF v_ts IS NOT NULL THEN
      value := to_jsonb(v_ts);
    ELSIF p_kind = 'timestamp_required' THEN
      sqlstate := '22007';
      reason := 'created_at is not a timestamp the app ever wrote';
    ELSE
      rule := 'timestamp_unreadable_null';
    END IF;
  ELSE
    RAISE EXCEPTION 'unknown column kind %', p_kind;
  END IF;
END;
$$;

COMMENT ON FUNCTION migration.convert_value(text, jsonb) IS
  'The conversion rules for one typed-JSON source value: value, repair rule or reject SQLSTATE.';
