SET LOCAL ROLE mail_owner;

-- Bytes as text: every byte that is not part of a valid UTF-8 sequence, and every NUL,
-- becomes U+FFFD; the rest is kept (rule text_bytes_replaced / blob_as_text).
CREATE OR REPLACE FUNCTION migration.utf8_replace(p_bytes bytea) RETURNS text
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

COMMENT ON FUNCTION migration.utf8_replace(bytea) IS
  'Bytes as text, each invalid UTF-8 byte and NUL replaced by U+FFFD (rules text_bytes_replaced, blob_as_text).';
