-- validate_sessions_canonical_keys: mail.sessions rows with these keys, each column in validate's canonical form (the select list of validate_sessions_canonical)
SELECT ('x' || substr(md5(id), 1, 3))::bit(12)::int AS bucket,
       id,
       account_id::text AS account_id,
       to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at,
       to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS expires_at,
       ip,
       user_agent
FROM mail.sessions
WHERE id = ANY(%(keys)s::text[])
