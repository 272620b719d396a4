-- reverse_sqlite_email_by_message_id: (SQLite) other emails holding this message_id
SELECT id FROM emails WHERE message_id = ? AND id IS NOT ?
