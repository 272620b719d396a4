-- staging: where a load lands before the merge. Every source column as text under its
-- source name, UNLOGGED (disposable, rebuilt by each load), no constraints, no indexes.
-- STORAGE EXTERNAL keeps big values out of line uncompressed: the merge reads each
-- value once, so compressing it here would be CPU spent for nothing.
SET LOCAL ROLE mail_owner;

CREATE UNLOGGED TABLE staging.emails (
  id text, message_id text, from_address text, to_address text, subject text,
  body text, html text, headers text, raw_email text, size text, starred text,
  is_read text, spam_score text, created_at text
);
ALTER TABLE staging.emails
  ALTER COLUMN subject SET STORAGE EXTERNAL, ALTER COLUMN body SET STORAGE EXTERNAL,
  ALTER COLUMN html SET STORAGE EXTERNAL, ALTER COLUMN headers SET STORAGE EXTERNAL,
  ALTER COLUMN raw_email SET STORAGE EXTERNAL;

CREATE UNLOGGED TABLE staging.accounts (
  id text, email text, password_hash text, token text, created_at text,
  expires_at text, last_login_at text, is_active text
);

CREATE UNLOGGED TABLE staging.sessions (
  id text, account_id text, created_at text, expires_at text, ip text, user_agent text
);

-- Rows pgloader must not see (contracts: hostile), each column in the typed-JSON form.
CREATE UNLOGGED TABLE staging.hostile (
  source_table text NOT NULL,
  source_key   text NOT NULL,
  original     jsonb NOT NULL,
  PRIMARY KEY (source_table, source_key)
);

-- Staging is written once per load and read once by the merge, by block ranges: an
-- autovacuum or autoanalyze of it (2 GB at seed volume) is work nothing uses, taken
-- from the merge running beside it.
ALTER TABLE staging.emails SET (autovacuum_enabled = false, toast.autovacuum_enabled = false);
ALTER TABLE staging.accounts SET (autovacuum_enabled = false, toast.autovacuum_enabled = false);
ALTER TABLE staging.sessions SET (autovacuum_enabled = false, toast.autovacuum_enabled = false);
ALTER TABLE staging.hostile SET (autovacuum_enabled = false, toast.autovacuum_enabled = false);

-- Big staging values compressed with lz4 instead of stored raw (3000): 1.4 GB of staging
-- instead of 1.9 GB at seed volume, a third fewer TOAST chunks for COPY to write and the
-- merge to read, and the merge copies a compressed value into mail.emails as it is
-- (same method, lz4 there too: 1100) instead of compressing it a second time.
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
