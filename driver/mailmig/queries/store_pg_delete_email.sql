-- Delete one email: false when there is no such email
SELECT mail.delete_email(%(id)s)
