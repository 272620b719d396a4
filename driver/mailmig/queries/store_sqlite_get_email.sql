-- One email by id
SELECT id, message_id, from_address, to_address, subject, body, html, headers, raw_email,
       size, starred, is_read, spam_score, created_at
FROM emails
WHERE id = :id
