-- Remove from the FTS5 index every email created before the cutoff (the legacy retention), with the row's own values so they are exact
INSERT INTO emails_fts (emails_fts, rowid, subject, body)
SELECT 'delete', id, subject, body FROM emails WHERE created_at < :cutoff
