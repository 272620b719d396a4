SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.guard_after_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_added   bigint;
  v_claimed bigint;
  v_message_id text;
  v_email_id   bigint;
BEGIN
  /* Move guard entries when an UPDATE changes message_id or id (swaps included). */
  -- Fast exit for the common case (flags, no key change): nothing to do.
  IF NOT EXISTS (SELECT n.message_id, n.id FROM new_rows n
                 EXCEPT ALL SELECT o.message_id, o.id FROM old_rows o) THEN
    RETURN NULL;
  END IF;
  DELETE FROM mail.message_id_guard g
  USING (SELECT o.message_id, o.id FROM old_rows o
         EXCEPT ALL SELECT n.message_id, n.id FROM new_rows n) gone
  WHERE g.message_id = gone.message_id AND g.email_id = gone.id;

  WITH added AS (SELECT n.message_id, n.id FROM new_rows n
                 EXCEPT ALL SELECT o.message_id, o.id FROM old_rows o)
  SELECT count(*) INTO v_added FROM added;
  INSERT INTO mail.message_id_guard (message_id, email_id)
  SELECT a.message_id, a.id
  FROM (SELECT n.message_id, n.id FROM new_rows n
        EXCEPT ALL SELECT o.message_id, o.id FROM old_rows o) a
  ON CONFLICT (message_id) DO NOTHING;
  GET DIAGNOSTICS v_claimed = ROW_COUNT;
  IF v_claimed = v_added THEN
    RETURN NULL;
  END IF;
  SELECT n.message_id, g.email_id INTO v_message_id, v_email_id
  FROM new_rows n
  LEFT JOIN mail.message_id_guard g ON g.message_id = n.message_id
  WHERE g.email_id IS DISTINCT FROM n.id
     OR EXISTS (SELECT 1 FROM mail.emails e
                WHERE e.id = n.id AND e.message_id = n.message_id AND e.created_at <> n.created_at)
  LIMIT 1;
  PERFORM mail.raise_duplicate_message_id(coalesce(v_message_id, '?'), v_email_id);
  RETURN NULL;
END
$$;

COMMENT ON FUNCTION mail.guard_after_update() IS
  'Statement trigger: moves guard entries when an UPDATE changes message_id or id.';
