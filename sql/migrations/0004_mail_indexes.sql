-- The seed's indexes, on the parent: each cascades to every partition, present and future.
SET LOCAL ROLE mail_owner;

CREATE INDEX emails_to_address_idx ON mail.emails (to_address);
CREATE INDEX emails_from_address_idx ON mail.emails (from_address);
CREATE INDEX emails_created_at_idx ON mail.emails (created_at);
CREATE INDEX emails_starred_idx ON mail.emails (to_address, created_at) WHERE starred;
CREATE INDEX emails_search_vector_idx ON mail.emails USING gin (search_vector);
