-- validate_key_range: the smallest and largest id of mail.emails (to split the digest between connections)
SELECT min(id), max(id) FROM mail.emails
