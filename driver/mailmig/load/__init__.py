"""`mailmig load`: snapshot, audit, staging (pgloader or COPY), merge, account for every row.

The driver stays thin: it copies files, runs pgloader, and calls the plpgsql merge
(migration.merge_chunk) chunk by chunk on `merge_jobs` connections; the database does the
converting, repairing and rejecting. Every source row ends loaded, loaded after a recorded
repair, or rejected and kept whole; the run exits non-zero when that cannot be shown.

The modules:
  run      run_load: the stages in order, the report whatever happens
  stages   one function per stage (snapshot, audit, staging, partitions + merge,
           finish + accounting, archive), each timing itself and writing its report section
  merge    the block ranges of the merge handed out to several connections
  watch    progress of staging (the size of the tables being filled)
  clock    the stage clock (start, seconds, rows, bytes of each stage)
  report   the printed tables and report.json
  command  `mailmig load`
"""

from mailmig.load.command import add_commands, cmd_load
from mailmig.load.merge import CHUNK_ROWS
from mailmig.load.run import LoadResult, run_load
from mailmig.load.stages import LoadError

__all__ = ["CHUNK_ROWS", "LoadError", "LoadResult", "add_commands", "cmd_load", "run_load"]
