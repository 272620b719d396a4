-- validate_emails_canonical_keys: mail.emails rows with these keys, each column in validate's canonical form (the select list of validate_emails_canonical)
SELECT id >> 10 AS bucket,
       id::text AS id,
       message_id,
       from_address,
       to_address,
       subject,
       body,
       html,
       headers::text AS headers,
       raw_email,
       size::text AS size,
       CASE starred WHEN true THEN 't' WHEN false THEN 'f' END AS starred,
       CASE is_read WHEN true THEN 't' WHEN false THEN 'f' END AS is_read,
       encode(float8send(spam_score), 'hex') AS spam_score,
       to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at
FROM mail.emails
WHERE id = ANY(%(keys)s::bigint[])
