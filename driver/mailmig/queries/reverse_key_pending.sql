-- reverse_key_pending: is a change of this key logged after the reverse sync's position (finished or not)?
SELECT EXISTS (SELECT 1 FROM migration.reverse_changelog
               WHERE source_table = %(table)s AND source_key = %(key)s
                 AND (xid, seq) > (%(xid)s::text::xid8, %(seq)s))
