-- Star or unstar one email: false when there is no such email
SELECT mail.set_email_starred(%(id)s, %(flag)s)
