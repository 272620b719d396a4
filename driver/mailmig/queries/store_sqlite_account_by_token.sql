-- The account holding an API token
SELECT id, email, token, password_hash, created_at, expires_at, last_login_at, is_active
FROM accounts
WHERE token = :token
