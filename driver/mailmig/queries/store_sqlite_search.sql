-- Full-text search through the FTS5 index, optionally within one inbox: best bm25 first (lower is better), newest first on ties
SELECT e.id, e.message_id, e.from_address, e.to_address, e.subject, e.created_at,
       -bm25(emails_fts) AS rank
FROM emails_fts
JOIN emails e ON e.id = emails_fts.rowid
WHERE emails_fts MATCH :query
  AND (:address IS NULL OR e.to_address = :address)
ORDER BY bm25(emails_fts), e.created_at DESC, e.id DESC
LIMIT :limit
