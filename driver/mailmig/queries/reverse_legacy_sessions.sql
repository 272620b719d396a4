-- reverse_legacy_sessions: the current mail.sessions rows of these ids in the legacy forms of auth.db
SELECT * FROM migration.legacy_session_rows(%(keys)s::text[])
