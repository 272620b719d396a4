-- The account of an address, ASCII case folded (the column is COLLATE NOCASE)
SELECT id, email, token, password_hash, created_at, expires_at, last_login_at, is_active
FROM accounts
WHERE email = :email
