-- The live sync's bookkeeping (issue 12, docs/contracts.md "The sync"): where each
-- source file's changelog has been applied up to, the heartbeat of the running sync,
-- each applied batch and the keys it applied, and the landing list of a batch's keys.
SET LOCAL ROLE mail_owner;

-- Per source file: the last changelog seq whose change is in mail.* (set first by a load
-- whose snapshot held the capture, then advanced by each sync batch in the transaction
-- that applies it), and the capture install that seq belongs to. The sync prunes the
-- changelog below seq, never seq itself: that row stays as an anchor, and seq_at (its
-- `at`) tells a file restored from an older copy (where the row is missing or another
-- change took its seq) from the file the position was taken in.
CREATE TABLE migration.sync_position (
  source     text PRIMARY KEY CHECK (source IN ('emails_db', 'auth_db')),
  install_id text NOT NULL,
  seq        bigint NOT NULL CHECK (seq >= 0),
  seq_at     double precision,          -- `at` of changelog row seq; NULL: no such row to anchor on
  path       text NOT NULL,
  set_by     text NOT NULL,           -- the run (load or sync) that set it last
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Per source file: what the sync saw at its last read and when (the lag and liveness the
-- cut-over checks; one row, overwritten).
CREATE TABLE migration.sync_heartbeat (
  source              text PRIMARY KEY,
  run_id              text NOT NULL,
  pid                 int,
  following           boolean NOT NULL,
  beat_at             timestamptz NOT NULL,
  applied_seq         bigint NOT NULL,  -- the position after that read's batch
  source_seq          bigint NOT NULL,  -- the newest change in the file at that read
  oldest_unapplied_at timestamptz,      -- the oldest change past applied_seq; NULL: none
  rows_per_s          double precision  -- changes applied per second lately
);

-- One row per applied batch (one PostgreSQL transaction). batch_id grows in commit
-- order: only one sync applies at a time (advisory lock).
CREATE TABLE migration.sync_batches (
  batch_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id       text NOT NULL,
  source       text NOT NULL,
  install_id   text NOT NULL,
  from_seq     bigint NOT NULL,         -- exclusive
  to_seq       bigint NOT NULL,         -- inclusive
  changes      int NOT NULL,            -- changelog rows
  keys         int NOT NULL,            -- distinct keys applied (pulled-in keys included)
  pulled       int NOT NULL DEFAULT 0,  -- keys not in the changelog, pulled in by a unique
                                        -- conflict or a cascade (docs/contracts.md)
  loaded       int NOT NULL DEFAULT 0,
  repaired     int NOT NULL DEFAULT 0,
  rejected     int NOT NULL DEFAULT 0,
  deleted      int NOT NULL DEFAULT 0,
  committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Every key a batch applied, with where it ended (the cut-over validates the keys
-- changed since its last full validation: migration.sync_keys_since).
CREATE TABLE migration.sync_applied_keys (
  batch_id     bigint NOT NULL REFERENCES migration.sync_batches ON DELETE CASCADE,
  source_table text NOT NULL,
  source_key   text NOT NULL,
  outcome      text NOT NULL CHECK (outcome IN ('loaded', 'repaired', 'rejected', 'deleted')),
  PRIMARY KEY (batch_id, source_table, source_key)
);

-- The applied-keys history is pruned (migration.sync_prune_history); asking for keys
-- since a batch older than this horizon is refused rather than answered in part.
CREATE TABLE migration.sync_history_horizon (
  one            boolean PRIMARY KEY DEFAULT true CHECK (one),
  pruned_through bigint NOT NULL       -- batches up to this id are gone
);

-- The keys of the batch being applied (the sync lands their rows in staging.<table> and
-- staging.hostile like a load, then merges them). present: the source has the row.
CREATE UNLOGGED TABLE staging.sync_keys (
  source_table text NOT NULL,
  source_key   text NOT NULL,
  present      boolean NOT NULL,
  pulled       boolean NOT NULL DEFAULT false,
  PRIMARY KEY (source_table, source_key)
);
ALTER TABLE staging.sync_keys SET (autovacuum_enabled = false);
