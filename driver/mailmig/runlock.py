"""One load (or sync) at a time against a database.

A run that writes staging or `mail.*` in bulk (`mailmig load`, later `mailmig sync`)
holds a session-level advisory lock for its whole length, on a connection of its own
whose application_name names the run. A second run against the same database fails at
once with that name instead of truncating staging under the first. The lock goes with
the connection: a run killed with -9 (or a server restart) leaves nothing to clean up.

    with exclusive_run(conninfo, "load", run.id):
        ...
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from mailmig import queries

# pg_try_advisory_lock(int4, int4): shows in pg_locks as classid/objid with objsubid 2.
# 'mailmig' in ASCII as the class, 1 = "a run that writes staging or mail.* in bulk".
LOCK_KEYS = {"class_key": 0x6D61696C, "object_key": 1}


class RunLockBusy(RuntimeError):
    """Another mailmig run holds this database; the message names it."""


def _holder_text(row) -> str:
    if row is None:
        return "a session that has just finished"  # released between the two queries
    name, pid, since, client, user = row
    where = f"from {client}" if client else "over the local socket"
    return f"'{name or '(no application_name)'}' (pid {pid}, user {user}, {where}, connected {since:%Y-%m-%d %H:%M:%S %Z})"


@contextmanager
def exclusive_run(conninfo: str, kind: str, run_id: str) -> Iterator[psycopg.Connection]:
    """Hold the database's one-run-at-a-time lock for the `with` block, or raise
    RunLockBusy naming the run that holds it."""
    conn = psycopg.connect(conninfo, autocommit=True, application_name=f"mailmig {kind} {run_id}"[:63])
    held = False
    try:
        if not conn.execute(queries.load("run_lock_try"), LOCK_KEYS).fetchone()[0]:
            holder = conn.execute(queries.load("run_lock_holder"), LOCK_KEYS).fetchone()
            raise RunLockBusy(
                f"another mailmig run is using this database: {_holder_text(holder)}. "
                f"This {kind} did not start (nothing was changed); run it again when that one has finished.")
        held = True
        yield conn
    finally:
        if held and not conn.closed:
            # released now, not when the server gets round to the closed socket: the next
            # run, started right after this one returns, must find the lock free
            try:
                conn.execute(queries.load("run_lock_release"), LOCK_KEYS)
            except psycopg.Error:
                pass  # the connection is gone: so is the lock
        conn.close()
