-- analyze_emails: statistics of mail.emails after the load (on its own connection: ANALYZE is single-threaded)
ANALYZE mail.emails
