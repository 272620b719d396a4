SET LOCAL ROLE mail_owner;

-- The month partitions with their bounds, from the catalog (not from the names).
CREATE OR REPLACE FUNCTION mail.email_partitions()
RETURNS TABLE (partition regclass, lower_bound timestamptz, upper_bound timestamptz)
LANGUAGE sql STABLE
AS $$
  SELECT c.oid::regclass,
         (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
         (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = 'mail.emails'::regclass
    AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
  ORDER BY 2
$$;

COMMENT ON FUNCTION mail.email_partitions() IS
  'The month partitions of mail.emails with their bounds, from the catalog.';
