SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.get_email(p_id bigint)
RETURNS TABLE (id bigint, message_id text, from_address text, to_address text, subject text,
               body text, html text, headers jsonb, raw_email text, size bigint, starred boolean,
               is_read boolean, spam_score double precision, created_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  /* One email by id (no row when there is none). The id is unique across partitions. */
  SELECT e.id, e.message_id, e.from_address, e.to_address, e.subject, e.body, e.html, e.headers,
         e.raw_email, e.size, e.starred, e.is_read, e.spam_score, e.created_at
  FROM mail.emails e
  WHERE e.id = p_id
$$;

COMMENT ON FUNCTION mail.get_email(bigint) IS 'One email by id.';
GRANT EXECUTE ON FUNCTION mail.get_email(bigint) TO mail_app, mail_readonly;
