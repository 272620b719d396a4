-- Whether emails.db holds the FTS5 index the legacy app keeps beside emails
SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'emails_fts'
