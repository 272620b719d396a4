-- Store a batch of emails in one round trip: per item (1-based position), the id or NULL for a stored message_id
SELECT item, id FROM mail.insert_emails(%(emails)s::json)
