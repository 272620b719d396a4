-- Big staging values compressed with lz4 instead of stored raw (3000): 1.4 GB of staging
-- instead of 1.9 GB at seed volume, a third fewer TOAST chunks for COPY to write and the
-- merge to read, and the merge copies a compressed value into mail.emails as it is
-- (same method, lz4 there too: 1100) instead of compressing it a second time.
SET LOCAL ROLE mail_owner;

DO $$
BEGIN
  /* lz4 when the server was built with it; without it staging keeps STORAGE EXTERNAL. */
  IF EXISTS (SELECT 1 FROM pg_settings
             WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
    ALTER TABLE staging.emails
      ALTER COLUMN subject SET STORAGE EXTENDED, ALTER COLUMN subject SET COMPRESSION lz4,
      ALTER COLUMN body SET STORAGE EXTENDED, ALTER COLUMN body SET COMPRESSION lz4,
      ALTER COLUMN html SET STORAGE EXTENDED, ALTER COLUMN html SET COMPRESSION lz4,
      ALTER COLUMN headers SET STORAGE EXTENDED, ALTER COLUMN headers SET COMPRESSION lz4,
      ALTER COLUMN raw_email SET STORAGE EXTENDED, ALTER COLUMN raw_email SET COMPRESSION lz4;
  END IF;
END
$$;
