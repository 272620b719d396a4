SET LOCAL ROLE mail_owner;

-- A legacy timestamp text as a UTC instant, NULL when it is not one of the forms.
CREATE OR REPLACE FUNCTION migration.timestamp_from_text(p_text text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  v_m text[];
  v_year int;
  v_month int;
  v_day int;
  v_days int;
  v_hour int;
  v_minute int;
  v_second numeric;
  v_offset interval := interval '0';
  v_ts timestamptz;
BEGIN
  /* The text forms of the contracts; anything else (or outside 1970..2100) is NULL. */
  IF p_text IS NULL THEN
    RETURN NULL;
  END IF;
  IF p_text ~ '^-?[0-9]{1,18}(\.[0-9]{1,9})?$' THEN
    RETURN migration.timestamp_from_epoch(p_text::numeric);
  END IF;
  v_m := regexp_match(p_text,
    '^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[ T]([0-9]{2}):([0-9]{2}):([0-9]{2}(?:\.[0-9]{1,6})?)(Z|[+-][0-9]{2}:?[0-9]{2})?)?$');
  IF v_m IS NULL THEN
    RETURN NULL;
  END IF;
  v_year := v_m[1]::int;
  v_month := v_m[2]::int;
  v_day := v_m[3]::int;
  v_hour := coalesce(v_m[4]::int, 0);
  v_minute := coalesce(v_m[5]::int, 0);
  v_second := coalesce(v_m[6]::numeric, 0);
  -- one test at a time: nothing below may raise on a value the regex admits
  IF v_year < 1900 OR v_year > 2200 OR v_month NOT BETWEEN 1 AND 12 OR v_day < 1 THEN
    RETURN NULL;
  END IF;
  v_days := CASE WHEN v_month = 2 THEN CASE WHEN v_year % 4 = 0 AND (v_year % 100 <> 0 OR v_year % 400 = 0)
                                            THEN 29 ELSE 28 END
                 WHEN v_month IN (4, 6, 9, 11) THEN 30 ELSE 31 END;
  IF v_day > v_days OR v_hour > 23 OR v_minute > 59 OR v_second >= 60 THEN
    RETURN NULL;  -- no such calendar day, no hour 24, no leap second
  END IF;
  IF v_m[7] IS NOT NULL AND v_m[7] <> 'Z' THEN
    -- PostgreSQL's own limit for a zone offset: +-15:59
    IF substr(v_m[7], 2, 2)::int > 15 OR right(v_m[7], 2)::int > 59 THEN
      RETURN NULL;
    END IF;
    v_offset := make_interval(hours => substr(v_m[7], 2, 2)::int,
                              mins => right(v_m[7], 2)::int);
    IF left(v_m[7], 1) = '-' THEN
      v_offset := -v_offset;
    END IF;
  END IF;
  v_ts := make_timestamptz(v_year, v_month, v_day, v_hour, v_minute, v_second::float8, 'UTC')
          - v_offset;
  IF v_ts < '1970-01-01 00:00:00+00' OR v_ts >= '2100-01-01 00:00:00+00' THEN
    RETURN NULL;
  END IF;
  RETURN v_ts;
END;
$$;

COMMENT ON FUNCTION migration.timestamp_from_text(text) IS
  'A legacy timestamp text as a UTC instant; NULL when it is none of the accepted forms.';
