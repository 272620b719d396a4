-- requires: functions/migration/legacy_timestamp.sql
-- requires: functions/migration/legacy_flag.sql
SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION migration.legacy_account_rows(p_ids bigint[])
RETURNS TABLE (id bigint, email text, password_hash text, token text, created_at text,
               expires_at text, last_login_at text, is_active integer)
LANGUAGE sql STABLE
BEGIN ATOMIC
  /* The current rows of these account ids in the legacy forms of auth.db. An id that
     is not returned is not in PostgreSQL. */
  SELECT a.id, a.email, a.password_hash, a.token, migration.legacy_timestamp(a.created_at),
         migration.legacy_timestamp(a.expires_at), migration.legacy_timestamp(a.last_login_at),
         migration.legacy_flag(a.is_active)
  FROM mail.accounts a
  WHERE a.id = ANY (p_ids);
END;

COMMENT ON FUNCTION migration.legacy_account_rows(bigint[]) IS
  'mail.accounts rows in the legacy SQLite forms (what sync --reverse writes to auth.db).';
