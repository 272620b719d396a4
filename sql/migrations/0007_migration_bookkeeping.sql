-- migration: the bookkeeping of loads: runs, repairs (original kept), rejects (row kept).
SET LOCAL ROLE mail_owner;

CREATE TABLE migration.runs (
  run_id      text PRIMARY KEY,
  kind        text NOT NULL,
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  status      text NOT NULL DEFAULT 'running',
  report      jsonb
);

-- One row per repaired column of a loaded row: the rule applied, the source value
-- whole (typed JSON, contracts) and the value written.
CREATE TABLE migration.repairs (
  run_id       text NOT NULL,
  source_table text NOT NULL,
  source_key   text NOT NULL,
  column_name  text NOT NULL,
  rule         text NOT NULL,
  original     jsonb NOT NULL,
  repaired     text,
  PRIMARY KEY (source_table, source_key, column_name)
);

-- One row per source row that was not loaded, kept whole, with the reason.
CREATE TABLE migration.rejects (
  run_id       text NOT NULL,
  source_table text NOT NULL,
  source_key   text NOT NULL,
  reason       text NOT NULL,
  sqlstate     text NOT NULL,
  original     jsonb NOT NULL,
  rejected_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source_table, source_key)
);

-- Which kind of conversion each source column takes; the merge and its report read it.
-- Its rows are config/mapping.yaml's: `mailmig schema apply` (re)writes them.
CREATE TABLE migration.column_map (
  source_table text NOT NULL,
  position     int  NOT NULL,
  column_name  text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('int', 'text', 'flag', 'float', 'json',
                                             'timestamp', 'timestamp_required')),
  PRIMARY KEY (source_table, column_name)
);

-- Counts a merge step returns.
CREATE TYPE migration.merge_counts AS (
  fast bigint, loaded bigint, repaired bigint, rejected bigint, present bigint, fallback boolean
);
