-- The newest emails of one inbox, newest first (ties: higher id first)
SELECT id, message_id, from_address, to_address, subject, body, html, headers, raw_email,
       size, starred, is_read, spam_score, created_at
FROM emails
WHERE to_address = :address
ORDER BY created_at DESC, id DESC
LIMIT :limit
