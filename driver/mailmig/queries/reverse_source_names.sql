-- reverse_source_names: the source key name of each of these keys of mail.<table> (migration.source_key_of):
-- a row loaded under a repaired key (a BLOB or non-UTF-8 session id) is found in SQLite by its name
SELECT k, migration.source_key_of(%(table)s, k) FROM unnest(%(keys)s::text[]) AS k
