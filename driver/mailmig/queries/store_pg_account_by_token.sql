-- The account holding an API token
SELECT * FROM mail.find_account_by_token(%(token)s)
