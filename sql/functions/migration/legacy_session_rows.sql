-- requires: functions/migration/legacy_timestamp.sql
-- requires: functions/migration/legacy_flag.sql
SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION migration.legacy_session_rows(p_ids text[])
RETURNS TABLE (id text, account_id bigint, created_at text, expires_at text, ip text, user_agent text)
LANGUAGE sql STABLE
BEGIN ATOMIC
  /* The current rows of these session ids in the legacy forms of auth.db. An id that
     is not returned is not in PostgreSQL. */
  SELECT s.id, s.account_id, migration.legacy_timestamp(s.created_at),
         migration.legacy_timestamp(s.expires_at), s.ip, s.user_agent
  FROM mail.sessions s
  WHERE s.id = ANY (p_ids);
END;

COMMENT ON FUNCTION migration.legacy_session_rows(text[]) IS
  'mail.sessions rows in the legacy SQLite forms (what sync --reverse writes to auth.db).';
