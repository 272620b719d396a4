-- Full-text search, optionally within one inbox, best first
SELECT id, message_id, from_address, to_address, subject, created_at, rank
FROM mail.search_emails(%(query)s, %(address)s, %(limit)s)
