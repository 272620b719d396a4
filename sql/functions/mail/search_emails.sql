SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.search_emails(p_query text, p_to_address text DEFAULT NULL, p_limit int DEFAULT 50)
RETURNS TABLE (id bigint, message_id text, from_address text, to_address text, subject text,
               created_at timestamptz, rank real)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  -- websearch_to_tsquery takes what people type ("quoted phrases", -not, or) and
  -- never fails on syntax; 'simple' matches how mail.email_search_vector indexed.
  SELECT e.id, e.message_id, e.from_address, e.to_address, e.subject, e.created_at,
         ts_rank(e.search_vector, q.query) AS rank
  FROM mail.emails e,
       websearch_to_tsquery('simple'::regconfig, p_query) AS q(query)
  WHERE e.search_vector @@ q.query
    AND (p_to_address IS NULL OR e.to_address = p_to_address)
  ORDER BY rank DESC, e.created_at DESC
  LIMIT p_limit
$$;

COMMENT ON FUNCTION mail.search_emails(text, text, int) IS
  'Full-text search of mail (websearch syntax, simple configuration), ranked, newest first on ties.';
GRANT EXECUTE ON FUNCTION mail.search_emails(text, text, int) TO mail_app, mail_readonly;
