SET LOCAL ROLE mail_owner;

-- Has the sync applied every change of p_source up to p_seq? (The cut-over, after the
-- write pause: p_seq is the file's last changelog seq; it waits until this is true.)
CREATE OR REPLACE FUNCTION migration.sync_caught_up(p_source text, p_seq bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT coalesce((SELECT seq >= p_seq FROM migration.sync_position WHERE source = p_source), false)
$$;

COMMENT ON FUNCTION migration.sync_caught_up(text, bigint) IS
  'Has the sync applied every change of the source file up to this changelog seq?';
