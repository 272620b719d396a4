-- analyze_accounts_sessions: statistics of mail.accounts and mail.sessions after the load
ANALYZE mail.accounts, mail.sessions
