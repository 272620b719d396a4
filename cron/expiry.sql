-- job: mailmig-expiry
-- schedule: maintenance.expiry_schedule
-- database: target
-- Expired sessions are deleted; accounts past expires_at are deactivated, and
-- deleted maintenance.account_grace later (their sessions with them).
SELECT * FROM mail.expire_sessions(), mail.expire_accounts({account_grace}::interval)
