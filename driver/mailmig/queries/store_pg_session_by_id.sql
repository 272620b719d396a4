-- One session by its id
SELECT * FROM mail.find_session(%(id)s)
