-- The conversion rules of the merge (docs/contracts.md, "Conversion rules"), one
-- function per kind of column. Each takes one source value in the typed-JSON form
-- ({"t": typeof, "v" | "hex"}) and returns the value to store, as jsonb ready for
-- jsonb_populate_record, plus the repair rule applied (NULL = loaded as-is) or the
-- SQLSTATE of a reject. None of them raises on bad input: the merge decides.
SET LOCAL ROLE mail_owner;

-- Which kind of conversion each source column takes; the merge and its report read it.
CREATE TABLE migration.column_map (
  source_table text NOT NULL,
  position     int  NOT NULL,
  column_name  text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('int', 'text', 'flag', 'float', 'json',
                                             'timestamp', 'timestamp_required')),
  PRIMARY KEY (source_table, column_name)
);
INSERT INTO migration.column_map VALUES
  ('emails', 1, 'id', 'int'), ('emails', 2, 'message_id', 'text'),
  ('emails', 3, 'from_address', 'text'), ('emails', 4, 'to_address', 'text'),
  ('emails', 5, 'subject', 'text'), ('emails', 6, 'body', 'text'),
  ('emails', 7, 'html', 'text'), ('emails', 8, 'headers', 'json'),
  ('emails', 9, 'raw_email', 'text'), ('emails', 10, 'size', 'int'),
  ('emails', 11, 'starred', 'flag'), ('emails', 12, 'is_read', 'flag'),
  ('emails', 13, 'spam_score', 'float'), ('emails', 14, 'created_at', 'timestamp_required'),
  ('accounts', 1, 'id', 'int'), ('accounts', 2, 'email', 'text'),
  ('accounts', 3, 'password_hash', 'text'), ('accounts', 4, 'token', 'text'),
  ('accounts', 5, 'created_at', 'timestamp'), ('accounts', 6, 'expires_at', 'timestamp'),
  ('accounts', 7, 'last_login_at', 'timestamp'), ('accounts', 8, 'is_active', 'flag'),
  ('sessions', 1, 'id', 'text'), ('sessions', 2, 'account_id', 'int'),
  ('sessions', 3, 'created_at', 'timestamp'), ('sessions', 4, 'expires_at', 'timestamp'),
  ('sessions', 5, 'ip', 'text'), ('sessions', 6, 'user_agent', 'text');

-- Bytes as text: every byte that is not part of a valid UTF-8 sequence, and every NUL,
-- becomes U+FFFD; the rest is kept (rule text_bytes_replaced / blob_as_text).
CREATE FUNCTION migration.utf8_replace(p_bytes bytea) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  v_len int := length(p_bytes);
  v_out bytea := ''::bytea;
  v_run_start int := 0;   -- start of the current run of valid bytes (0-based)
  v_i int := 0;
  v_b int;
  v_need int;
  v_min int;
  v_max int;
  v_ok boolean;
  v_j int;
BEGIN
  /* Decode possibly invalid UTF-8 the way the repair rule says: bad byte -> U+FFFD. */
  WHILE v_i < v_len LOOP
    v_b := get_byte(p_bytes, v_i);
    v_need := CASE WHEN v_b BETWEEN 1 AND 127 THEN 0
                   WHEN v_b BETWEEN 194 AND 223 THEN 1
                   WHEN v_b BETWEEN 224 AND 239 THEN 2
                   WHEN v_b BETWEEN 240 AND 244 THEN 3
                   ELSE -1 END;  -- NUL, continuation bytes, C0/C1, F5-FF
    v_ok := v_need >= 0 AND v_i + v_need < v_len;
    IF v_ok AND v_need > 0 THEN
      -- the second byte's range excludes overlongs and surrogates (RFC 3629)
      v_min := CASE v_b WHEN 224 THEN 160 WHEN 240 THEN 144 ELSE 128 END;
      v_max := CASE v_b WHEN 237 THEN 159 WHEN 244 THEN 143 ELSE 191 END;
      v_ok := get_byte(p_bytes, v_i + 1) BETWEEN v_min AND v_max;
      v_j := 2;
      WHILE v_ok AND v_j <= v_need LOOP
        v_ok := get_byte(p_bytes, v_i + v_j) BETWEEN 128 AND 191;
        v_j := v_j + 1;
      END LOOP;
    END IF;
    IF v_ok THEN
      v_i := v_i + 1 + v_need;
    ELSE
      v_out := v_out || substring(p_bytes FROM v_run_start + 1 FOR v_i - v_run_start)
                     || '\xefbfbd'::bytea;
      v_i := v_i + 1;
      v_run_start := v_i;
    END IF;
  END LOOP;
  v_out := v_out || substring(p_bytes FROM v_run_start + 1);
  RETURN convert_from(v_out, 'UTF8');
