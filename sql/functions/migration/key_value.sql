SET LOCAL ROLE mail_owner;

-- The source value a source key names (docs/contracts.md, "Source keys"), in the typed-JSON
-- form. A key of its column's own storage class is named by itself (an integer key by its
-- digits, a text key by its text); any other names its storage class first: null:<rowid>,
-- integer:<digits>, real:<number>, text:<text>, hex:<bytes of a text that is not UTF-8>,
-- blob:<bytes>. The key column is the mapping's (column_map.is_key).
CREATE OR REPLACE FUNCTION migration.key_value(p_table text, p_key text) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN p_key LIKE 'null:%' THEN '{"t": "null"}'::jsonb
    WHEN p_key LIKE 'integer:%' THEN jsonb_build_object('t', 'integer', 'v', substr(p_key, 9)::numeric)
    WHEN p_key LIKE 'real:%' THEN jsonb_build_object('t', 'real', 'v', to_jsonb(substr(p_key, 6)::float8))
    WHEN p_key LIKE 'text:%' THEN jsonb_build_object('t', 'text', 'v', substr(p_key, 6))
    WHEN p_key LIKE 'hex:%' THEN jsonb_build_object('t', 'text', 'hex', substr(p_key, 5))
    WHEN p_key LIKE 'blob:%' THEN jsonb_build_object('t', 'blob', 'hex', substr(p_key, 6))
    WHEN (SELECT m.kind FROM migration.column_map m WHERE m.source_table = p_table AND m.is_key) = 'int'
      THEN jsonb_build_object('t', 'integer', 'v', p_key::numeric)
    ELSE jsonb_build_object('t', 'text', 'v', p_key)
  END
$$;

COMMENT ON FUNCTION migration.key_value(text, text) IS
  'The typed-JSON source value a source key names (its own class by itself, others as <class>:<value>).';
