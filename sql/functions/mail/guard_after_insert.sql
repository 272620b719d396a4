SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.guard_after_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_rows    bigint;
  v_claimed bigint;
  v_message_id text;
  v_email_id   bigint;
BEGIN
  /* Claim the guard entry of every inserted row; refuse the statement on a duplicate. */
  INSERT INTO mail.message_id_guard (message_id, email_id)
  SELECT n.message_id, n.id FROM new_rows n
  ON CONFLICT (message_id) DO NOTHING;
  GET DIAGNOSTICS v_claimed = ROW_COUNT;
  SELECT count(*) INTO v_rows FROM new_rows;
  IF v_claimed = v_rows THEN
    RETURN NULL;  -- every row claimed its own, distinct message_id
  END IF;
  -- Some entries existed: an unclaimed row is fine only when the entry is its own
  -- (mail.insert_email claims first) and no other email shares both its id and
  -- message_id (the same id in another month). A duplicate within the statement
  -- fails the first test for one of the two rows.
  SELECT n.message_id, g.email_id INTO v_message_id, v_email_id
  FROM new_rows n
  LEFT JOIN mail.message_id_guard g ON g.message_id = n.message_id
  WHERE g.email_id IS DISTINCT FROM n.id
     OR EXISTS (SELECT 1 FROM mail.emails e
                WHERE e.id = n.id AND e.message_id = n.message_id AND e.created_at <> n.created_at)
  LIMIT 1;
  IF FOUND THEN
    PERFORM mail.raise_duplicate_message_id(v_message_id, v_email_id);
  END IF;
  RETURN NULL;
END
$$;

COMMENT ON FUNCTION mail.guard_after_insert() IS
  'Statement trigger: claims the message_id guard entry of every inserted email, refusing duplicates.';
