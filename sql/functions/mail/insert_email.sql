SET LOCAL ROLE mail_owner;

-- p_id was added for dual mode (SQLite assigns the id, PostgreSQL stores the same one).
DROP FUNCTION IF EXISTS mail.insert_email(text, text, text, text, text, text, jsonb, text, bigint,
                                          timestamptz, boolean, boolean, double precision);

CREATE OR REPLACE FUNCTION mail.insert_email(
  p_message_id   text,
  p_from_address text,
  p_to_address   text,
  p_subject      text,
  p_body         text,
  p_html         text,
  p_headers      jsonb,
  p_raw_email    text,
  p_size         bigint,
  p_created_at   timestamptz DEFAULT now(),
  p_starred      boolean DEFAULT false,
  p_is_read      boolean DEFAULT false,
  p_spam_score   double precision DEFAULT 0,
  p_id           bigint DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_id bigint := coalesce(p_id, nextval('mail.emails_id_seq'));
BEGIN
  /* Store one email; its id, or NULL when the message_id is already stored.
     created_at is kept at whole seconds, the resolution of the legacy files, so that
     both stores hold the same instant. */
  INSERT INTO mail.message_id_guard (message_id, email_id)
  VALUES (p_message_id, v_id)
  ON CONFLICT (message_id) DO NOTHING;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  -- The guard trigger sees the entry is this row's own claim.
  INSERT INTO mail.emails (id, message_id, from_address, to_address, subject, body, html,
                           headers, raw_email, size, starred, is_read, spam_score, created_at)
  VALUES (v_id, p_message_id, p_from_address, p_to_address, p_subject, p_body, p_html,
          p_headers, p_raw_email, p_size, p_starred, p_is_read, p_spam_score,
          date_trunc('second', p_created_at));
  RETURN v_id;
END
$$;

COMMENT ON FUNCTION mail.insert_email(text, text, text, text, text, text, jsonb, text, bigint, timestamptz, boolean, boolean, double precision, bigint) IS
  'The application''s insert: the id (p_id, or a new one), or NULL when the message_id is already stored; created_at at whole seconds.';
GRANT EXECUTE ON FUNCTION mail.insert_email(text, text, text, text, text, text, jsonb, text, bigint, timestamptz, boolean, boolean, double precision, bigint) TO mail_app;
