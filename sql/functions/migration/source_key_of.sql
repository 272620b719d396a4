SET LOCAL ROLE mail_owner;

-- The source key of a row of mail.* given its key there (the inverse of
-- migration.key_target, for the sync's pulled-in keys): the key itself when it is of its
-- column's own class and reads as itself; the source key recorded by the repair of the key
-- column when the key was converted (a blob, text that was not UTF-8); 'text:' before a
-- text key that starts like a prefixed name (docs/contracts.md, "Source keys").
CREATE OR REPLACE FUNCTION migration.source_key_of(p_table text, p_target text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT coalesce(
    (SELECT r.source_key FROM migration.repairs r
     JOIN migration.column_map m ON m.source_table = r.source_table AND m.column_name = r.column_name AND m.is_key
     WHERE r.source_table = p_table AND r.repaired = p_target
     ORDER BY r.source_key LIMIT 1),
    CASE WHEN p_target ~ '^(null|integer|real|text|hex|blob):' THEN 'text:' || p_target ELSE p_target END)
$$;

COMMENT ON FUNCTION migration.source_key_of(text, text) IS
  'The source key of a row of mail.* from its key there (the inverse of migration.key_target).';
