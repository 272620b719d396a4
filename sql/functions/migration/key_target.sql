SET LOCAL ROLE mail_owner;

-- The key a source row has in mail.* once converted by the rules (as text), NULL when it
-- can have none (a NULL key, an integer key that is no integer). Two source keys may reach
-- the same target (a blob and a text of the same bytes): see migration.key_rival.
CREATE OR REPLACE FUNCTION migration.key_target(p_table text, p_key text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN p_key !~ '^(null|integer|real|text|hex|blob):' THEN p_key  -- its own class: itself
    ELSE (SELECT (migration.convert_value(m.kind, migration.key_value(p_table, p_key))).value #>> '{}'
          FROM migration.column_map m WHERE m.source_table = p_table AND m.is_key)
  END
$$;

COMMENT ON FUNCTION migration.key_target(text, text) IS
  'The key a source row has in mail.* after conversion (text), NULL when it can have none.';
