-- Create one account in auth.db: the new id (a taken address fails on the NOCASE unique index)
INSERT INTO accounts (email, password_hash, token, created_at, expires_at, is_active)
VALUES (:email, :password_hash, :token, :created_at, :expires_at, 1)
RETURNING id
