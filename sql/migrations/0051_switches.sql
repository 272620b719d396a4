-- Cut-overs and rollbacks: one row per attempt with its outcome, the measured write
-- pause and the whole report (also written to runs/<run id>/).
SET LOCAL ROLE mail_owner;

CREATE TABLE migration.switches (
  run_id        text PRIMARY KEY,
  kind          text NOT NULL CHECK (kind IN ('cutover', 'rollback')),
  started_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz,
  -- running | switched | aborted (writes resumed on the old store, nothing changed)
  -- | refused (a pre-check failed, writes never paused) | nothing_to_do (already there)
  outcome       text NOT NULL DEFAULT 'running',
  from_mode     text,
  to_mode       text,
  write_pause_s double precision,   -- first held write to last released (the service's measure)
  paused_s      double precision,   -- pause call to resume, whether or not a write came
  reason        text,               -- why it was refused or aborted
  report        jsonb
);
CREATE INDEX switches_started_at_idx ON migration.switches (started_at);
