-- validate_emails_canonical: mail.emails rows with id in [lo, hi), each column in validate's canonical form
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
WHERE id >= %(lo)s AND id < %(hi)s
