-- Reverse capture: every change made to mail.* while PostgreSQL is the active store is
-- recorded (keys only) so that `mailmig sync --reverse` can carry it back into the
-- SQLite files, and a rollback keeps every email received after the cut-over.
-- The triggers are attached by migration.reverse_capture_install() (not here): a
-- database that never cuts over carries no trigger cost.
SET LOCAL ROLE mail_owner;

-- One row per changed key, in the writer's own transaction. Identity values commit out
-- of order (FIELD-NOTES), so readers order by (xid, seq) and read only rows whose
-- transaction is below pg_snapshot_xmin(pg_current_snapshot()): no transaction that
-- can still commit is older than that, so nothing can appear behind a reader's position.
CREATE TABLE migration.reverse_changelog (
  seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  xid          xid8 NOT NULL DEFAULT pg_current_xact_id(),
  source_table text NOT NULL CHECK (source_table IN ('emails', 'accounts', 'sessions')),
  source_key   text NOT NULL,   -- the key as text (contracts: source_key)
  op           text NOT NULL CHECK (op IN ('I', 'U', 'D')),
  at           timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX reverse_changelog_xid_seq_idx ON migration.reverse_changelog (xid, seq);
-- Written at the application's rate and pruned behind the reader: vacuum it often.
ALTER TABLE migration.reverse_changelog SET (autovacuum_vacuum_scale_factor = 0.01,
                                             autovacuum_vacuum_threshold = 1000);

-- The current install: a new id at every fresh install. The reverse sync keeps the id
-- it started from and refuses another one (changes made while capture was off are lost).
CREATE TABLE migration.reverse_capture (
  only_row     boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  install_id   text NOT NULL,
  installed_at timestamptz NOT NULL DEFAULT now()
);

-- Where the reverse sync is: every changelog row at or before (after_xid, after_seq) in
-- (xid, seq) order is in the SQLite files. Set by the cut-over (start: the moment of
-- the switch), advanced by `mailmig sync --reverse` after each SQLite commit.
CREATE TABLE migration.reverse_sync_position (
  only_row        boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  install_id      text NOT NULL,
  after_xid       xid8 NOT NULL,
  after_seq       bigint NOT NULL,
  started_at      timestamptz NOT NULL DEFAULT now(),
  applied_changes bigint NOT NULL DEFAULT 0,   -- changelog rows carried since started_at
  applied_keys    bigint NOT NULL DEFAULT 0,   -- net per-key states written to SQLite
  updated_at      timestamptz NOT NULL DEFAULT now(),
  heartbeat_at    timestamptz,                 -- the last pass of a running reverse sync
  lag_seconds     double precision             -- age of the oldest unapplied change then
);
