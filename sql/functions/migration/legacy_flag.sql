SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION migration.legacy_flag(p_value boolean) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE p_value WHEN true THEN 1 WHEN false THEN 0 END;

COMMENT ON FUNCTION migration.legacy_flag(boolean) IS
  'A flag as the legacy SQLite files hold it: 1, 0 (NULL stays NULL).';
