-- One email by id
SELECT * FROM mail.get_email(%(id)s)
