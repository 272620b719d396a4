-- reverse_sqlite_account_by_email_or_token: (SQLite) other accounts holding this address (NOCASE) or token
SELECT id FROM accounts WHERE (email = ? COLLATE NOCASE OR token = ?) AND id IS NOT ?
