SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.insert_emails(p_emails json)
RETURNS TABLE (item int, id bigint)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
  /* Store a batch of emails in one call (one round trip, one statement, all or none):
     a JSON array of objects with mail.insert_email's fields without the p_
     (message_id, from_address, to_address, subject, body, html, headers, raw_email,
     size, created_at, starred, is_read, spam_score; id to keep a given id). Per
     element, its 1-based position (item) and its id, or NULL when its message_id was stored
     already (by an earlier element of the same batch too). Set-based: the guard
     entries are claimed in one INSERT, the emails written in another. The input is
     materialized once (nextval is volatile), so each element keeps one id. */
  WITH input AS MATERIALIZED (
    SELECT x.ordinality::int AS item, coalesce(x.id, nextval('mail.emails_id_seq')) AS id,
           x.message_id, x.from_address, x.to_address, x.subject, x.body, x.html, x.headers,
           x.raw_email, x.size, date_trunc('second', coalesce(x.created_at, now())) AS created_at,
           coalesce(x.starred, false) AS starred, coalesce(x.is_read, false) AS is_read,
           coalesce(x.spam_score, 0) AS spam_score
    FROM ROWS FROM (json_to_recordset(p_emails)
           AS (message_id text, from_address text, to_address text, subject text, body text, html text,
               headers jsonb, raw_email text, size bigint, created_at timestamptz, starred boolean,
               is_read boolean, spam_score double precision, id bigint)) WITH ORDINALITY
         AS x(message_id, from_address, to_address, subject, body, html, headers, raw_email, size,
              created_at, starred, is_read, spam_score, id, ordinality)
  ), claimed AS (
    -- the first element of each message_id claims it, if nobody holds it yet
    INSERT INTO mail.message_id_guard (message_id, email_id)
    SELECT DISTINCT ON (i.message_id) i.message_id, i.id
    FROM input i
    ORDER BY i.message_id, i.item
    ON CONFLICT (message_id) DO NOTHING
    RETURNING message_id, email_id
  ), stored AS (
    INSERT INTO mail.emails (id, message_id, from_address, to_address, subject, body, html, headers,
                             raw_email, size, starred, is_read, spam_score, created_at)
    SELECT i.id, i.message_id, i.from_address, i.to_address, i.subject, i.body, i.html, i.headers,
           i.raw_email, i.size, i.starred, i.is_read, i.spam_score, i.created_at
    FROM input i
    JOIN claimed c ON c.message_id = i.message_id AND c.email_id = i.id
    RETURNING id
  )
  SELECT i.item, s.id
  FROM input i
  LEFT JOIN stored s ON s.id = i.id
  ORDER BY i.item
$$;

COMMENT ON FUNCTION mail.insert_emails(json) IS
  'Batch insert of emails from a JSON array (mail.insert_email''s fields, optional id): per item (1-based position) the id, or NULL for a stored message_id.';
GRANT EXECUTE ON FUNCTION mail.insert_emails(json) TO mail_app;
