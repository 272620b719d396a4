SET LOCAL ROLE mail_owner;

-- Where every staged row of a table ended: the accounting the load's exit status rests on.
-- Hash joins over the keys (a probe per key into every partition's index was 16 s at seed
-- volume). A row is loaded when it is not rejected and the key it has in mail.* (its
-- target: migration.key_target, the key itself for every key of its column's own storage
-- class) is there. Two source keys may convert to one target (a blob and a text of the
-- same bytes): then at most one of them may be loaded, the others must be rejected.
--   doubly: a key both loaded and rejected, a target in mail.* twice, a target claimed by
--           two loaded keys, or a rejected key whose target is loaded with no other key
--           to explain it
CREATE OR REPLACE FUNCTION migration.account_for(p_table text,
  OUT staged bigint, OUT loaded bigint, OUT repaired bigint, OUT rejected bigint,
  OUT unaccounted bigint, OUT doubly bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  /* staged = loaded + rejected, each key in exactly one place. */
  EXECUTE format($q$
    WITH keys AS (
      SELECT id AS key, id AS target FROM staging.%1$I
      UNION ALL
      SELECT source_key, migration.key_target(%2$L, source_key)
      FROM staging.hostile WHERE source_table = %2$L
    ), in_mail AS (
      SELECT id::text AS key, count(*) AS n FROM mail.%1$I GROUP BY id
    ), in_rejects AS (
      SELECT source_key AS key FROM migration.rejects WHERE source_table = %2$L
    ), in_repairs AS (
      SELECT DISTINCT source_key AS key FROM migration.repairs WHERE source_table = %2$L
    ), placed AS (
      SELECT k.key, k.target, m.key IS NOT NULL AS target_in_mail, coalesce(m.n, 0) > 1 AS twice,
             r.key IS NOT NULL AS is_rejected, p.key IS NOT NULL AS is_repaired
      FROM keys k
      LEFT JOIN in_mail m ON m.key = k.target
      LEFT JOIN in_rejects r ON r.key = k.key
      LEFT JOIN in_repairs p ON p.key = k.key
    ), claims AS (  -- targets and how many keys that are not rejected claim each
      SELECT target, count(*) AS n FROM placed WHERE NOT is_rejected AND target IS NOT NULL GROUP BY target
    )
    SELECT count(*),
           count(*) FILTER (WHERE target_in_mail AND NOT is_rejected),
           count(*) FILTER (WHERE target_in_mail AND is_repaired AND NOT is_rejected),
           count(*) FILTER (WHERE is_rejected),
           count(*) FILTER (WHERE NOT target_in_mail AND NOT is_rejected),
           count(*) FILTER (WHERE twice OR coalesce(c.n, 0) > 1
                                  OR (is_rejected AND target_in_mail AND c.n IS NULL))
    FROM placed LEFT JOIN claims c USING (target)$q$,
    p_table, p_table)
  INTO staged, loaded, repaired, rejected, unaccounted, doubly;
END;
$$;

COMMENT ON FUNCTION migration.account_for(text) IS
  'Where every staged row of a table ended: staged = loaded + rejected, each key in one place.';
