-- reverse_key_rejected: why the load rejected this source row, if it did
SELECT reason FROM migration.rejects WHERE source_table = %(table)s AND source_key = %(key)s
