-- The newest emails of one inbox, newest first
SELECT * FROM mail.inbox_emails(%(address)s, %(limit)s)
