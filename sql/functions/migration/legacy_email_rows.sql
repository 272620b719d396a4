-- requires: functions/migration/legacy_timestamp.sql
-- requires: functions/migration/legacy_flag.sql
SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION migration.legacy_email_rows(p_ids bigint[])
RETURNS TABLE (id bigint, message_id text, from_address text, to_address text, subject text,
               body text, html text, headers text, raw_email text, size bigint, starred integer,
               is_read integer, spam_score double precision, created_at text)
LANGUAGE sql STABLE
BEGIN ATOMIC
  /* The current rows of these email ids in the legacy forms of emails.db (the reverse
     sync writes them): UTC 'YYYY-MM-DD HH:MM:SS', 0/1 flags, JSON text. An id that
     is not returned is not in PostgreSQL. */
  SELECT e.id, e.message_id, e.from_address, e.to_address, e.subject, e.body, e.html,
         e.headers::text, e.raw_email, e.size, migration.legacy_flag(e.starred),
         migration.legacy_flag(e.is_read), e.spam_score, migration.legacy_timestamp(e.created_at)
  FROM mail.emails e
  WHERE e.id = ANY (p_ids);
END;

COMMENT ON FUNCTION migration.legacy_email_rows(bigint[]) IS
  'mail.emails rows in the legacy SQLite forms (what sync --reverse writes to emails.db).';
