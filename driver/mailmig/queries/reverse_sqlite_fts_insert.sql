-- reverse_sqlite_fts_insert: (SQLite) index one email's subject and body in emails_fts, read from the row
INSERT INTO emails_fts (rowid, subject, body) SELECT id, subject, body FROM emails WHERE id = ?
