-- Create a session of an account: its id
SELECT mail.create_session(%(id)s, %(account_id)s, %(expires_at)s, %(ip)s, %(user_agent)s, %(created_at)s)
