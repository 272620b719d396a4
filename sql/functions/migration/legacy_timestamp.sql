SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION migration.legacy_timestamp(p_value timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
  /* A timestamp in the legacy files' form: UTC 'YYYY-MM-DD HH:MM:SS', with '.ffffff'
     only when PostgreSQL holds a fraction (nothing is lost; validate reads both). */
  SELECT CASE
           WHEN p_value IS NULL THEN NULL
           WHEN NOT isfinite(p_value) THEN p_value::text
           ELSE to_char(p_value AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                || CASE WHEN to_char(p_value AT TIME ZONE 'UTC', 'US') = '000000' THEN ''
                        ELSE '.' || to_char(p_value AT TIME ZONE 'UTC', 'US') END
         END;
END;

COMMENT ON FUNCTION migration.legacy_timestamp(timestamptz) IS
  'A timestamp as the legacy SQLite files hold it: UTC ''YYYY-MM-DD HH:MM:SS[.ffffff]''.';