END;
$$;

-- Epoch seconds (|v| < 1e11) or milliseconds as an instant, NULL outside 1970..2100.
CREATE FUNCTION migration.timestamp_from_epoch(p_epoch numeric) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  v_seconds numeric;
BEGIN
  /* The epoch forms older app versions wrote. */
  IF p_epoch IS NULL THEN RETURN NULL; END IF;
  v_seconds := CASE WHEN abs(p_epoch) < 1e11 THEN p_epoch ELSE p_epoch / 1000 END;
  IF v_seconds < 0 OR v_seconds >= 4102444800 THEN  -- 2100-01-01T00:00:00Z
    RETURN NULL;
  END IF;
  RETURN to_timestamp(0) + make_interval(secs => round(v_seconds, 6));
END;
$$;

-- A legacy timestamp text as a UTC instant, NULL when it is not one of the forms.
CREATE FUNCTION migration.timestamp_from_text(p_text text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  v_m text[];
  v_year int;
  v_month int;
  v_day int;
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
  IF v_year < 1900 OR v_year > 2200 OR v_month NOT BETWEEN 1 AND 12 OR v_day < 1
     OR v_day > extract(day FROM make_date(v_year, v_month, 1) + interval '1 month - 1 day')
     OR v_hour > 23 OR v_minute > 59 OR v_second >= 60 THEN
    RETURN NULL;
  END IF;
  IF v_m[7] IS NOT NULL AND v_m[7] <> 'Z' THEN
    v_offset := make_interval(hours => substr(v_m[7], 2, 2)::int,
                              mins => right(v_m[7], 2)::int);
    IF left(v_m[7], 1) = '-' THEN
      v_offset := -v_offset;
    END IF;
    IF substr(v_m[7], 2, 2)::int > 23 OR right(v_m[7], 2)::int > 59 THEN
      RETURN NULL;
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

-- The common legacy form ('YYYY-MM-DD HH:MM:SS', also with T, fraction, Z), 1970..2099,
-- as an instant; NULL for anything else. An inlinable SQL expression, fast enough for
-- set-based use: the plpgsql timestamp_from_text costs a few hundred microseconds a call.
-- A date the regex admits but the calendar does not (02-30) raises: the merge then takes
-- that chunk row by row, where timestamp_from_text decides.
CREATE FUNCTION migration.timestamp_fast(p_text text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN p_text ~ '^(19[7-9][0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[ T]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?Z?$'
    THEN (rtrim(p_text, 'Z') || '+00')::timestamptz
  END
$$;

-- One source value converted for a column of the given kind.
--   value:    the value to store as jsonb (for jsonb_populate_record), SQL NULL for NULL;
--             for a json column, the JSON value itself (JSON null is a value, not NULL)
--   rule:     the repair rule applied, NULL when loaded as-is
--   sqlstate: set when the row must be rejected for this value
CREATE FUNCTION migration.convert_value(p_kind text, p_value jsonb,
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
    IF v_t = 'integer' OR (v_t = 'real' AND v_v ~ '^-?[0-9]+(\.0*)?$')
       OR (v_t = 'text' AND v_v ~ '^-?[0-9]{1,19}$') THEN
      v_num := v_v::numeric;
      IF v_num BETWEEN -9223372036854775808 AND 9223372036854775807 THEN
        value := to_jsonb(v_num::bigint);
        RETURN;
      END IF;
    END IF;
    rule := 'number_unreadable_null';

  ELSIF p_kind = 'float' THEN
    IF v_t IN ('integer', 'real') THEN
      value := to_jsonb(v_v::float8);  -- 'Infinity' too
    ELSIF v_t = 'text' AND v_v ~ '^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,3})?\s*$'
          AND abs(v_v::numeric) < 1e300 THEN
      value := to_jsonb(v_v::float8);
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
    IF v_bytes IS NULL AND v_t IN ('text', 'integer', 'real') THEN
      BEGIN
        value := v_v::jsonb;
        RETURN;
      EXCEPTION WHEN others THEN
        NULL;  -- not JSON that jsonb takes: the repair below
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
