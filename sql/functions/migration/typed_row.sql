SET LOCAL ROLE mail_owner;

-- The typed-JSON form of a plain staging row: staging holds text, and a plain row's
-- storage classes are known (contracts: plain rows), so nothing is guessed.
CREATE OR REPLACE FUNCTION migration.typed_row(p_table text, p_row jsonb) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(jsonb_object_agg(m.column_name,
           CASE
             WHEN p_row->>m.column_name IS NULL THEN '{"t": "null"}'::jsonb
             WHEN m.kind IN ('int', 'flag') THEN
               jsonb_build_object('t', 'integer', 'v', (p_row->>m.column_name)::numeric)
             WHEN m.kind = 'float' THEN
               jsonb_build_object('t', 'real', 'v', to_jsonb((p_row->>m.column_name)::float8))
             ELSE jsonb_build_object('t', 'text', 'v', p_row->>m.column_name)
           END), '{}'::jsonb)
  FROM migration.column_map m
  WHERE m.source_table = p_table
$$;

COMMENT ON FUNCTION migration.typed_row(text, jsonb) IS
  'The typed-JSON form of a plain staging row.';
