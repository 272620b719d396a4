-- Index a new email in the FTS5 table beside emails (external content, content_rowid=id): the values stored, nothing else
INSERT INTO emails_fts (rowid, subject, body) VALUES (:id, :subject, :body)
