-- One session by its id
SELECT id, account_id, created_at, expires_at, ip, user_agent
FROM sessions
WHERE id = :id
