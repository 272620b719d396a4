-- An email id is unique across all partitions too: PRIMARY KEY (id, created_at) alone
-- would let the same id live in two months (a legacy row changed since the last load,
-- loaded again with another created_at). The guard holds one entry per email, so a
-- unique index on its email_id makes the database refuse that, whatever the write path.
SET LOCAL ROLE mail_owner;

CREATE UNIQUE INDEX message_id_guard_email_id_key ON mail.message_id_guard (email_id);
