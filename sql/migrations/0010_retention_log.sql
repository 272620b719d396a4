-- Retention drops a month in steps, each its own transaction (mail.drop_expired_partitions):
-- detach under a short lock of the parent, release the month's message_id guard entries in
-- batches, drop the detached table. This log is what makes the steps resumable after a
-- crash (a detached month not yet dropped is finished by the next run) and says what went.
SET LOCAL ROLE mail_owner;

CREATE TABLE mail.retention_log (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  partition       text NOT NULL,         -- the month's partition as it was named (mail.emails_pYYYYMM)
  detached_as     text NOT NULL,         -- the table it became, until dropped
  lower_bound     timestamptz NOT NULL,
  upper_bound     timestamptz NOT NULL,
  row_count       bigint,                -- its rows, counted after the detach
  guard_released  bigint NOT NULL DEFAULT 0,
  detach_attempts int NOT NULL,          -- tries to get the parent's lock within the bound
  detached_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  dropped_at      timestamptz
);

COMMENT ON TABLE mail.retention_log IS
  'Each month retention detached and dropped (mail.drop_expired_partitions), with its rows; dropped_at NULL = not finished yet.';
