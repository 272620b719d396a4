-- Mark one email read or unread: false when there is no such email
SELECT mail.set_email_read(%(id)s, %(flag)s)
