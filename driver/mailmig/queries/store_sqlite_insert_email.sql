-- Store one email in emails.db unless its message_id is stored already (the legacy ON CONFLICT DO NOTHING): the new id, or no row
INSERT INTO emails (message_id, from_address, to_address, subject, body, html, headers, raw_email,
                    size, starred, is_read, spam_score, created_at)
VALUES (:message_id, :from_address, :to_address, :subject, :body, :html, :headers, :raw_email,
        :size, :starred, :is_read, :spam_score, :created_at)
ON CONFLICT (message_id) DO NOTHING
RETURNING id
