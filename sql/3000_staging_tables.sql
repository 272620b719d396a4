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
