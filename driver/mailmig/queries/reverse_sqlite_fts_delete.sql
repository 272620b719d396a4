-- reverse_sqlite_fts_delete: (SQLite) remove one email's indexed subject and body from emails_fts, read byte-exact from the row
INSERT INTO emails_fts (emails_fts, rowid, subject, body) SELECT 'delete', id, subject, body FROM emails WHERE id = ?
