SET LOCAL ROLE mail_owner;

-- Keys the batch in staging.sync_keys must also apply although the changelog does not
-- name them: rows of mail.* or migration.rejects outside the batch that hold a unique
-- value a landed row holds (an INSERT OR REPLACE in SQLite deleted such a row without
-- firing a DELETE trigger, or a value moved between rows across a batch boundary), the
-- sessions of the batch's accounts (deleting or rejecting an account cascades to them
-- in PostgreSQL, while SQLite may keep them), and sessions rejected for a missing
-- account that the batch brings. The driver reads their current source rows in the same
-- SQLite snapshot, lands them, and asks again until nothing new comes back.
CREATE OR REPLACE FUNCTION migration.sync_pull_keys()
RETURNS TABLE (source_table text, source_key text)
LANGUAGE sql STABLE AS $$
  WITH landed_emails AS (
    SELECT message_id FROM staging.emails
    UNION ALL
    SELECT (migration.convert_value('text', h.original->'message_id')).value #>> '{}'
    FROM staging.hostile h WHERE h.source_table = 'emails'
  ), landed_accounts AS (
    SELECT email, token FROM staging.accounts
    UNION ALL
    SELECT (migration.convert_value('text', h.original->'email')).value #>> '{}',
           (migration.convert_value('text', h.original->'token')).value #>> '{}'
    FROM staging.hostile h WHERE h.source_table = 'accounts'
  ), batch_accounts AS (
    SELECT migration.key_target('accounts', k.source_key)::bigint AS id
    FROM staging.sync_keys k WHERE k.source_table = 'accounts'
  ), wanted AS (
    SELECT 'emails' AS source_table, migration.source_key_of('emails', g.email_id::text) AS source_key
    FROM landed_emails l JOIN mail.message_id_guard g ON g.message_id = l.message_id
    UNION
    SELECT 'accounts', migration.source_key_of('accounts', a.id::text)
    FROM landed_accounts l JOIN mail.accounts a ON mail.ascii_lower(a.email) = mail.ascii_lower(l.email)
    UNION
    SELECT 'accounts', migration.source_key_of('accounts', a.id::text)
    FROM landed_accounts l JOIN mail.accounts a ON a.token = l.token
    UNION  -- a rejected row holding the value (SQLite deleted it, or it changed)
    SELECT 'emails', r.source_key
    FROM migration.rejects r JOIN landed_emails l
      ON (migration.convert_value('text', r.original->'message_id')).value #>> '{}' = l.message_id
    WHERE r.source_table = 'emails'
    UNION
    SELECT 'accounts', r.source_key
    FROM migration.rejects r JOIN landed_accounts l
      ON mail.ascii_lower((migration.convert_value('text', r.original->'email')).value #>> '{}')
           = mail.ascii_lower(l.email)
      OR (migration.convert_value('text', r.original->'token')).value #>> '{}' = l.token
    WHERE r.source_table = 'accounts'
    UNION
    SELECT 'sessions', migration.source_key_of('sessions', x.id)
    FROM batch_accounts b JOIN mail.sessions x ON x.account_id = b.id
    UNION
    SELECT 'sessions', r.source_key
    FROM migration.rejects r JOIN batch_accounts b ON r.original->'account_id'->>'v' = b.id::text
    WHERE r.source_table = 'sessions' AND r.sqlstate = '23503'
  )
  SELECT w.source_table, w.source_key FROM wanted w
  WHERE NOT EXISTS (SELECT 1 FROM staging.sync_keys k
                    WHERE k.source_table = w.source_table AND k.source_key = w.source_key)
  ORDER BY 1, 2
$$;

COMMENT ON FUNCTION migration.sync_pull_keys() IS
  'Keys a sync batch must also apply: unique conflicts outside the batch, the sessions of its accounts.';
