-- What the application and read-only roles may do in mail. No DDL for either: they
-- own nothing and have no CREATE on any schema. Partitions are not granted: rows are
-- reached through mail.emails. Functions are granted beside their definitions
-- (sql/functions/).
-- Secrets (accounts.password_hash, accounts.token, sessions.id) are readable by the
-- owner and mail_app only: mail_readonly gets column-level SELECT on the rest.
GRANT SELECT, INSERT, UPDATE, DELETE ON mail.emails, mail.accounts, mail.sessions TO mail_app;
GRANT USAGE, SELECT ON SEQUENCE mail.emails_id_seq, mail.accounts_id_seq TO mail_app;
-- The guard is written by the triggers and mail.insert_email (as mail_owner) only.
GRANT SELECT ON mail.message_id_guard TO mail_app, mail_readonly;

GRANT SELECT ON mail.emails TO mail_readonly;
GRANT SELECT (id, email, created_at, expires_at, last_login_at, is_active) ON mail.accounts TO mail_readonly;
GRANT SELECT (account_id, created_at, expires_at, ip, user_agent) ON mail.sessions TO mail_readonly;
