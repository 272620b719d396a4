"""The merge of staging into mail.*: migration.merge_chunk by block ranges on several
connections, then the hostile rows through migration.merge_hostile. The database does
the converting, repairing and rejecting; this module only hands out the ranges."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg

from mailmig import console, queries

CHUNK_ROWS = 2000  # rows per merge transaction (load.merge_chunk_rows): a fallback stays cheap
PARTITIONED_TABLES = {"emails"}  # their merge waits for the partitions of the staged months
# A range whose transaction lost a deadlock or a serialization conflict (two merge jobs
# claiming the same message_id in opposite orders) is done again, at most this often.
RETRIED_SQLSTATES = {"40P01", "40001"}
RANGE_ATTEMPTS = 3


class MergeFault(RuntimeError):
    """A passing fault (a lock or statement timeout, a deadlock that kept recurring, a
    shutdown, a lost connection ...) stopped the merge. Never a reject: the range's
    transaction was undone whole; the message names the cause, and a re-run continues."""


def describe_fault(exc: BaseException) -> str:
    """SQLSTATE, its name and the server's message of a database error."""
    state = getattr(exc, "sqlstate", None)
    if state:
        name = type(exc).__name__
        message = getattr(getattr(exc, "diag", None), "message_primary", None) or str(exc).strip()
        return f"SQLSTATE {state} ({name}): {message}"
    return f"{type(exc).__name__}: {str(exc).strip() or 'the connection was lost'}"


def _fault(table: str, where: str, exc: BaseException, committed: int) -> MergeFault:
    return MergeFault(
        f"merge of {table} stopped at {where} by a passing fault, {describe_fault(exc)}. Its "
        f"transaction was undone whole: nothing of it is committed, no row of it was rejected "
        f"for it ({committed:,} range(s) committed before). Run the load again: it keeps what is "
        "committed and merges the rest.")


def _run_range(conn, query: str, params: tuple, table: str, where: str, progress, retried: list):
    """One range's merge function, done again after a deadlock or serialization failure."""
    for attempt in range(1, RANGE_ATTEMPTS + 1):
        try:
            return conn.execute(query, params).fetchone()
        except psycopg.Error as exc:
            if exc.sqlstate in RETRIED_SQLSTATES and attempt < RANGE_ATTEMPTS:
                retried.append(where)
                progress(f"   merge {table}: {where} undone by {describe_fault(exc)}; "
                         f"done again ({attempt + 1}/{RANGE_ATTEMPTS})")
                continue
            raise


def merge_table(conninfo: str, run_id: str, table: str, jobs: int, progress,
                chunk_rows: int = CHUNK_ROWS) -> dict:
    """staging.<table> through migration.merge_chunk in block ranges of about `chunk_rows`
    rows on `jobs` connections. A passing fault in any range stops the others from starting
    and raises MergeFault naming it (the committed ranges stay: a re-run skips them)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        blocks, rows = conn.execute(queries.load("staging_extent"), (table,)).fetchone()
    totals = {"fast": 0, "loaded": 0, "repaired": 0, "rejected": 0, "present": 0, "fallback_chunks": 0,
              "ranges": 0, "retried_ranges": 0}
    if rows == 0:
        return totals
    per_block = max(rows / max(blocks, 1), 1.0)
    step = max(1, int(max(1, chunk_rows) / per_block))
    ranges = [(lo, lo + step) for lo in range(0, blocks + 1, step)]
    totals["ranges"] = len(ranges)
    lock = threading.Lock()
    done = {"chunks": 0}
    bar = console.bar(progress, f"merge {table}", rows)
    local = threading.local()
    connections = []
    stop = threading.Event()  # set by the first fault: no further range starts
    retried: list = []

    def work(bounds):
        if stop.is_set():
            return
        where = f"block range [{bounds[0]}, {bounds[1]}) of staging.{table}"
        try:
            if not hasattr(local, "conn"):
                local.conn = psycopg.connect(conninfo, autocommit=True)
                local.conn.execute(queries.load("merge_session_settings"))
                with lock:
                    connections.append(local.conn)
            counts = _run_range(local.conn, queries.load("merge_chunk"), (run_id, table, *bounds),
                                table, where, progress, retried)
        except psycopg.Error as exc:
            stop.set()
            with lock:
                committed = done["chunks"]
            raise _fault(table, where, exc, committed) from exc
        with lock:
            for key, value in zip(("fast", "loaded", "repaired", "rejected", "present"), counts[:5]):
                totals[key] += value
            totals["fallback_chunks"] += int(counts[5])
            done["chunks"] += 1
            bar.update(totals["loaded"] + totals["rejected"] + totals["present"],
                       f"({done['chunks']}/{len(ranges)} chunks)")

    try:
        with bar, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            list(pool.map(work, ranges))
    finally:
        for c in connections:
            c.close()
    totals["retried_ranges"] = len(retried)
    return totals


def merge_hostile(conninfo: str, run_id: str, table: str, progress=None) -> dict:
    """The hostile rows of a table through migration.merge_hostile, in one transaction."""
    where = f"the hostile rows of {table} (staging.hostile)"
    retried: list = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        try:
            counts = _run_range(conn, queries.load("merge_hostile"), (run_id, table),
                                table, where, progress or (lambda *_: None), retried)
        except psycopg.Error as exc:
            raise _fault(table, where, exc, 0) from exc
    return dict(zip(("loaded", "repaired", "rejected", "present"), counts))
