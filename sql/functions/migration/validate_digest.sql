SET LOCAL ROLE mail_owner;

-- validate's digest of mail.<p_table>, per bucket: the rows, and the sums of the two
-- signed 64-bit halves of md5 over each row's canonical values (migration.canonical_query),
-- each value as 'N' (NULL) or 'V<bytes>:<value>' so that no two rows can run together.
-- Only these sums leave the server; validate computes the same of the SQLite side. With
-- p_lo and p_hi (an int key), the rows whose key is in [p_lo, p_hi) only.
--   SELECT * FROM migration.validate_digest('accounts');
CREATE OR REPLACE FUNCTION migration.validate_digest(p_table text, p_lo bigint DEFAULT NULL,
                                                     p_hi bigint DEFAULT NULL)
RETURNS TABLE (bucket bigint, row_count bigint, sum_hi numeric, sum_lo numeric)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_canonical record;
BEGIN
  /* Bucket sums of the canonical rows of one table, hashed server-side. */
  v_canonical := migration.canonical_query(p_table, CASE WHEN p_lo IS NULL THEN 'all' ELSE 'range' END);
  RETURN QUERY EXECUTE format(
    'SELECT bucket, count(*),'
    ' sum((''x'' || substr(h, 1, 16))::bit(64)::bigint),'
    ' sum((''x'' || substr(h, 17, 16))::bit(64)::bigint)'
    ' FROM (SELECT c.bucket, md5(%s) AS h FROM (%s) AS c) AS d'
    ' GROUP BY bucket',
    (SELECT string_agg(format('coalesce(''V'' || octet_length(c.v%1$s) || '':'' || c.v%1$s, ''N'')', i), ' || ')
     FROM generate_series(1, v_canonical.columns) AS i),
    v_canonical.query)
  USING p_lo, p_hi;
END;
$$;

COMMENT ON FUNCTION migration.validate_digest(text, bigint, bigint) IS
  'validate''s digest of one table: rows and md5 sums per bucket of its canonical rows.';
