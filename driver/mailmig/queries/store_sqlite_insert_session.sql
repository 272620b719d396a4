-- Create one session of an account
INSERT INTO sessions (id, account_id, created_at, expires_at, ip, user_agent)
VALUES (:id, :account_id, :created_at, :expires_at, :ip, :user_agent)
