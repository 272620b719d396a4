-- Create an account: its id (23505 for a taken address or token)
SELECT mail.create_account(%(email)s, %(token)s, %(expires_at)s, %(password_hash)s, %(created_at)s, %(id)s)
