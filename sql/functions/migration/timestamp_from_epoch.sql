SET LOCAL ROLE mail_owner;

-- Epoch seconds (|v| < 1e11) or milliseconds as an instant, NULL outside 1970..2100.
CREATE OR REPLACE FUNCTION migration.timestamp_from_epoch(p_epoch numeric) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  v_seconds numeric;
  v_micros numeric;
BEGIN
  /* The epoch forms older app versions wrote. */
  IF p_epoch IS NULL THEN RETURN NULL; END IF;
  v_seconds := CASE WHEN abs(p_epoch) < 1e11 THEN p_epoch ELSE p_epoch / 1000 END;
  IF v_seconds < 0 OR v_seconds >= 4102444800 THEN  -- 2100-01-01T00:00:00Z
    RETURN NULL;
  END IF;
  -- to the microsecond, exactly (whole microseconds below 2^53 are exact in a double),
  -- and the rounded instant in range too: 4102444799.9999995 rounds to 2100-01-01
  v_micros := round(v_seconds * 1000000);
  IF v_micros >= 4102444800000000 THEN
    RETURN NULL;
  END IF;
  RETURN to_timestamp(0) + v_micros::bigint * interval '1 microsecond';
END;
$$;

COMMENT ON FUNCTION migration.timestamp_from_epoch(numeric) IS
  'Epoch seconds (|v| < 1e11) or milliseconds as an instant; NULL outside 1970..2100.';
