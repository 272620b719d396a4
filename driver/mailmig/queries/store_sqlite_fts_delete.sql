-- Remove an email from the FTS5 index before its row goes: FTS5 needs the indexed values, taken from the row in SQL so they are exact
INSERT INTO emails_fts (emails_fts, rowid, subject, body)
SELECT 'delete', id, subject, body FROM emails WHERE id = :id
