SET LOCAL ROLE mail_owner;

-- Where every staged row of a table ended: the accounting the load's exit status rests on.
-- Hash joins over the keys (a probe per key into every partition's index was 16 s at seed
-- volume).
CREATE OR REPLACE FUNCTION migration.account_for(p_table text,
  OUT staged bigint, OUT loaded bigint, OUT repaired bigint, OUT rejected bigint,
  OUT unaccounted bigint, OUT doubly bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  /* staged = loaded + rejected, each key in exactly one place. */
  EXECUTE format($q$
    WITH keys AS (
      SELECT id AS key FROM staging.%1$I
      UNION ALL
      SELECT source_key FROM staging.hostile WHERE source_table = %2$L
    ), in_mail AS (
      SELECT id::text AS key, count(*) AS n FROM mail.%1$I GROUP BY id
    ), in_rejects AS (
      SELECT source_key AS key FROM migration.rejects WHERE source_table = %2$L
    ), in_repairs AS (
      SELECT DISTINCT source_key AS key FROM migration.repairs WHERE source_table = %2$L
    ), placed AS (
      SELECT k.key, m.key IS NOT NULL AS is_loaded, coalesce(m.n, 0) > 1 AS twice,
             r.key IS NOT NULL AS is_rejected, p.key IS NOT NULL AS is_repaired
      FROM keys k
      LEFT JOIN in_mail m ON m.key = k.key
      LEFT JOIN in_rejects r ON r.key = k.key
      LEFT JOIN in_repairs p ON p.key = k.key
    )
    SELECT count(*),
           count(*) FILTER (WHERE is_loaded AND NOT is_rejected),
           count(*) FILTER (WHERE is_loaded AND is_repaired AND NOT is_rejected),
           count(*) FILTER (WHERE is_rejected AND NOT is_loaded),
           count(*) FILTER (WHERE NOT is_loaded AND NOT is_rejected),
           count(*) FILTER (WHERE (is_loaded AND is_rejected) OR twice)
    FROM placed$q$,
    p_table, p_table)
  INTO staged, loaded, repaired, rejected, unaccounted, doubly;
END;
$$;

COMMENT ON FUNCTION migration.account_for(text) IS
  'Where every staged row of a table ended: staged = loaded + rejected, each key in one place.';
