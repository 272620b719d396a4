-- reverse_legacy_accounts: the current mail.accounts rows of these ids in the legacy forms of auth.db
SELECT * FROM migration.legacy_account_rows(%(keys)s::bigint[])
