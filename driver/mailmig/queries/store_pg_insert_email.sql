-- Store one email through mail.insert_email: its id, or NULL when the message_id is stored already
SELECT mail.insert_email(%(message_id)s, %(from_address)s, %(to_address)s, %(subject)s, %(body)s, %(html)s,
                         %(headers)s, %(raw_email)s, %(size)s, %(created_at)s, %(starred)s, %(is_read)s,
                         %(spam_score)s, %(id)s)
