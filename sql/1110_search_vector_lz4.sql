-- The stored search vector is compressed too when it is long (a body of a few KB gives
-- a vector of a few KB); pglz on it was 3% of the load's merge CPU, lz4 a fraction of
-- that. ALTER TABLE recurses: existing partitions change as well (new values only).
SET LOCAL ROLE mail_owner;

DO $$
BEGIN
  /* lz4 for the search vector when the server was built with it. */
  IF EXISTS (SELECT 1 FROM pg_settings
             WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
    ALTER TABLE mail.emails ALTER COLUMN search_vector SET COMPRESSION lz4;
  END IF;
END
$$;
