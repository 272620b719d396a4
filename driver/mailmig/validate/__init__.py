"""`mailmig validate`: prove that every row and every column of the load arrived.

Both sides are brought to one canonical form per column (the contracts' conversion
rules, implemented here independently of the merge: that is the point of a
cross-check) and compared in three steps:

1. gate: row counts per table (and per month of `created_at` for emails), where
   source rows = PostgreSQL rows + rejects;
2. digest: an md5 of each row's canonical values, summed per bucket (1024 ids, or
   4096 md5 buckets of the session id). PostgreSQL renders and hashes its rows
   server-side (only bucket sums cross the wire); the SQLite side streams its rows in
   Python. The two sides run at once;
3. drill-down: the rows of each differing bucket are fetched from both sides and
   each missing, extra and changed row is named, with each differing column.

Columns named in `migration.repairs` are compared through the recorded original
(which must equal the source value) and repaired value (which must equal the
PostgreSQL value); rows in `migration.rejects` are accounted for when their recorded
original equals the source row and the key is absent from PostgreSQL.

The modules, one capability each:
  rules        the canonical forms of SQLite values (the conversion rules, independently)
  jsonb        jsonb's canonical text, emulated
  tables       the compared tables, their columns and kinds, buckets
  differences  what was found, counted and kept
  bookkeeping  migration.repairs / migration.rejects checked against the source
  digest       bucket sums of both sides, at once
  drilldown    the rows of the differing buckets, compared column by column
  run          one validation (run_validate) and its report
  keys         the rows of a set of keys only (validate_keys: the cut-over's check)
  inflight     --source live while the sync follows: the rows changed after the sync
               position, reported apart from the differences
  command      `mailmig validate` and the summary it prints
"""

from mailmig.validate.command import add_commands, cmd_validate, summary_lines
from mailmig.validate.digest import row_digest
from mailmig.validate.jsonb import jsonb_text, pg_json_string, pg_numeric_text
from mailmig.validate.keys import validate_keys
from mailmig.validate.rules import (
    CANONICALIZERS,
    Reject,
    Repair,
    canon_flag,
    canon_float,
    canon_int,
    canon_json,
    canon_repaired,
    canon_text,
    canon_timestamp,
    canon_timestamp_required,
    replace_bad_bytes,
)
from mailmig.validate.run import ValidateResult, resolve_sources, run_validate
from mailmig.validate.tables import TABLES, TableSpec

__all__ = [
    "CANONICALIZERS", "TABLES", "Reject", "Repair", "TableSpec", "ValidateResult", "add_commands",
    "canon_flag", "canon_float", "canon_int", "canon_json", "canon_repaired", "canon_text",
    "canon_timestamp", "canon_timestamp_required", "cmd_validate", "jsonb_text", "pg_json_string",
    "pg_numeric_text", "replace_bad_bytes", "resolve_sources", "row_digest", "run_validate",
    "summary_lines", "validate_keys",
]
