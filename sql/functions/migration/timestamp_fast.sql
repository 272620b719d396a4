SET LOCAL ROLE mail_owner;

-- The common legacy form ('YYYY-MM-DD HH:MM:SS', also with T, fraction, Z), 1970..2099,
-- as an instant; NULL for anything else. An inlinable SQL expression, fast enough for
-- set-based use: the plpgsql timestamp_from_text costs a few hundred microseconds a call.
-- A date the regex admits but the calendar does not (02-30) raises: the merge then takes
-- that chunk row by row, where timestamp_from_text decides.
CREATE OR REPLACE FUNCTION migration.timestamp_fast(p_text text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN p_text ~ '^(19[7-9][0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[ T]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?Z?$'
    THEN (rtrim(p_text, 'Z') || '+00')::timestamptz
  END
$$;

COMMENT ON FUNCTION migration.timestamp_fast(text) IS
  'The app''s common timestamp form as an instant, inlinable for the set-based merge; NULL otherwise.';
