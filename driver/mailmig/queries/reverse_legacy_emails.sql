-- reverse_legacy_emails: the current mail.emails rows of these ids in the legacy forms of emails.db
SELECT * FROM migration.legacy_email_rows(%(keys)s::bigint[])
