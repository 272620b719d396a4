SET LOCAL ROLE mail_owner;

-- The common legacy form ('YYYY-MM-DD HH:MM:SS', also with T, fraction, Z), 1970..2099,
-- as an instant; NULL for anything else. An inlinable SQL expression, fast enough for
-- set-based use: the plpgsql timestamp_from_text costs a few hundred microseconds a call.
-- It never raises: the regex admits days 29-31 of any month, so those are checked against
-- the calendar (Feb 29 only when the year is divisible by 4, which within 1970..2099 is
-- exactly the leap years) before the cast, inside the same CASE branch, whose conditions
-- PostgreSQL evaluates in order. Days 01-28 (nearly every value) take the first test.
CREATE OR REPLACE FUNCTION migration.timestamp_fast(p_text text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN p_text ~ '^(19[7-9][0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[ T]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?Z?$'
     AND (substr(p_text, 9, 2) <= '28'
          OR substr(p_text, 6, 5) NOT IN ('02-29', '02-30', '02-31', '04-31', '06-31', '09-31', '11-31')
          OR (substr(p_text, 6, 5) = '02-29'
              AND substr(p_text, 3, 2) IN ('00', '04', '08', '12', '16', '20', '24', '28', '32', '36', '40', '44',
                                           '48', '52', '56', '60', '64', '68', '72', '76', '80', '84', '88', '92', '96')))
    THEN (rtrim(p_text, 'Z') || '+00')::timestamptz
  END
$$;

COMMENT ON FUNCTION migration.timestamp_fast(text) IS
  'The app''s common timestamp form as an instant, inlinable for the set-based merge; NULL otherwise.';
