SET LOCAL ROLE mail_owner;

-- validate's canonical rows of mail.<p_table> (migration.canonical_query) in the buckets
-- p_buckets (the drill-down of the buckets whose digests differ), or with the keys p_keys
-- (the cut-over's check of the keys changed since). With p_lo and p_hi (an int key), only
-- the keys in [p_lo, p_hi): the buckets of a range are then read through the key's index.
--   SELECT * FROM migration.validate_rows('emails', p_keys => ARRAY['17', '18']);
CREATE OR REPLACE FUNCTION migration.validate_rows(p_table text, p_buckets bigint[] DEFAULT NULL,
                                                   p_lo bigint DEFAULT NULL, p_hi bigint DEFAULT NULL,
                                                   p_keys text[] DEFAULT NULL)
RETURNS TABLE (bucket bigint, vals text[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_canonical record;
BEGIN
  /* Canonical rows of some buckets or keys of one table. */
  v_canonical := migration.canonical_query(
    p_table, CASE WHEN p_keys IS NOT NULL THEN 'keys' WHEN p_lo IS NOT NULL THEN 'range' ELSE 'all' END);
  RETURN QUERY EXECUTE format(
    'SELECT c.bucket, ARRAY[%s] FROM (%s) AS c WHERE $4::bigint[] IS NULL OR c.bucket = ANY ($4)',
    (SELECT string_agg(format('c.v%s', i), ', ') FROM generate_series(1, v_canonical.columns) AS i),
    v_canonical.query)
  USING p_lo, p_hi, p_keys, p_buckets;
END;
$$;

COMMENT ON FUNCTION migration.validate_rows(text, bigint[], bigint, bigint, text[]) IS
  'validate''s canonical rows of one table in some buckets (drill-down) or with some keys.';
