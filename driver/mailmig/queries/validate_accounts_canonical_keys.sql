-- validate_accounts_canonical_keys: mail.accounts rows with these keys, each column in validate's canonical form (the select list of validate_accounts_canonical)
SELECT id >> 10 AS bucket,
       id::text AS id,
       email,
       password_hash,
       token,
       to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at,
       to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS expires_at,
       to_char(last_login_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS last_login_at,
       CASE is_active WHEN true THEN 't' WHEN false THEN 'f' END AS is_active
FROM mail.accounts
WHERE id = ANY(%(keys)s::bigint[])
