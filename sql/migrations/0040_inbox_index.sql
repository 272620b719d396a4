-- The application's inbox listing (mail.inbox_emails: one address, newest first, a
-- limit) reads the newest rows of one address through this index and stops after
-- `limit` of them; the seed's index on to_address alone made it fetch and sort the
-- whole inbox. It replaces that index: its leading column serves every lookup by
-- to_address the old one served, and one index fewer is written per insert.
SET LOCAL ROLE mail_owner;

CREATE INDEX emails_inbox_idx ON mail.emails (to_address, created_at DESC, id DESC);
DROP INDEX mail.emails_to_address_idx;
