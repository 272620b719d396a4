SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.inbox_emails(p_to_address text, p_limit int DEFAULT 50)
RETURNS TABLE (id bigint, message_id text, from_address text, to_address text, subject text,
               body text, html text, headers jsonb, raw_email text, size bigint, starred boolean,
               is_read boolean, spam_score double precision, created_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  /* The newest p_limit emails of one inbox, newest first (ties: higher id first),
     read through emails_inbox_idx. */
  SELECT e.id, e.message_id, e.from_address, e.to_address, e.subject, e.body, e.html, e.headers,
         e.raw_email, e.size, e.starred, e.is_read, e.spam_score, e.created_at
  FROM mail.emails e
  WHERE e.to_address = p_to_address
  ORDER BY e.created_at DESC, e.id DESC
  LIMIT p_limit
$$;

COMMENT ON FUNCTION mail.inbox_emails(text, int) IS
  'The newest emails of one inbox (the JSON API''s listing), newest first.';
GRANT EXECUTE ON FUNCTION mail.inbox_emails(text, int) TO mail_app, mail_readonly;
