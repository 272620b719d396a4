SET LOCAL ROLE mail_owner;

CREATE OR REPLACE FUNCTION mail.ids_past(p_emails bigint DEFAULT 0, p_accounts bigint DEFAULT 0)
RETURNS TABLE (sequence_name text, was bigint, now_at bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_seq text;
  v_table text;
  v_floor bigint;
  v_target bigint;
BEGIN
  /* Before PostgreSQL hands out ids (the store entering postgres mode): each id sequence
     past the largest id its table holds and past a floor (the largest id SQLite ever
     assigned). Dual mode stores SQLite's ids with nextval never called, and an operator
     may restart the service from dual (or sqlite) straight into postgres mode without a
     cut-over: without this, nextval would give an id a stored email already has (the
     key is (id, created_at), so nothing would refuse the second). Only ever moves a
     sequence forward, and only when it is behind; the cut-over does the same under its
     write pause. */
  FOREACH v_seq IN ARRAY ARRAY['mail.emails_id_seq', 'mail.accounts_id_seq'] LOOP
    v_table := CASE v_seq WHEN 'mail.emails_id_seq' THEN 'mail.emails' ELSE 'mail.accounts' END;
    v_floor := coalesce(CASE v_seq WHEN 'mail.emails_id_seq' THEN p_emails ELSE p_accounts END, 0);
    EXECUTE format('SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM %s', v_seq) INTO was;
    EXECUTE format('SELECT greatest(coalesce(max(id), 0), $1) FROM %s', v_table) INTO v_target USING v_floor;
    sequence_name := v_seq;
    now_at := was;
    IF v_target > was THEN
      now_at := setval(v_seq::regclass, v_target, true);
    END IF;
    RETURN NEXT;
  END LOOP;
END;
$$;

COMMENT ON FUNCTION mail.ids_past(bigint, bigint) IS
  'Each id sequence past its table''s largest id and a floor (SQLite''s largest assigned id); moves forward only. Per sequence: the last id handed out before, and after.';
REVOKE ALL ON FUNCTION mail.ids_past(bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mail.ids_past(bigint, bigint) TO mail_app;
